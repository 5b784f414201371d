//! Integration tests of the settings service: each test starts its own nats-server and
//! PostgreSQL database, runs the real service on them and calls it over NATS
//! the way the gateway and other services do.
//!
//! Written once by `cargo xtask new-service settings`; from now on it belongs to the service.

use api::settings::{
    CreateSettingsRequest, DeleteSettingsRequest, GetSettingsRequest, ListSettingsesRequest,
    Settings, SettingsClient, UpdateSettingsRequest,
};
use rpc::{Context, ErrorCode};
use settings_service::Config;
use testkit::callers::{self, admin};
use testkit::{Harness, bad_fields, expect_error};

fn customer() -> Context {
    callers::customer("customer-1")
}

testkit::test_app!(TestApp, Config, SettingsClient);

impl TestApp {
    async fn spawn() -> Self {
        let harness = Harness::start(settings_service::start, |_: &mut Config| {}).await;
        Self::new(harness)
    }

    /// Stops the service the way SIGTERM does and checks that it shut down cleanly.
    async fn stop(self) {
        self.harness.stop().await;
    }

    async fn create(&self, name: &str) -> Settings {
        self.client
            .create_settings(
                &admin(),
                &CreateSettingsRequest {
                    name: name.into(),
                    description: format!("The {name}."),
                },
            )
            .await
            .expect("creating a settings")
    }

    async fn get(&self, id: &str) -> Result<Settings, rpc::Error> {
        self.client
            .get_settings(
                &Context::background(),
                &GetSettingsRequest { id: id.into() },
            )
            .await
    }

    async fn list(&self, page_size: i32, cursor: &str) -> (Vec<String>, String) {
        let page = self
            .client
            .list_settingses(
                &Context::background(),
                &ListSettingsesRequest {
                    page_size,
                    cursor: cursor.into(),
                },
            )
            .await
            .expect("listing settingses");
        let names = page.settingses.into_iter().map(|item| item.name).collect();
        (names, page.next_cursor)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settings_can_be_created_read_updated_and_deleted() {
    let app = TestApp::spawn().await;
    let created = app.create("First").await;
    assert_eq!(created.name, "First");
    assert_eq!(created.description, "The First.");
    assert!(created.created_at.is_some());
    assert_eq!(app.get(&created.id).await.unwrap(), created);

    let updated = app
        .client
        .update_settings(
            &admin(),
            &UpdateSettingsRequest {
                id: created.id.clone(),
                name: Some("Renamed".into()),
                description: None,
            },
        )
        .await
        .expect("updating");
    assert_eq!(updated.name, "Renamed");
    assert_eq!(
        updated.description, "The First.",
        "absent fields stay as they were"
    );
    assert_eq!(app.get(&created.id).await.unwrap().name, "Renamed");

    let delete = DeleteSettingsRequest {
        id: created.id.clone(),
    };
    app.client
        .delete_settings(&admin(), &delete)
        .await
        .expect("deleting");
    expect_error(app.get(&created.id).await, ErrorCode::NotFound);
    expect_error(
        app.client.delete_settings(&admin(), &delete).await,
        ErrorCode::NotFound,
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_through_settingses_in_creation_order() {
    let app = TestApp::spawn().await;
    for name in ["One", "Two", "Three"] {
        app.create(name).await;
    }
    let (first, cursor) = app.list(2, "").await;
    assert_eq!(first, ["One", "Two"]);
    assert!(!cursor.is_empty());
    let (rest, cursor) = app.list(2, &cursor).await;
    assert_eq!(rest, ["Three"]);
    assert!(cursor.is_empty(), "the last page has no next cursor");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_name_their_fields_and_change_nothing() {
    let app = TestApp::spawn().await;
    let error = expect_error(
        app.client
            .create_settings(&admin(), &CreateSettingsRequest::default())
            .await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(bad_fields(&error), ["name"]);
    expect_error(app.get("not-a-uuid").await, ErrorCode::InvalidArgument);
    assert_eq!(app.list(0, "").await.0, Vec::<String>::new());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_write_and_anyone_reads() {
    let app = TestApp::spawn().await;
    let request = CreateSettingsRequest {
        name: "Mine".into(),
        ..Default::default()
    };
    expect_error(
        app.client.create_settings(&customer(), &request).await,
        ErrorCode::PermissionDenied,
    );
    let created = app.create("Public").await;
    assert_eq!(app.get(&created.id).await.unwrap().name, "Public");
    app.stop().await;
}

#[test]
fn the_gateway_routes_every_method_of_the_contract() {
    let mut routes: Vec<(&str, &str)> = api::ROUTES
        .iter()
        .filter(|route| route.descriptor.service == api::settings::SERVICE_NAME)
        .map(|route| (route.http_method, route.path))
        .collect();
    routes.sort();
    assert_eq!(
        routes,
        [
            ("DELETE", "/api/v1/settingses/{id}"),
            ("GET", "/api/v1/settingses"),
            ("GET", "/api/v1/settingses/{id}"),
            ("PATCH", "/api/v1/settingses/{id}"),
            ("POST", "/api/v1/settingses"),
        ]
    );
}
