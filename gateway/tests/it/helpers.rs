//! `TestApp`: the gateway in front of the product service, both on private servers, and
//! helpers that read like what an API client does.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser as _;
use rpc::MethodDescriptor;
use serde_json::{Value, json};
use testkit::{AppTask, NatsServer, RedisServer, ServiceTask, TestDatabase};

pub const ADMIN_ID: &str = "admin-1";
pub const CUSTOMER_ID: &str = "customer-1";

/// What a test needs to vary.
pub struct Options {
    /// Run the product service behind the gateway.
    pub product_service: bool,
    /// Adjusts the gateway's config before it starts.
    pub configure: Box<dyn FnOnce(&mut gateway::Config) + Send>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            product_service: true,
            configure: Box::new(|_| {}),
        }
    }
}

pub struct TestApp {
    /// `http://127.0.0.1:<port>`
    pub address: String,
    pub http: reqwest::Client,
    pub signing_key: tokens::SigningKey,
    /// A client of the test's NATS server, to watch what reaches it.
    pub nats: async_nats::Client,
    gateway: Option<AppTask>,
    product: Option<ServiceTask>,
    jwks_dir: PathBuf,
    // Dropped after the applications.
    redis: Option<RedisServer>,
    _database: Option<TestDatabase>,
    _nats_server: NatsServer,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(options: Options) -> Self {
        telemetry::init_for_tests();
        let nats_server = NatsServer::start().await.expect("starting nats-server");
        let redis = RedisServer::start().await.expect("starting redis");

        let (product, database) = if options.product_service {
            let database = testkit::fresh_database()
                .await
                .expect("creating a database");
            let mut config = product_service::Config::try_parse_from(["product-service"])
                .expect("default product config");
            config.service.nats.nats_url = nats_server.url().to_owned();
            config.redis.redis_url = redis.url().to_owned();
            config.postgres.database_url = Some(database.url().to_owned());
            config.service.admin_addr = Some(([127, 0, 0, 1], 0).into());
            config.seed_demo_catalog = false;
            let product = ServiceTask::start(product_service::start(config)).await;
            (Some(product), Some(database))
        } else {
            (None, None)
        };

        let signing_key = tokens::SigningKey::generate("test-key-1");
        let jwks_dir = std::env::temp_dir().join(format!("gateway-it-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&jwks_dir).expect("creating the JWKS directory");
        let jwks_file = jwks_dir.join("jwks.json");
        std::fs::write(&jwks_file, signing_key.jwks().to_json()).expect("writing the JWKS");

        let mut config = gateway::Config::try_parse_from([
            "gateway",
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--nats-url",
            nats_server.url(),
            "--redis-url",
            redis.url(),
            "--jwt-jwks-file",
            jwks_file.to_str().expect("a UTF-8 temp path"),
            "--cors-allowed-origins",
            "https://shop.example",
        ])
        .expect("gateway config");
        (options.configure)(&mut config);
        let application = gateway::Application::build(config)
            .await
            .expect("starting the gateway");
        let address = format!("http://{}", application.local_addr());
        let gateway = AppTask::spawn("gateway", |signal| application.run_until(signal));

        Self {
            address,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
            signing_key,
            nats: nats_server.connect().await,
            gateway: Some(gateway),
            product,
            jwks_dir,
            redis: Some(redis),
            _database: database,
            _nats_server: nats_server,
        }
    }

    /// Stops both applications the way SIGTERM does and checks they shut down cleanly.
    pub async fn stop(mut self) {
        if let Some(gateway) = self.gateway.take() {
            gateway.stop().await;
        }
        if let Some(product) = self.product.take() {
            product.stop().await;
        }
    }

    /// The URL of the test's nats-server.
    pub fn nats_url(&self) -> &str {
        self._nats_server.url()
    }

    /// The URL of the gateway's Redis, while it runs.
    pub fn redis_url(&self) -> Option<&str> {
        self.redis.as_ref().map(RedisServer::url)
    }

    /// Kills Redis under the running gateway.
    pub fn stop_redis(&mut self) {
        self.redis.take();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn token(&self, subject: &str, roles: &[&str]) -> String {
        self.signing_key.mint(
            subject,
            roles,
            Duration::from_secs(600),
            tokens::DEFAULT_ISSUER,
            tokens::DEFAULT_AUDIENCE,
        )
    }

    pub fn admin_token(&self) -> String {
        self.token(ADMIN_ID, &[rpc::roles::ADMIN])
    }

    pub fn customer_token(&self) -> String {
        self.token(CUSTOMER_ID, &[rpc::roles::CUSTOMER])
    }

    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path))
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, path)
            .send()
            .await
            .expect("GET sent")
    }

    pub async fn get_with_token(&self, path: &str, token: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, path)
            .bearer_auth(token)
            .send()
            .await
            .expect("GET sent")
    }

    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
        token: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.request(method, path).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    pub async fn post_json(
        &self,
        path: &str,
        body: &Value,
        token: Option<&str>,
    ) -> reqwest::Response {
        self.send_json(reqwest::Method::POST, path, body, token)
            .await
    }

    pub async fn patch_json(
        &self,
        path: &str,
        body: &Value,
        token: Option<&str>,
    ) -> reqwest::Response {
        self.send_json(reqwest::Method::PATCH, path, body, token)
            .await
    }

    /// Creates a product as an admin and returns it.
    pub async fn create_product(&self, body: &Value) -> Value {
        let response = self
            .post_json(&products_path(), body, Some(&self.admin_token()))
            .await;
        assert_eq!(response.status(), 200, "creating a product");
        response.json().await.expect("a product")
    }

    /// Every active product, as an anonymous shopper sees them.
    pub async fn list_products(&self, query: &str) -> Vec<Value> {
        let response = self.get(&format!("{}{query}", products_path())).await;
        assert_eq!(response.status(), 200, "listing products");
        let body: Value = response.json().await.expect("a product list");
        body["products"]
            .as_array()
            .expect("a products array")
            .clone()
    }

    /// Subscribes to `method`'s subject to see every request that reaches it.
    pub async fn watch(&self, method: &'static MethodDescriptor) -> async_nats::Subscriber {
        let subscriber = self
            .nats
            .subscribe(method.subject)
            .await
            .expect("subscribing");
        self.nats.flush().await.expect("flushing the subscription");
        subscriber
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Dropping the applications stops them.
        self.gateway.take();
        self.product.take();
        let _ = std::fs::remove_dir_all(&self.jwks_dir);
    }
}

