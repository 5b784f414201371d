//! `TestApp`: the service on private servers, and helpers that read like what an admin does.

use std::time::{Duration, Instant};

use api::settings::{
    ChangeSettingRequest, GetSettingRequest, ListSettingsRequest, RollbackSettingRequest, Setting,
    SettingDetail, SettingsClient,
};
use rpc::Context;
use settings_service::Config;
use testkit::Harness;
use tokio_util::sync::CancellationToken;

pub use testkit::callers::{admin, customer};
pub use testkit::{bad_fields, expect_error};

testkit::test_app!(TestApp, Config, SettingsClient);

/// A generous bound for a change to reach a watcher: the promise is "within a second", but
/// a loaded test machine must not fail a correct service.
pub const ARRIVAL_BOUND: Duration = Duration::from_secs(10);

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> Self {
        let harness = Harness::start(settings_service::start, configure).await;
        Self::new(harness)
    }

    /// Stops the service the way SIGTERM does and checks that it shut down cleanly.
    pub async fn stop(self) {
        self.harness.stop().await;
    }

    pub async fn get(&self, key: &str, scope: &str) -> Result<SettingDetail, rpc::Error> {
        self.client
            .get_setting(
                &admin(),
                &GetSettingRequest {
                    key: key.into(),
                    scope: scope.into(),
                    history_size: 0,
                },
            )
            .await
    }

    pub async fn current(&self, key: &str) -> Setting {
        self.get(key, "")
            .await
            .expect("reading a setting")
            .current
            .expect("a current value")
    }

    pub async fn change_as(
        &self,
        who: &Context,
        key: &str,
        scope: &str,
        value: serde_json::Value,
        expected_version: i64,
    ) -> Result<Setting, rpc::Error> {
        self.client
            .change_setting(
                who,
                &ChangeSettingRequest {
                    key: key.into(),
                    scope: scope.into(),
                    value_json: value.to_string(),
                    expected_version,
                    reason: "testing".into(),
                },
            )
            .await
    }

    pub async fn change(
        &self,
        key: &str,
        value: serde_json::Value,
        expected_version: i64,
    ) -> Result<Setting, rpc::Error> {
        self.change_as(&admin(), key, "", value, expected_version)
            .await
    }

    pub async fn rollback(
        &self,
        key: &str,
        to_version: i64,
        expected_version: i64,
    ) -> Result<Setting, rpc::Error> {
        self.client
            .rollback_setting(
                &admin(),
                &RollbackSettingRequest {
                    key: key.into(),
                    scope: String::new(),
                    to_version,
                    expected_version,
                    reason: "it broke checkout".into(),
                },
            )
            .await
    }

    pub async fn list(&self, scope: &str) -> Vec<api::settings::SettingEntry> {
        self.client
            .list_settings(
                &admin(),
                &ListSettingsRequest {
                    scope: scope.into(),
                },
            )
            .await
            .expect("listing settings")
            .settings
    }

    /// A pkg/settings reader as another service runs one: its own connection, as the order
    /// service's identity (read and watch only).
    pub async fn watcher(&self) -> Watcher {
        let nats = self.servers.nats.connect_as("order").await;
        let stop = CancellationToken::new();
        let (settings, task) = settings::Settings::start(nats, stop.clone()).await;
        Watcher {
            settings,
            stop,
            task,
        }
    }
}

pub struct Watcher {
    pub settings: settings::Settings,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    /// Waits (up to [`ARRIVAL_BOUND`]) until `done` holds for the watcher's settings.
    pub async fn until(&self, what: &str, done: impl Fn(&settings::Settings) -> bool) {
        let started = Instant::now();
        while !done(&self.settings) {
            assert!(
                started.elapsed() < ARRIVAL_BOUND,
                "{what}: not seen by the watcher after {ARRIVAL_BOUND:?}"
            );
            self.settings.changed(Duration::from_millis(100)).await;
        }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.expect("the watcher ends when told");
    }
}
