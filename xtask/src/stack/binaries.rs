//! The workspace's own binaries in the dev stack: building them (`cargo build --workspace
//! --bins`), then starting each service of `apps/services.toml` on its admin port and the
//! gateway (serving the built web app, `--web-dir`), pointed at the dev servers and waited on
//! until ready; from then on each is supervised (restarted when it exits).

use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;

use super::process::{Interrupted, Stack};
use super::record::StopBy;
use super::settings::{GATEWAY_ADMIN_PORT, NATS_PORT, REDIS_PORT, SERVICE_READY_TIMEOUT};
use crate::http;
use crate::layout::Layout;
use crate::services::ServiceEntry;
use crate::system::send_signal;

/// `cargo build --workspace --bins`, with cargo's own progress on the terminal.
pub(super) fn build(layout: &Layout, interrupted: &AtomicBool) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut child = Command::new(cargo)
        .args(["build", "--workspace", "--bins"])
        .current_dir(layout.root())
        .stdin(Stdio::null())
        .spawn()
        .context("running cargo build")?;
    loop {
        if let Some(status) = child.try_wait()? {
            if interrupted.load(Ordering::SeqCst) {
                return Err(Interrupted.into());
            }
            anyhow::ensure!(status.success(), "cargo build failed ({status})");
            return Ok(());
        }
        if interrupted.load(Ordering::SeqCst) {
            send_signal(child.id(), "TERM");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The environment every service and the gateway get: where the dev servers are, and the
/// NATS identity `user` connects as.
fn server_environment(command: &mut Command, layout: &Layout, user: &str) {
    command
        .env("NATS_URL", format!("nats://127.0.0.1:{NATS_PORT}"))
        .env(
            "NATS_NKEY_FILE",
            layout.nats_credentials().join(format!("{user}.nk")),
        )
        .env("REDIS_URL", format!("redis://127.0.0.1:{REDIS_PORT}"));
}

pub(super) fn start_service(
    stack: &mut Stack,
    layout: &Layout,
    service: &ServiceEntry,
) -> anyhow::Result<()> {
    let package = service.package();
    let binary = layout.debug_binary(&package);
    anyhow::ensure!(
        binary.exists(),
        "{} was not built: is `{package}` a binary of the workspace?",
        binary.display(),
    );
    println!(
        "==> starting {package} (admin 127.0.0.1:{}, log {})",
        service.admin_port,
        layout.show(&layout.log(&service.name))
    );
    let mut command = Command::new(&binary);
    let keys = layout.keys();
    command
        .args(service.dev_args.iter().map(|arg| {
            arg.replace(
                crate::services::KEYS_PLACEHOLDER,
                &keys.display().to_string(),
            )
        }))
        .env("ADMIN_ADDR", format!("127.0.0.1:{}", service.admin_port));
    server_environment(&mut command, layout, &service.name.replace('-', "_"));
    stack.start(&service.name, command, StopBy::Terminate)?;
    stack.wait_until(&service.name, SERVICE_READY_TIMEOUT, || {
        http::is_ok(service.admin_port, "/health/ready")
    })?;
    stack.supervise(&service.name);
    Ok(())
}

pub(super) fn start_gateway(
    stack: &mut Stack,
    layout: &Layout,
    port: u16,
    bind: IpAddr,
    web_dir: Option<&Path>,
) -> anyhow::Result<()> {
    println!(
        "==> starting the gateway on {bind}:{port} (log {})",
        layout.show(&layout.log("gateway"))
    );
    let mut command = Command::new(layout.debug_binary("gateway"));
    if let Some(dir) = web_dir {
        command.arg("--web-dir").arg(dir);
    }
    command
        .env("GATEWAY_PORT", port.to_string())
        .env("GATEWAY_BIND", bind.to_string())
        .env("ADMIN_ADDR", format!("127.0.0.1:{GATEWAY_ADMIN_PORT}"))
        // The keys come from the auth service, which signs with the dev key in the dev stack
        // (apps/services.toml), so `cargo xtask dev-token` tokens verify too.
        .env("JWT_JWKS_NATS", "true")
        .env(
            "JWT_JWKS_SIGNER_FILE",
            layout.nats_credentials().join(trust::SIGNER_FILE),
        );
    server_environment(&mut command, layout, "gateway");
    stack.start("gateway", command, StopBy::Terminate)?;
    stack.wait_until("gateway", SERVICE_READY_TIMEOUT, || {
        http::is_ok(port, "/health/ready")
    })?;
    stack.supervise("gateway");
    Ok(())
}
