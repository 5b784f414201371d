//! `TestApp`: the service on private servers, and helpers that read like what a user does.

use api::auth::{
    AuthClient, GetJwksRequest, LoginRequest, RefreshRequest, RegisterRequest, RegisterResponse,
    TokenPair,
};
use auth_service::Config;
use auth_service::clock::Clock;
use rpc::Context;
use testkit::Harness;

pub use testkit::{bad_fields, expect_error};

/// A password that meets the policy.
pub const PASSWORD: &str = "correct horse battery";

pub use testkit::callers::{admin, anonymous};

/// The one customer these tests need.
pub fn customer() -> Context {
    testkit::callers::customer("customer-1")
}

/// A request as the gateway forwards it from the HTTP client at `ip`.
pub fn from_client(ip: &str) -> Context {
    Context::background().with_client_ip(ip)
}

testkit::test_app!(TestApp, Config, AuthClient);

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the service with its config adjusted by `configure`.
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_with_clock(Clock::system(), configure).await
    }

    /// Starts the service on `clock`, which the test moves forward instead of waiting.
    pub async fn spawn_with_clock(clock: Clock, configure: impl FnOnce(&mut Config)) -> Self {
        let start = move |config| auth_service::start_with_clock(config, clock.clone());
        let harness = Harness::start(start, |config: &mut Config| {
            config.outbox.outbox_poll_interval_ms = 100;
            // Tests that are not about limits must not trip them.
            config.login_failures_per_client_and_account = 1_000;
            config.login_account_slowdown_after = 1_000;
            config.login_attempts_per_client = 1_000;
            configure(config);
        })
        .await;
        Self::new(harness)
    }

    /// Stops the service the way SIGTERM does and checks that it shut down cleanly.
    pub async fn stop(self) {
        self.harness.stop().await;
    }

    pub async fn register(
        &self,
        email: &str,
        password: &str,
    ) -> Result<RegisterResponse, rpc::Error> {
        self.client
            .register(
                &anonymous(),
                &RegisterRequest {
                    email: email.into(),
                    password: password.into(),
                },
            )
            .await
    }

    pub async fn login_from(
        &self,
        ctx: &Context,
        email: &str,
        password: &str,
    ) -> Result<TokenPair, rpc::Error> {
        self.client
            .login(
                ctx,
                &LoginRequest {
                    email: email.into(),
                    password: password.into(),
                },
            )
            .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Result<TokenPair, rpc::Error> {
        self.login_from(&anonymous(), email, password).await
    }

    /// Registers `email` with [`PASSWORD`] and logs in.
    pub async fn signed_up(&self, email: &str) -> TokenPair {
        self.register(email, PASSWORD).await.expect("registering");
        self.login(email, PASSWORD).await.expect("logging in")
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, rpc::Error> {
        self.client
            .refresh(
                &anonymous(),
                &RefreshRequest {
                    refresh_token: refresh_token.into(),
                },
            )
            .await
    }

    /// A verifier built from the key set the service publishes, as the gateway builds it.
    pub async fn verifier(&self) -> tokens::Verifier {
        let set = self
            .client
            .get_jwks(&anonymous(), &GetJwksRequest {})
            .await
            .expect("reading the key set");
        let jwks = tokens::Jwks::from_json(&serde_json::to_vec(&set).unwrap()).unwrap();
        tokens::Verifier::new(&jwks, tokens::DEFAULT_ISSUER, tokens::DEFAULT_AUDIENCE).unwrap()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(self.db()).await.unwrap()
    }
}
