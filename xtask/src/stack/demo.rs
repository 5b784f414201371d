//! The demo accounts of the dev stack, beside the demo seller the auth service seeds
//! (`--seed-demo-seller-password` in apps/services.toml): a customer, registered as anyone
//! registers, and an admin, made with `auth-service bootstrap-admin`, the one way to a first
//! admin. Each is checked by signing in; the summary lists those that can.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use api::auth::{AuthClient, LoginRequest, RegisterRequest};
use clap::Parser as _;

use crate::layout::Layout;

pub(super) const DEMO_CUSTOMER_EMAIL: &str = "customer@demo.emporium.test";
pub(super) const DEMO_CUSTOMER_PASSWORD: &str = "demo-shopper-2026";
pub(super) const DEMO_ADMIN_EMAIL: &str = "admin@demo.emporium.test";
pub(super) const DEMO_ADMIN_PASSWORD: &str = "demo-operator-2026";

/// How long one call to the auth service may take (a sign-in hashes a password).
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// A demo account that signs in: (what it is, email, password).
pub(super) type Account = (&'static str, &'static str, &'static str);

#[derive(clap::Parser)]
struct Nats {
    #[command(flatten)]
    nats: config::NatsArgs,
}

/// Makes the demo customer and the demo admin unless they exist, and returns those that
/// sign in with their demo password. A failure is reported, never fatal: the stack is up.
pub(super) fn ensure(layout: &Layout) -> Vec<Account> {
    if let Err(error) = bootstrap_admin(layout) {
        eprintln!("==> the demo admin was not made: {error:#}");
    }
    match register_and_check(layout) {
        Ok(accounts) => accounts,
        Err(error) => {
            eprintln!("==> the demo accounts could not be checked: {error:#}");
            Vec::new()
        }
    }
}

/// `auth-service bootstrap-admin` for the demo admin. Once any admin exists it changes
/// nothing (that is the command's rule), which is the usual case after the first `up`.
fn bootstrap_admin(layout: &Layout) -> anyhow::Result<()> {
    let output = Command::new(layout.debug_binary("auth-service"))
        .args(["bootstrap-admin", "--email", DEMO_ADMIN_EMAIL])
        .env("ADMIN_PASSWORD", DEMO_ADMIN_PASSWORD)
        .stdin(Stdio::null())
        .output()
        .context("running auth-service bootstrap-admin")?;
    let said = String::from_utf8_lossy(&output.stderr);
    if output.status.success() {
        println!("==> made the demo admin {DEMO_ADMIN_EMAIL}");
    } else if !said.contains("an admin already exists") {
        anyhow::bail!("auth-service bootstrap-admin: {}", said.trim());
    }
    Ok(())
}

/// Registers the demo customer (a registration of an address that has an account changes
/// nothing), then signs each demo account in.
fn register_and_check(layout: &Layout) -> anyhow::Result<Vec<Account>> {
    let nats = Nats::try_parse_from(["xtask"])?.nats;
    let nats = layout.operator_nats(nats);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let nats = nats.connect("operator", "xtask-demo").await?;
        let auth = AuthClient::new(rpc::Client::new(nats).with_default_timeout(CALL_TIMEOUT));
        let context = rpc::Context::background().with_timeout(CALL_TIMEOUT);
        auth.register(
            &context,
            &RegisterRequest {
                email: DEMO_CUSTOMER_EMAIL.to_owned(),
                password: DEMO_CUSTOMER_PASSWORD.to_owned(),
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("registering the demo customer: {e}"))?;
        let mut accounts = Vec::new();
        for account in [
            ("customer", DEMO_CUSTOMER_EMAIL, DEMO_CUSTOMER_PASSWORD),
            ("admin", DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD),
        ] {
            let (_, email, password) = account;
            let signed_in = auth
                .login(
                    &context,
                    &LoginRequest {
                        email: email.to_owned(),
                        password: password.to_owned(),
                    },
                )
                .await;
            match signed_in {
                Ok(_) => accounts.push(account),
                Err(e) => eprintln!("==> the demo {} cannot sign in: {e}", account.0),
            }
        }
        Ok(accounts)
    })
}
