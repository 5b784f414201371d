//! The one-off commands of the `auth-service` binary, beside serving: making the first admin
//! (`bootstrap-admin`) and rotating a signing key kept in the database (`rotate-signing-key`).
//!
//! Both work on the service's database directly (migrating it first, so they may run before
//! the service ever started against it) and need no NATS or Redis.
//!
//! There is exactly one way to the first admin, and it cannot be raced: `bootstrap-admin`
//! runs in one transaction under an advisory lock, and does something only while no account
//! has the admin role. It creates the account (recording `user.registered` and issuing the
//! first email verification link, as a registration does: the account's address is verified
//! like anyone's), or promotes an existing one when given that account's own password:
//! registering does not prove anyone owns an address, and neither does a verified address
//! prove its owner is the operator, so an account somebody registered first under the
//! operator's intended address must not become the admin. Every other admin is made by an
//! admin, with GrantRole.

use std::time::Duration;

use anyhow::Context as _;
use events::TraceHeaders;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::domain::{self, Email, NewPassword, Password, Role, UserId};
use crate::error::Error;
use crate::keys;
use crate::passwords::PasswordHasher;
use crate::store::{self, AccountRecord};

/// `auth-service bootstrap-admin`: the first admin. The password is read from the
/// `ADMIN_PASSWORD` environment variable, or else from standard input; never from a flag,
/// which would show in the process list and the shell history.
#[derive(clap::Args, Clone, Debug)]
pub struct BootstrapAdminArgs {
    /// The address of the first admin's account. A new account is created with the admin and
    /// customer roles; an existing one is promoted only with its own password.
    #[arg(long)]
    pub email: String,
    #[command(flatten)]
    pub postgres: config::PostgresArgs,
}

/// `auth-service rotate-signing-key`: the next signing key, for keys kept in the database.
#[derive(clap::Args, Clone, Debug)]
pub struct RotateSigningKeyArgs {
    /// Seconds from now after which replicas sign with the new key; until then it is only
    /// published. At least the gateways' `--jwt-jwks-refresh-seconds` (300 by default) plus a
    /// margin, so that every gateway knows the key before a token names it.
    #[arg(long, default_value_t = 600)]
    pub signs_in_secs: u64,
    #[command(flatten)]
    pub postgres: config::PostgresArgs,
}

/// What `bootstrap-admin` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bootstrapped {
    /// A new account with the admin role.
    Created(AccountRecord),
    /// An existing account, now with the admin role too.
    Promoted(AccountRecord),
}

/// Why `bootstrap-admin` did nothing.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(
        "an admin already exists, so there is no first admin to make: an admin grants the \
         admin role to others (GrantRole)"
    )]
    AdminExists,
    #[error("--email {0}")]
    InvalidEmail(&'static str),
    #[error("the password {0}")]
    WeakPassword(&'static str),
    #[error(
        "an account with this address exists and the password given is not its password: \
         give that account's own password to make it the first admin"
    )]
    NotTheAccountsPassword,
    #[error(
        "an account with this address was registered while the command ran: run it again with \
         that account's own password"
    )]
    RegisteredMeanwhile,
    #[error(transparent)]
    Failed(#[from] Error),
}

impl From<sqlx::Error> for BootstrapError {
    fn from(error: sqlx::Error) -> Self {
        Self::Failed(error.into())
    }
}

/// Runs `bootstrap-admin` on the database `args` names.
pub async fn bootstrap_admin_command(
    args: &BootstrapAdminArgs,
    password: Password,
) -> anyhow::Result<Bootstrapped> {
    let email = Email::parse(&args.email).map_err(BootstrapError::InvalidEmail)?;
    let pool = database(&args.postgres).await?;
    let hasher =
        PasswordHasher::new(1, Duration::from_secs(60)).context("setting up password hashing")?;
    let outcome = bootstrap_admin(&pool, &hasher, &email, &password).await;
    pool.close().await;
    Ok(outcome?)
}

