//! Integration tests of the auth service: each test starts its own nats-server and
//! PostgreSQL database, runs the real `Application` on them and calls it over NATS
//! the way the gateway and other services do.
//!
//! Written once by `cargo xtask new-service auth`; from now on it belongs to the service.

use std::net::SocketAddr;

use api::auth::{
    Auth, AuthClient, CreateAuthRequest, DeleteAuthRequest, GetAuthRequest, ListAuthsRequest,
    UpdateAuthRequest,
};
use auth_service::{Application, Config};
use clap::Parser as _;
use rpc::{Context, ErrorCode, Principal, roles};
use testkit::NatsServer;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

fn admin() -> Context {
    Context::background().with_principal(Principal {
        user_id: "admin-1".into(),
        roles: vec![roles::ADMIN.into()],
    })
}

fn customer() -> Context {
    Context::background().with_principal(Principal {
        user_id: "customer-1".into(),
        roles: vec![roles::CUSTOMER.into()],
    })
}

/// Asserts `result` failed with `code`, and returns the error.
#[track_caller]
fn expect_error<T: std::fmt::Debug>(result: Result<T, rpc::Error>, code: ErrorCode) -> rpc::Error {
    match result {
        Ok(value) => panic!("expected {code}, got {value:?}"),
        Err(error) => {
            assert_eq!(error.code(), code, "{error}");
            error
        }
    }
}

/// The service on private servers, and helpers that read like what a caller does.
struct TestApp {
    client: AuthClient,
    shutdown: Option<oneshot::Sender<()>>,
    running: Option<JoinHandle<anyhow::Result<()>>>,
    // Dropped last: the servers outlive the application.
    _database: testkit::TestDatabase,
    _nats_server: NatsServer,
}

impl TestApp {
    async fn spawn() -> Self {
        telemetry::init_for_tests();
        let nats_server = NatsServer::start().await.expect("starting nats-server");
        let mut config = Config::try_parse_from(["auth-service"]).expect("default config");
        config.nats.nats_url = nats_server.url().to_owned();
        config.service.admin_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        let database = testkit::fresh_database()
            .await
            .expect("creating a database");
        config.postgres.database_url = Some(database.url().to_owned());
        let application = Application::build(config)
            .await
            .expect("building the application");
        let (shutdown, signal) = oneshot::channel::<()>();
        let running = tokio::spawn(application.run_until(async move {
            let _ = signal.await;
        }));
        let nats = nats_server.connect().await;
        Self {
            client: AuthClient::new(rpc::Client::new(nats)),
            shutdown: Some(shutdown),
            running: Some(running),
            _database: database,
            _nats_server: nats_server,
        }
    }

    /// Stops the service the way SIGTERM does and checks that it shut down cleanly.
    async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let running = self.running.take().expect("the application is running");
        running
            .await
            .expect("the application task panicked")
            .expect("the application shut down with an error");
    }

    async fn create(&self, name: &str) -> Auth {
        self.client
            .create_auth(
                &admin(),
                &CreateAuthRequest {
                    name: name.into(),
                    description: format!("The {name}."),
                },
            )
            .await
            .expect("creating a auth")
    }

    async fn get(&self, id: &str) -> Result<Auth, rpc::Error> {
        self.client
            .get_auth(&Context::background(), &GetAuthRequest { id: id.into() })
            .await
    }

    async fn list(&self, page_size: i32, cursor: &str) -> (Vec<String>, String) {
        let page = self
            .client
            .list_auths(
                &Context::background(),
                &ListAuthsRequest {
                    page_size,
                    cursor: cursor.into(),
                },
            )
            .await
            .expect("listing auths");
        let names = page.auths.into_iter().map(|item| item.name).collect();
        (names, page.next_cursor)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_auth_can_be_created_read_updated_and_deleted() {
    let app = TestApp::spawn().await;
    let created = app.create("First").await;
    assert_eq!(created.name, "First");
    assert_eq!(created.description, "The First.");
    assert!(created.created_at.is_some());
    assert_eq!(app.get(&created.id).await.unwrap(), created);

    let updated = app
        .client
        .update_auth(
            &admin(),
            &UpdateAuthRequest {
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

    let delete = DeleteAuthRequest {
        id: created.id.clone(),
    };
    app.client
        .delete_auth(&admin(), &delete)
        .await
        .expect("deleting");
    expect_error(app.get(&created.id).await, ErrorCode::NotFound);
    expect_error(
        app.client.delete_auth(&admin(), &delete).await,
        ErrorCode::NotFound,
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_through_auths_in_creation_order() {
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
            .create_auth(&admin(), &CreateAuthRequest::default())
            .await,
        ErrorCode::InvalidArgument,
    );
    let fields: Vec<&str> = error.details().iter().map(|d| d.field.as_str()).collect();
    assert_eq!(fields, ["name"]);
    expect_error(app.get("not-a-uuid").await, ErrorCode::InvalidArgument);
    assert_eq!(app.list(0, "").await.0, Vec::<String>::new());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_write_and_anyone_reads() {
    let app = TestApp::spawn().await;
    let request = CreateAuthRequest {
        name: "Mine".into(),
        ..Default::default()
    };
    expect_error(
        app.client.create_auth(&customer(), &request).await,
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
        .filter(|route| route.descriptor.service == api::auth::SERVICE_NAME)
        .map(|route| (route.http_method, route.path))
        .collect();
    routes.sort();
    assert_eq!(
        routes,
        [
            ("DELETE", "/api/v1/auths/{id}"),
            ("GET", "/api/v1/auths"),
            ("GET", "/api/v1/auths/{id}"),
            ("PATCH", "/api/v1/auths/{id}"),
            ("POST", "/api/v1/auths"),
        ]
    );
}
