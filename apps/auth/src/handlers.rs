//! The RPC handlers of the auth contract.
//!
//! Each handler parses the request into domain types (which names every bad field), then runs
//! the store, the session store and the password hasher. Access levels (public for the
//! credential flows and email links, user for one's own account and verification links, admin
//! for accounts and roles) were already enforced by the runtime from the contract.
//!
//! What a caller can learn is deliberately little: registering answers the same whether or
//! not the address was taken (and costs a hash either way), a failed login says "invalid email
//! or password" whatever failed (unknown addresses verify a dummy hash), a login over a limit
//! (`login_limits.rs`: per client and account, per client; never per account alone, so nobody
//! can lock an owner out) gets one message and costs no hash, every refused refresh
//! token gets one message, and logging out with an unknown token succeeds. Asking for a password
//! reset answers the same whether or not an account has the address (the answer does not wait
//! for the address to be looked up), and every email link token that does not work gets one
//! message. Passwords, tokens and hashes are never logged.

use std::sync::Arc;
use std::time::Duration;

use api::auth::{
    Account, AuthService, EmailLinkResponse, GetAccountRequest, GetJwksRequest,
    GetMyAccountRequest, GetSignedKeySetRequest, GrantRoleRequest, JsonWebKeySet, LoginRequest,
    LogoutRequest, LogoutResponse, RefreshRequest, RegisterRequest, RegisterResponse,
    RequestEmailVerificationRequest, RequestPasswordResetRequest, ResetPasswordRequest,
    ResetPasswordResponse, RevokeRoleRequest, SignedKeySet, TokenPair, VerifyEmailRequest,
    VerifyEmailResponse,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rpc::Context;
use sqlx::PgPool;
use uuid::Uuid;

use crate::clock::Clock;
use crate::domain::{
    self, Credentials, Email, LinkPurpose, NewPassword, PasswordReset, Registration, RoleChange,
    UserId,
};
use crate::email_links;
use crate::error::Error;
use crate::keys::Keys;
use crate::login_limits::{Decision, LoginLimits};
use crate::passwords::PasswordHasher;
use crate::reset_limits::ResetLimits;
use crate::sessions::{RefreshToken, Rotation, Sessions};
use crate::store::{self, AccountRecord};

/// The answer to every registration, new address or taken.
pub const REGISTERED_MESSAGE: &str =
    "Thanks. If this address can be registered, its account is ready: log in with it.";

/// The answer to every request for a password reset link, known address or not.
pub const RESET_REQUESTED_MESSAGE: &str = "If an account has this address, a link to reset its \
     password is on its way; it works once, for 30 minutes.";
/// The answer to a request for a verification link.
pub const VERIFICATION_REQUESTED_MESSAGE: &str = "If your address is not verified yet, a link \
     to verify it is on its way; it works once, for 24 hours.";
/// The answer to a password reset.
pub const PASSWORD_RESET_MESSAGE: &str =
    "Your password was changed and every session ended: log in with the new password.";

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
    reset_limits: ResetLimits,
    clock: Clock,
    /// The service's NATS identity, which signs the key set the gateway fetches.
    key_set_signer: Option<Arc<nkeys::KeyPair>>,
}