/// Makes `email`'s account the first admin, creating it with `password` or, when it exists
/// and `password` is its password, promoting it; refused once any account is an admin.
pub async fn bootstrap_admin(
    pool: &PgPool,
    hasher: &PasswordHasher,
    email: &Email,
    password: &Password,
) -> Result<Bootstrapped, BootstrapError> {
    let mut tx = pool.begin().await?;
    // Concurrent runs queue here; each then sees what the one before it committed.
    store::lock_admin_bootstrap(&mut tx).await?;
    if store::admin_exists(&mut tx).await? {
        return Err(BootstrapError::AdminExists);
    }
    let outcome = match store::find_credentials_for_update(&mut tx, email).await? {
        Some(existing) => {
            let matches = hasher
                .verify(password, Some(&existing.password_hash), None)
                .await
                .map_err(Error::from)?;
            if !matches {
                return Err(BootstrapError::NotTheAccountsPassword);
            }
            let id = UserId::from_uuid(existing.id);
            let account = store::add_role(&mut tx, id, Role::Admin).await?;
            tracing::info!(user_id = %id, "existing account made the first admin");
            Bootstrapped::Promoted(account)
        }
        None => {
            let password = NewPassword::parse(password.expose(), Some(email))
                .map_err(BootstrapError::WeakPassword)?;
            let password_hash = hasher
                .hash(password.password(), None)
                .await
                .map_err(Error::from)?;
            let id = UserId::generate();
            let roles = domain::bootstrap_admin_roles();
            let Some(account) =
                store::insert_account(&mut tx, id, email, &password_hash, &roles).await?
            else {
                return Err(BootstrapError::RegisteredMeanwhile);
            };
            store::record_registered(&mut tx, &TraceHeaders::default(), &account).await?;
            crate::email_links::issue(
                &mut tx,
                &TraceHeaders::default(),
                domain::LinkPurpose::VerifyEmail,
                id,
                &account.email,
                &crate::email_links::generate(),
                chrono::Utc::now(),
            )
            .await?;
            tracing::info!(user_id = %id, "first admin account created");
            Bootstrapped::Created(account)
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

/// Makes the demo seller's account (`vocab::demo`: a fixed id, so the demo shop's seed can
/// name its owner) with the roles customer and seller, unless an account with its email
/// exists. For the dev stack's demo data only.
pub async fn seed_demo_seller(
    pool: &PgPool,
    hasher: &PasswordHasher,
    password: &str,
) -> anyhow::Result<bool> {
    let email = Email::parse(vocab::demo::DEMO_SELLER_EMAIL)
        .map_err(|problem| anyhow::anyhow!("the demo seller's email {problem}"))?;
    let password = NewPassword::parse(password, Some(&email))
        .map_err(|problem| anyhow::anyhow!("the demo seller's password {problem}"))?;
    let id = UserId::from_uuid(
        uuid::Uuid::parse_str(vocab::demo::DEMO_SELLER_ID).context("the demo seller's id")?,
    );
    let mut tx = pool.begin().await?;
    if store::find_credentials_for_update(&mut tx, &email)
        .await?
        .is_some()
    {
        return Ok(false);
    }
    let password_hash = hasher.hash(password.password(), None).await?;
    let Some(account) = store::insert_account(
        &mut tx,
        id,
        &email,
        &password_hash,
        &[Role::Customer, Role::Seller],
    )
    .await?
    else {
        // Another replica seeded it meanwhile.
        return Ok(false);
    };
    store::record_registered(&mut tx, &TraceHeaders::default(), &account).await?;
    tx.commit().await?;
    tracing::info!(user_id = %id, email = vocab::demo::DEMO_SELLER_EMAIL, "demo seller seeded");
    Ok(true)
}

/// Runs `rotate-signing-key` on the database `args` names.
pub async fn rotate_signing_key_command(
    args: &RotateSigningKeyArgs,
) -> anyhow::Result<keys::AddedKey> {
    let pool = database(&args.postgres).await?;
    let added = keys::add_database_key(&pool, Duration::from_secs(args.signs_in_secs)).await;
    pool.close().await;
    added
}

/// The service's database, migrated like the service migrates it (its tables and the outbox).
async fn database(args: &config::PostgresArgs) -> anyhow::Result<PgPool> {
    let url = args.url_or_default(api::auth::SERVICE.name);
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&url)
        .await
        .context(
            "connecting to the auth service's PostgreSQL database (--database-url; if the \
             database does not exist yet, start the auth service once: it creates it)",
        )?;
    store::MIGRATOR
        .run(&pool)
        .await
        .context("migrating the auth service's database")?;
    events::migrate(&pool)
        .await
        .context("creating the events outbox tables")?;
    Ok(pool)
}
