//! The RPC handlers of the auth contract.
//!
//! Each handler parses the request into domain types (which names every bad field), then runs
//! the store, the session store and the password hasher. Access levels (public for the
//! credential flows, admin for accounts and roles) were already enforced by the runtime from
//! the contract.
//!
//! What a caller can learn is deliberately little: registering answers the same whether or
//! not the address was taken (and costs a hash either way), a failed login says "invalid email
//! or password" whatever failed (unknown addresses verify a dummy hash), a login over a limit
//! (`login_limits.rs`: per client and account, per client; never per account alone, so nobody
//! can lock an owner out) gets one message and costs no hash, every refused refresh
//! token gets one message, and logging out with an unknown token succeeds. Passwords, tokens
//! and hashes are never logged.

use std::sync::Arc;
use std::time::Duration;

use api::auth::{
    Account, AuthService, GetAccountRequest, GetJwksRequest, GetSignedKeySetRequest,
    GrantRoleRequest, JsonWebKeySet, LoginRequest, LogoutRequest, LogoutResponse, RefreshRequest,
    RegisterRequest, RegisterResponse, RevokeRoleRequest, SignedKeySet, TokenPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rpc::Context;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::{self, Credentials, Registration, RoleChange, UserId};
use crate::error::Error;
use crate::keys::Keys;
use crate::login_limits::{Decision, LoginLimits};
use crate::passwords::PasswordHasher;
use crate::sessions::{RefreshToken, Rotation, Sessions};
use crate::store::{self, AccountRecord};

/// The answer to every registration, new address or taken.
pub const REGISTERED_MESSAGE: &str =
    "Thanks. If this address can be registered, its account is ready: log in with it.";

/// What access tokens say and how long they last.
#[derive(Clone, Debug)]
pub struct TokenSettings {
    pub access_token_ttl: Duration,
    pub issuer: String,
    pub audience: String,
}

/// The auth service: accounts in PostgreSQL, sessions and attempt counters in Redis, the
/// password hasher and the signing keys.
pub struct AuthHandlers {
    pool: PgPool,
    sessions: Sessions,
    login_limits: LoginLimits,
    hasher: PasswordHasher,
    keys: Arc<Keys>,
    tokens: TokenSettings,
    /// The service's NATS identity, which signs the key set the gateway fetches.
    key_set_signer: Option<Arc<nkeys::KeyPair>>,
}

impl AuthHandlers {
    pub fn new(
        pool: PgPool,
        sessions: Sessions,
        login_limits: LoginLimits,
        hasher: PasswordHasher,
        keys: Arc<Keys>,
        tokens: TokenSettings,
    ) -> Self {
        Self {
            pool,
            sessions,
            login_limits,
            hasher,
            keys,
            tokens,
            key_set_signer: None,
        }
    }

    /// Signs the key set the gateway fetches with `signer` (the service's NATS NKEY).
    pub fn with_key_set_signer(mut self, signer: Option<nkeys::KeyPair>) -> Self {
        self.key_set_signer = signer.map(Arc::new);
        self
    }

    /// An access token for `user_id` with `roles`, and the pair around it.
    fn token_pair(&self, user_id: &str, roles: Vec<String>, refresh: RefreshToken) -> TokenPair {
        let role_names: Vec<&str> = roles.iter().map(String::as_str).collect();
        let access_token = self.keys.signing_key().mint(
            user_id,
            &role_names,
            self.tokens.access_token_ttl,
            &self.tokens.issuer,
            &self.tokens.audience,
        );
        TokenPair {
            access_token,
            token_type: "Bearer".to_owned(),
            expires_in: seconds(self.tokens.access_token_ttl),
            refresh_token: refresh.into_string(),
            refresh_expires_in: seconds(self.sessions.ttl()),
            user_id: user_id.to_owned(),
            roles,
        }
    }

    async fn register_account(
        &self,
        ctx: &Context,
        registration: Registration,
    ) -> Result<(), Error> {
        // Hash before looking at the address: a taken address costs the same as a new one.
        let password_hash = self
            .hasher
            .hash(registration.password.password(), ctx.remaining())
            .await?;
        let id = UserId::generate();
        let roles = domain::initial_roles();
        let mut tx = self.pool.begin().await?;
        match store::insert_account(&mut tx, id, &registration.email, &password_hash, &roles)
            .await?
        {
            Some(account) => {
                store::record_registered(&mut tx, ctx.trace(), &account).await?;
                tx.commit().await?;
                tracing::info!(user_id = %id, "account registered");
            }
            None => {
                tx.rollback().await?;
                tracing::info!("registration for an address that is taken");
            }
        }
        Ok(())
    }

    async fn log_in(&self, ctx: &Context, credentials: Credentials) -> Result<TokenPair, Error> {
        let email = &credentials.email;
        let client_ip = ctx.client_ip();
        let slowdown = match self.login_limits.attempt(email, client_ip).await? {
            Decision::Limited => {
                tracing::info!(email = ?email, "login attempt over the limit");
                return Err(Error::LoginLimited);
            }
            Decision::Allowed { slowdown } => slowdown,
        };
        if let Some(delay) = slowdown {
            metrics::counter!("auth_login_slowed_total").increment(1);
            tokio::time::sleep(delay).await;
        }
        let checked = self.check_password(ctx, &credentials).await;
        let account = match checked {
            Ok(Some(account)) => account,
            Ok(None) => {
                tracing::info!(email = ?email, "login refused");
                return Err(Error::InvalidCredentials);
            }
            Err(error) => {
                // No verdict, so no failure: the attempt is taken back.
                if let Err(redis) = self.login_limits.abandoned(email, client_ip).await {
                    tracing::warn!(error = %redis, "could not take back a login attempt");
                }
                return Err(error);
            }
        };
        self.login_limits.succeeded(email, client_ip).await?;
        let user_id = UserId::from_uuid(account.id);
        let refresh = self.sessions.start(user_id).await?;
        tracing::info!(%user_id, "logged in");
        Ok(self.token_pair(&user_id.to_string(), account.roles, refresh))
    }

    /// The account when the password is its password; `None` for a wrong password or an
    /// unknown address (which verifies a dummy hash, taking the same time).
    async fn check_password(
        &self,
        ctx: &Context,
        credentials: &Credentials,
    ) -> Result<Option<store::StoredCredentials>, Error> {
        let stored = store::find_credentials(&self.pool, &credentials.email).await?;
        let matches = self
            .hasher
            .verify(
                &credentials.password,
                stored.as_ref().map(|s| s.password_hash.as_str()),
                ctx.remaining(),
            )
            .await?;
        Ok(stored.filter(|_| matches))
    }

    async fn refresh_session(&self, presented: &str) -> Result<TokenPair, Error> {
        // The account is checked before the token is used up, so a database hiccup does not
        // leave the client holding a used token it would then be punished for presenting.
        let Some(owner) = self.sessions.owner(presented).await? else {
            return Err(Error::InvalidRefreshToken);
        };
        let account = match Uuid::try_parse(&owner) {
            Ok(id) => store::get_account(&self.pool, UserId::from_uuid(id)).await?,
            Err(_) => None,
        };
        let Some(account) = account else {
            self.sessions.revoke(presented).await?;
            tracing::info!(user_id = %owner, "refresh for an account that is gone");
            return Err(Error::InvalidRefreshToken);
        };
        match self.sessions.rotate(presented).await? {
            Rotation::Rotated { user_id, token } => {
                Ok(self.token_pair(&user_id, account.roles, token))
            }
            Rotation::Reused { user_id, family } => {
                metrics::counter!("auth_refresh_token_reuse_total").increment(1);
                tracing::warn!(
                    %user_id,
                    session = %family,
                    "a used refresh token was presented again: session revoked"
                );
                Err(Error::InvalidRefreshToken)
            }
            Rotation::Revoked | Rotation::Unknown => Err(Error::InvalidRefreshToken),
        }
    }
}

impl AuthService for AuthHandlers {
    async fn register(
        &self,
        ctx: Context,
        request: RegisterRequest,
    ) -> Result<RegisterResponse, rpc::Error> {
        let registration = Registration::parse(&request)?;
        let outcome = self.register_account(&ctx, registration).await;
        count("auth_registrations_total", &outcome);
        outcome?;
        Ok(RegisterResponse {
            message: REGISTERED_MESSAGE.to_owned(),
        })
    }

    async fn login(&self, ctx: Context, request: LoginRequest) -> Result<TokenPair, rpc::Error> {
        let credentials = Credentials::parse(&request)?;
        let outcome = self.log_in(&ctx, credentials).await;
        count("auth_logins_total", &outcome);
        Ok(outcome?)
    }

    async fn refresh(
        &self,
        _ctx: Context,
        request: RefreshRequest,
    ) -> Result<TokenPair, rpc::Error> {
        let presented = domain::parse_refresh_token(&request.refresh_token)?;
        let outcome = self.refresh_session(presented).await;
        count("auth_refreshes_total", &outcome);
        Ok(outcome?)
    }

    /// Ends the token's session. An unknown, expired or already revoked token is a success
    /// too: logging out twice is not an error, and the answer reveals nothing about a token.
    async fn logout(
        &self,
        _ctx: Context,
        request: LogoutRequest,
    ) -> Result<LogoutResponse, rpc::Error> {
        let presented = domain::parse_refresh_token(&request.refresh_token)?;
        if self.sessions.revoke(presented).await.map_err(Error::from)? {
            tracing::info!("logged out");
        }
        Ok(LogoutResponse {})
    }

    async fn get_jwks(
        &self,
        _ctx: Context,
        _request: GetJwksRequest,
    ) -> Result<JsonWebKeySet, rpc::Error> {
        Ok(self.keys.key_set().await.map_err(Error::from)?)
    }

    async fn get_signed_key_set(
        &self,
        _ctx: Context,
        _request: GetSignedKeySetRequest,
    ) -> Result<SignedKeySet, rpc::Error> {
        let signer = self.key_set_signer.as_ref().ok_or_else(|| {
            rpc::Error::failed_precondition(
                "the auth service has no NATS identity to sign its key set with (--nats-nkey-file)",
            )
        })?;
        let set = self.keys.key_set().await.map_err(Error::from)?;
        let jwks = serde_json::to_vec(&set)
            .map_err(|e| rpc::Error::internal(anyhow::anyhow!("signing the key set: {e}")))?;
        let signature = signer
            .sign(&jwks)
            .map_err(|e| rpc::Error::internal(anyhow::anyhow!("signing the key set: {e}")))?;
        Ok(SignedKeySet {
            jwks,
            signature: URL_SAFE_NO_PAD.encode(signature),
            signer: signer.public_key(),
        })
    }

    async fn get_account(
        &self,
        _ctx: Context,
        request: GetAccountRequest,
    ) -> Result<Account, rpc::Error> {
        let id = UserId::parse("user_id", &request.user_id)?;
        let account = store::get_account(&self.pool, id)
            .await?
            .ok_or(Error::AccountNotFound(id))?;
        Ok(message(account))
    }

    async fn grant_role(
        &self,
        ctx: Context,
        request: GrantRoleRequest,
    ) -> Result<Account, rpc::Error> {
        let change = RoleChange::parse(&request.user_id, &request.role)?;
        let account = store::grant_role(&self.pool, change.user_id, change.role).await?;
        tracing::info!(
            user_id = %change.user_id,
            role = %change.role,
            by = ctx.principal().map(|p| p.user_id.as_str()).unwrap_or_default(),
            "role granted"
        );
        Ok(message(account))
    }

    async fn revoke_role(
        &self,
        ctx: Context,
        request: RevokeRoleRequest,
    ) -> Result<Account, rpc::Error> {
        let change = RoleChange::parse(&request.user_id, &request.role)?;
        let account = store::revoke_role(&self.pool, change.user_id, change.role).await?;
        tracing::info!(
            user_id = %change.user_id,
            role = %change.role,
            by = ctx.principal().map(|p| p.user_id.as_str()).unwrap_or_default(),
            "role revoked"
        );
        Ok(message(account))
    }
}

fn message(account: AccountRecord) -> Account {
    Account {
        user_id: account.id.to_string(),
        email: account.email,
        roles: account.roles,
        created_at: api::timestamp(account.created_at),
        updated_at: api::timestamp(account.updated_at),
    }
}

/// Counts an outcome of a credential flow by kind (never by account): the numbers an operator
/// watches for credential stuffing, token theft and an overloaded hasher.
fn count<T>(metric: &'static str, outcome: &Result<T, Error>) {
    let label = match outcome {
        Ok(_) => "ok",
        Err(Error::InvalidCredentials | Error::InvalidRefreshToken) => "refused",
        Err(Error::LoginLimited) => "limited",
        Err(Error::Busy) => "busy",
        Err(_) => "error",
    };
    metrics::counter!(metric, "outcome" => label).increment(1);
}

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}