/// The HTTP path of `method`, with its parameters filled in: taken from the contracts'
/// route table, so the tests check the routes the contracts declare.
pub fn path_of(method: &'static MethodDescriptor, params: &[(&str, &str)]) -> String {
    let route = api::ROUTES
        .iter()
        .find(|r| std::ptr::eq(r.descriptor, method))
        .unwrap_or_else(|| panic!("{} has no HTTP route", method.subject));
    let mut path = route.path.to_owned();
    for (name, value) in params {
        path = path.replace(&format!("{{{name}}}"), value);
    }
    assert!(!path.contains('{'), "unfilled parameter in {path}");
    path
}

/// The HTTP method of `method`'s route.
pub fn http_method_of(method: &'static MethodDescriptor) -> reqwest::Method {
    let route = api::ROUTES
        .iter()
        .find(|r| std::ptr::eq(r.descriptor, method))
        .expect("a route");
    route.http_method.parse().expect("an HTTP method")
}

pub fn products_path() -> String {
    path_of(&api::product::methods::LIST_PRODUCTS, &[])
}

pub fn product_path(id: &str) -> String {
    path_of(&api::product::methods::GET_PRODUCT, &[("id", id)])
}

/// A valid create-product body.
pub fn new_product(name: &str, minor_units: i64) -> Value {
    json!({
        "shop_id": uuid::Uuid::now_v7().to_string(),
        "name": name,
        "description": format!("The {name}, described."),
        "price": {"minor_units": minor_units, "currency": "USD"},
        "initial_stock": 5,
    })
}

/// The JSON error body of `response`, after checking its status and shape.
pub async fn expect_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status, "status of {}", response.url());
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "errors are JSON"
    );
    let body: Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].is_string(), "{body}");
    assert!(body["details"].is_array(), "{body}");
    body
}

/// The fields an error body names, in order.
pub fn bad_fields(body: &Value) -> Vec<String> {
    body["details"]
        .as_array()
        .expect("details")
        .iter()
        .map(|d| d["field"].as_str().expect("a field").to_owned())
        .collect()
}

/// Asserts no request arrives on `subscriber` for a little while.
pub async fn assert_nothing_arrives(subscriber: &mut async_nats::Subscriber) {
    use futures::StreamExt as _;
    let next = tokio::time::timeout(Duration::from_millis(300), subscriber.next()).await;
    assert!(
        next.is_err(),
        "a request reached NATS: {:?}",
        next.ok().flatten().map(|m| m.subject)
    );
}