impl AuthHandlers {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pool: PgPool,
        sessions: Sessions,
        login_limits: LoginLimits,
        reset_limits: ResetLimits,
        hasher: PasswordHasher,
        keys: Arc<Keys>,
        tokens: TokenSettings,
        clock: Clock,
    ) -> Self {
        Self {
            pool,
            sessions,
            login_limits,
            hasher,
            keys,
            tokens,
            reset_limits,
            clock,
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
                // The first verification link goes out with the registration.
                email_links::issue(
                    &mut tx,
                    ctx.trace(),
                    LinkPurpose::VerifyEmail,
                    id,
                    &account.email,
                    &email_links::generate(),
                    self.clock.now(),
                )
                .await?;
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

impl AuthHandlers {
    /// A new verification link for the signed-in account, unless its email is verified
    /// already; limited per account, counting the links issued in the database (under the
    /// account's row lock, so concurrent requests cannot slip past the limit together).
    async fn send_verification_link(&self, ctx: &Context, id: UserId) -> Result<(), Error> {
        let now = self.clock.now();
        let mut tx = self.pool.begin().await?;
        let account = store::get_account_for_update(&mut tx, id)
            .await?
            .ok_or(Error::AccountNotFound(id))?;
        if account.email_verified_at.is_some() {
            tracing::info!(user_id = %id, "verification asked for an address verified already");
            return Ok(());
        }
        let (in_last_minute, in_last_day) = store::links_issued_since(
            &mut tx,
            id,
            LinkPurpose::VerifyEmail,
            now - chrono::Duration::minutes(1),
            now - chrono::Duration::days(1),
        )
        .await?;
        if !domain::may_request_verification(in_last_minute, in_last_day) {
            return Err(Error::VerificationLimited);
        }
        email_links::issue(
            &mut tx,
            ctx.trace(),
            LinkPurpose::VerifyEmail,
            id,
            &account.email,
            &email_links::generate(),
            now,
        )
        .await?;
        tx.commit().await?;
        tracing::info!(user_id = %id, "verification link issued");
        Ok(())
    }

    async fn verify(&self, token: &domain::LinkToken) -> Result<(), Error> {
        let now = self.clock.now();
        let mut tx = self.pool.begin().await?;
        let Some(link) =
            store::consume_link_token(&mut tx, &token.hash(), LinkPurpose::VerifyEmail, now)
                .await?
        else {
            return Err(Error::InvalidLinkToken);
        };
        let id = UserId::from_uuid(link.account_id);
        if !store::mark_email_verified(&mut tx, id, &link.email, now).await? {
            tracing::info!(user_id = %id, "verification link for an address the account no longer has");
            return Err(Error::InvalidLinkToken);
        }
        // The account's other verification links have nothing left to do.
        store::revoke_link_tokens(&mut tx, id, LinkPurpose::VerifyEmail, now).await?;
        tx.commit().await?;
        tracing::info!(user_id = %id, "email verified");
        Ok(())
    }

    /// Counts a request for a reset link against the address and the client, then has the
    /// link issued, when an account has `email`, after the answer.
    ///
    /// The answer waits only for the limits and for drawing the token, which every address
    /// costs alike: looking the address up and issuing the link happen in a task of their
    /// own, so neither the time the answer takes nor a failure while issuing (which only a
    /// known address could meet) tells whether an account has the address. A link being
    /// issued while the service stops is lost; its owner asks again.
    async fn send_reset_link(&self, ctx: &Context, email: &Email) -> Result<(), Error> {
        if !self.reset_limits.request(email, ctx.client_ip()).await? {
            tracing::info!(email = ?email, "password reset request over the limit");
            return Err(Error::ResetLimited);
        }
        let token = email_links::generate();
        let issuing = issue_reset_link(
            self.pool.clone(),
            ctx.trace().clone(),
            email.clone(),
            token,
            self.clock.clone(),
        );
        tokio::spawn(tracing::Instrument::in_current_span(async move {
            if let Err(error) = issuing.await {
                metrics::counter!("auth_email_links_issue_failures_total", "purpose" => LinkPurpose::ResetPassword.as_str())
                    .increment(1);
                tracing::error!(%error, "issuing a password reset link failed");
            }
        }));
        Ok(())
    }

    /// Sets the new password of the reset link's account, uses the link up, ends every
    /// session of the account and forgets its failed logins. Sessions and limits are cleared
    /// before the password commits: should Redis fail, nothing changed and the link still
    /// works.
    async fn reset(&self, ctx: &Context, reset: PasswordReset) -> Result<(), Error> {
        let token_hash = reset.token.hash();
        let Some(link) = store::find_link_token(
            &self.pool,
            &token_hash,
            LinkPurpose::ResetPassword,
            self.clock.now(),
        )
        .await?
        else {
            return Err(Error::InvalidLinkToken);
        };
        // Stored addresses are normalised, so this parses; the rule that the password must not
        // contain the address needs it.
        let email = Email::parse(&link.email).map_err(|_| Error::InvalidLinkToken)?;
        let new_password = NewPassword::parse(reset.new_password.password().expose(), Some(&email))
            .map_err(Error::WeakPassword)?;
        let password_hash = self
            .hasher
            .hash(new_password.password(), ctx.remaining())
            .await?;
        let now = self.clock.now();
        let mut tx = self.pool.begin().await?;
        let Some(link) =
            store::consume_link_token(&mut tx, &token_hash, LinkPurpose::ResetPassword, now)
                .await?
        else {
            // Used by a concurrent reset meanwhile, or it just expired.
            return Err(Error::InvalidLinkToken);
        };
        let id = UserId::from_uuid(link.account_id);
        if !store::set_password_hash(&mut tx, id, &link.email, &password_hash).await? {
            tracing::info!(user_id = %id, "reset link for an address the account no longer has");
            return Err(Error::InvalidLinkToken);
        }
        store::revoke_link_tokens(&mut tx, id, LinkPurpose::ResetPassword, now).await?;
        self.sessions.revoke_all(id).await?;
        self.login_limits.forget_account(&email).await?;
        tx.commit().await?;
        // Once more now that the old password is gone: a login that checked it just before
        // the commit may have started its session after the first cut-off.
        if let Err(error) = self.sessions.revoke_all(id).await {
            tracing::warn!(user_id = %id, %error, "ending the sessions again after a password reset");
        }
        tracing::info!(user_id = %id, "password reset: every session ended");
        Ok(())
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

    async fn get_my_account(
        &self,
        ctx: Context,
        _request: GetMyAccountRequest,
    ) -> Result<Account, rpc::Error> {
        let id = UserId::parse("user_id", &ctx.require_principal()?.user_id)?;
        let account = store::get_account(&self.pool, id)
            .await?
            .ok_or(Error::AccountNotFound(id))?;
        Ok(message(account))
    }

    async fn request_email_verification(
        &self,
        ctx: Context,
        _request: RequestEmailVerificationRequest,
    ) -> Result<EmailLinkResponse, rpc::Error> {
        let id = UserId::parse("user_id", &ctx.require_principal()?.user_id)?;
        let outcome = self.send_verification_link(&ctx, id).await;
        count_link(
            "auth_email_link_requests_total",
            LinkPurpose::VerifyEmail,
            &outcome,
        );
        outcome?;
        Ok(accepted(VERIFICATION_REQUESTED_MESSAGE))
    }

    async fn verify_email(
        &self,
        _ctx: Context,
        request: VerifyEmailRequest,
    ) -> Result<VerifyEmailResponse, rpc::Error> {
        let token = domain::parse_link_token("token", &request.token)?;
        let outcome = self.verify(&token).await;
        count_link(
            "auth_email_links_consumed_total",
            LinkPurpose::VerifyEmail,
            &outcome,
        );
        outcome?;
        Ok(VerifyEmailResponse {
            email_verified: true,
        })
    }

    async fn request_password_reset(
        &self,
        ctx: Context,
        request: RequestPasswordResetRequest,
    ) -> Result<EmailLinkResponse, rpc::Error> {
        let email = Email::parse(&request.email)
            .map_err(|problem| rpc::Error::invalid_field("email", problem))?;
        let outcome = self.send_reset_link(&ctx, &email).await;
        // Known and unknown addresses are one outcome here: the metric is no oracle either.
        count_link(
            "auth_email_link_requests_total",
            LinkPurpose::ResetPassword,
            &outcome,
        );
        outcome?;
        Ok(accepted(RESET_REQUESTED_MESSAGE))
    }

    async fn reset_password(
        &self,
        ctx: Context,
        request: ResetPasswordRequest,
    ) -> Result<ResetPasswordResponse, rpc::Error> {
        let reset = PasswordReset::parse(&request)?;
        let outcome = self.reset(&ctx, reset).await;
        count_link(
            "auth_email_links_consumed_total",
            LinkPurpose::ResetPassword,
            &outcome,
        );
        outcome?;
        Ok(ResetPasswordResponse {
            message: PASSWORD_RESET_MESSAGE.to_owned(),
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

/// Issues `token` as a reset link of the account with `email`, if there is one.
async fn issue_reset_link(
    pool: PgPool,
    trace: events::TraceHeaders,
    email: Email,
    token: domain::LinkToken,
    clock: Clock,
) -> Result<(), Error> {
    // The account's row stays locked until the link is issued, so that of two concurrent
    // requests the later one's link supersedes the earlier one's.
    let mut tx = pool.begin().await?;
    let Some(account) = store::find_account_by_email_for_update(&mut tx, &email).await? else {
        tx.rollback().await?;
        tracing::info!(email = ?email, "password reset asked for an address without an account");
        return Ok(());
    };
    let id = UserId::from_uuid(account.id);
    email_links::issue(
        &mut tx,
        &trace,
        LinkPurpose::ResetPassword,
        id,
        &account.email,
        &token,
        clock.now(),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user_id = %id, "password reset link issued");
    Ok(())
}

fn message(account: AccountRecord) -> Account {
    Account {
        user_id: account.id.to_string(),
        email: account.email,
        roles: account.roles,
        created_at: api::timestamp(account.created_at),
        updated_at: api::timestamp(account.updated_at),
        email_verified: account.email_verified_at.is_some(),
        email_verified_at: account.email_verified_at.and_then(api::timestamp),
    }
}

/// The 202 of a request for an email link.
fn accepted(message: &str) -> EmailLinkResponse {
    EmailLinkResponse {
        http_status: 202,
        message: message.to_owned(),
    }
}

/// Counts an email link flow's outcome by purpose (never by account).
fn count_link<T>(metric: &'static str, purpose: LinkPurpose, outcome: &Result<T, Error>) {
    let label = match outcome {
        Ok(_) => "ok",
        Err(Error::InvalidLinkToken) => "refused",
        Err(Error::WeakPassword(_)) => "weak_password",
        Err(Error::ResetLimited | Error::VerificationLimited) => "limited",
        Err(Error::Busy) => "busy",
        Err(_) => "error",
    };
    metrics::counter!(metric, "purpose" => purpose.as_str(), "outcome" => label).increment(1);
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
