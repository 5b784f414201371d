//! `TestApp`: the gateway in front of the product service, both on private servers, and
//! helpers that read like what an API client does.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser as _;
use rpc::MethodDescriptor;
use serde_json::{Value, json};
use testkit::{AppTask, Companion, NatsServer, RedisServer, ServiceTask, TestDatabase};

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
    /// The admin port: `http://127.0.0.1:<port>`
    pub admin_address: String,
    pub http: reqwest::Client,
    pub signing_key: tokens::SigningKey,
    /// A client of the test's NATS server, to watch what reaches it.
    pub nats: async_nats::Client,
    gateway: Option<AppTask>,
    product: Option<ServiceTask>,
    /// The shop service product asks on catalog writes, with the demo shop that
    /// [`new_product`] names.
    shop: Option<Companion>,
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

        let mut shop = None;
        let (product, database) = if options.product_service {
            // Products are created in the demo shop (active, in USD), which it seeds.
            shop = Some(
                Companion::start(&nats_server, shop_service::start, |config| {
                    config.seed_demo_shop = true;
                })
                .await,
            );
            let database = testkit::fresh_database()
                .await
                .expect("creating a database");
            let mut config = product_service::Config::try_parse_from(["product-service"])
                .expect("default product config");
            config.service.nats = nats_server.args_for("product");
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
        config.nats = nats_server.args_for("gateway");
        (options.configure)(&mut config);
        let application = gateway::Application::build(config)
            .await
            .expect("starting the gateway");
        let address = format!("http://{}", application.local_addr());
        let admin_address = format!("http://{}", application.admin_addr());
        let gateway = AppTask::spawn("gateway", |signal| application.run_until(signal));

        Self {
            address,
            admin_address,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
            signing_key,
            nats: nats_server.connect().await,
            gateway: Some(gateway),
            product,
            shop,
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
        if let Some(shop) = self.shop.take() {
            shop.stop().await;
        }
    }

    /// The URL of the test's nats-server.
    pub fn nats_url(&self) -> &str {
        self._nats_server.url()
    }

    /// The test's nats-server, for connecting as another identity.
    pub fn nats_server(&self) -> &NatsServer {
        &self._nats_server
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

    /// GET on the admin port.
    pub async fn admin_get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.admin_address))
            .send()
            .await
            .expect("GET sent to the admin port")
    }

    /// The Prometheus text the admin port serves.
    pub async fn metrics(&self) -> String {
        let response = self.admin_get("/metrics").await;
        assert_eq!(response.status(), 200, "/metrics on the admin port");
        response.text().await.expect("the metrics text")
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
        "shop_id": vocab::demo::DEMO_SHOP_ID,
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

/// A 64-bit integer of an answer, which canonical proto3 JSON writes as a string.
pub fn json_u64(value: &Value) -> u64 {
    value
        .as_str()
        .unwrap_or_else(|| panic!("a 64-bit integer as a string: {value}"))
        .parse()
        .unwrap_or_else(|e| panic!("a 64-bit integer: {value}: {e}"))
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

/// The key the auth service of a [`Platform`] signs with; tests mint tokens with it, as
/// `cargo xtask dev-token` does in the dev stack.
const PLATFORM_KEY_ID: &str = "platform-1";

/// What a [`Platform`] test needs to vary.
pub struct PlatformOptions {
    /// Run the product service too (auth, user and address always run).
    pub product_service: bool,
    /// Run the marketplace: product, shop, cart and voucher.
    pub marketplace: bool,
    /// Run checkout: the marketplace, and the order and payment services.
    pub checkout: bool,
    /// With `checkout`: how long the order service waits for a checkout's saga before it
    /// answers 202, and how long every provider call of the payment service takes.
    pub checkout_wait_ms: u64,
    pub payment_latency_ms: u64,
    /// Run what follows an order: the marketplace, the notification service (sending to an
    /// SMTP server of the platform's, [`Platform::smtp`]), comment and settings.
    pub after_the_order: bool,
    /// Adjusts the gateway's config before it starts.
    pub configure: Box<dyn FnOnce(&mut gateway::Config) + Send>,
}

impl Default for PlatformOptions {
    fn default() -> Self {
        Self {
            product_service: false,
            marketplace: false,
            checkout: false,
            checkout_wait_ms: 8_000,
            payment_latency_ms: 0,
            after_the_order: false,
            configure: Box::new(|_| {}),
        }
    }
}

/// The gateway in front of the auth, user and address services (and product when asked) on
/// private servers; the gateway takes its keys from the auth service over NATS.
pub struct Platform {
    pub address: String,
    pub http: reqwest::Client,
    pub signing_key: tokens::SigningKey,
    /// The SMTP server the notification service sends to, with `after_the_order`.
    pub smtp: Option<testkit::SmtpServer>,
    /// The gateway's admin port (health, /metrics).
    pub gateway_admin_addr: std::net::SocketAddr,
    /// Stopped first, then the services in order.
    gateway: AppTask,
    services: Vec<ServiceTask>,
    /// The marketplace services, stopped after the others.
    companions: Vec<Companion>,
    _key_dir: KeyDir,
    _databases: Vec<TestDatabase>,
    _redis: RedisServer,
    _nats: NatsServer,
}

struct KeyDir(PathBuf);

impl Drop for KeyDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Platform {
    pub async fn spawn() -> Self {
        Self::spawn_with(PlatformOptions::default()).await
    }

    pub async fn spawn_with(options: PlatformOptions) -> Self {
        telemetry::init_for_tests();
        let nats = NatsServer::start().await.expect("starting nats-server");
        let redis = RedisServer::start().await.expect("starting redis");
        let admin_addr = Some(([127, 0, 0, 1], 0).into());

        let key_dir =
            KeyDir(std::env::temp_dir().join(format!("platform-{}", uuid::Uuid::now_v7())));
        std::fs::create_dir_all(&key_dir.0).expect("creating the key directory");
        let signing_key = tokens::SigningKey::generate(PLATFORM_KEY_ID);
        let key_file = key_dir.0.join("signing-key.pem");
        std::fs::write(&key_file, signing_key.to_pkcs8_pem()).expect("writing the key");

        let auth_db = testkit::fresh_database().await.expect("auth database");
        let user_db = testkit::fresh_database().await.expect("user database");
        let address_db = testkit::fresh_database().await.expect("address database");

        let mut auth_config = auth_service::Config::try_parse_from([
            "auth-service",
            "--signing-key-file",
            key_file.to_str().expect("a UTF-8 temp path"),
            "--signing-key-id",
            PLATFORM_KEY_ID,
        ])
        .expect("auth config");
        auth_config.service.nats = nats.args_for("auth");
        auth_config.redis.redis_url = redis.url().to_owned();
        auth_config.postgres.database_url = Some(auth_db.url().to_owned());
        auth_config.service.admin_addr = admin_addr;
        let auth = ServiceTask::start(auth_service::start(auth_config)).await;

        let mut user_config =
            user_service::Config::try_parse_from(["user-service"]).expect("user config");
        user_config.service.nats = nats.args_for("user");
        user_config.postgres.database_url = Some(user_db.url().to_owned());
        user_config.service.admin_addr = admin_addr;
        let user = ServiceTask::start(user_service::start(user_config)).await;

        let mut address_config =
            address_service::Config::try_parse_from(["address-service"]).expect("address config");
        address_config.service.nats = nats.args_for("address");
        address_config.postgres.database_url = Some(address_db.url().to_owned());
        address_config.service.admin_addr = admin_addr;
        let address_app = ServiceTask::start(address_service::start(address_config)).await;

        let mut services = vec![address_app, user, auth];
        let mut databases = vec![auth_db, user_db, address_db];
        let mut companions = Vec::new();
        let marketplace = options.marketplace || options.checkout || options.after_the_order;
        if marketplace {
            // In the order a deployment starts them: whom each calls comes first.
            companions.push(Companion::start(&nats, shop_service::start, |_| {}).await);
            companions.push(Companion::start(&nats, voucher_service::start, |_| {}).await);
            companions.push(Companion::start(&nats, cart_service::start, |_| {}).await);
        }
        if options.checkout {
            let latency = options.payment_latency_ms;
            companions.push(
                Companion::start(
                    &nats,
                    payment_service::start,
                    |c: &mut payment_service::Config| {
                        c.simulated_provider_latency_ms = latency;
                    },
                )
                .await,
            );
            let wait = options.checkout_wait_ms;
            companions.push(
                Companion::start(
                    &nats,
                    order_service::start,
                    |c: &mut order_service::Config| {
                        c.checkout_wait_ms = wait;
                        c.saga_poll_ms = 50;
                    },
                )
                .await,
            );
        }
        let mut smtp = None;
        if options.after_the_order {
            companions.push(Companion::start(&nats, settings_service::start, |_| {}).await);
            let server = testkit::SmtpServer::start()
                .await
                .expect("starting the SMTP server");
            let url = server.url();
            companions.push(
                Companion::start(
                    &nats,
                    notification_service::start,
                    move |c: &mut notification_service::Config| {
                        c.mail.smtp_url = url.parse().expect("the SMTP server's URL");
                        c.mail.public_base_url = "https://shop.example/".parse().unwrap();
                        c.mail.email_retry_base_ms = 50;
                        c.mail.email_retry_max_ms = 400;
                        c.mail.email_poll_ms = 50;
                    },
                )
                .await,
            );
            companions.push(Companion::start(&nats, comment_service::start, |_| {}).await);
            smtp = Some(server);
        }
        if options.product_service || marketplace {
            let product_db = testkit::fresh_database().await.expect("product database");
            let mut config = product_service::Config::try_parse_from(["product-service"])
                .expect("default product config");
            config.service.nats = nats.args_for("product");
            config.redis.redis_url = redis.url().to_owned();
            config.postgres.database_url = Some(product_db.url().to_owned());
            config.service.admin_addr = admin_addr;
            config.seed_demo_catalog = false;
            services.insert(0, ServiceTask::start(product_service::start(config)).await);
            databases.push(product_db);
        }

        let mut gateway_config = gateway::Config::try_parse_from([
            "gateway",
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--admin-addr",
            "127.0.0.1:0",
            "--nats-url",
            nats.url(),
            "--redis-url",
            redis.url(),
            "--jwt-jwks-nats",
        ])
        .expect("gateway config");
        gateway_config.nats = nats.args_for("gateway");
        gateway_config.jwt_jwks_signer_file = Some(nats.credentials().signer_file());
        (options.configure)(&mut gateway_config);
        let gateway = gateway::Application::build(gateway_config)
            .await
            .expect("starting the gateway");
        let address = format!("http://{}", gateway.local_addr());
        let gateway_admin_addr = gateway.admin_addr();

        let gateway = AppTask::spawn("gateway", |signal| gateway.run_until(signal));
        Self {
            address,
            http: reqwest::Client::new(),
            signing_key,
            smtp,
            gateway_admin_addr,
            gateway,
            services,
            companions,
            _key_dir: key_dir,
            _databases: databases,
            _redis: redis,
            _nats: nats,
        }
    }

    /// Stops the gateway, then each service, checking each shuts down cleanly.
    pub async fn stop(self) {
        self.gateway.stop().await;
        for service in self.services {
            service.stop().await;
        }
        for companion in self.companions {
            companion.stop().await;
        }
    }

    /// Like [`Platform::send`], with extra request headers (`X-Cart-Token`).
    pub async fn send_with(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (reqwest::StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.address));
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// The admin ports of the services, for their readiness.
    pub fn service_admin_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.services
            .iter()
            .map(ServiceTask::admin_addr)
            .chain(self.companions.iter().map(Companion::admin_addr))
            .collect()
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (reqwest::StatusCode, Value) {
        self.send_with(method, path, body, token, &[]).await
    }

    pub async fn post(
        &self,
        path: &str,
        body: Value,
        token: Option<&str>,
    ) -> (reqwest::StatusCode, Value) {
        self.send(reqwest::Method::POST, path, Some(body), token)
            .await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (reqwest::StatusCode, Value) {
        self.send(reqwest::Method::GET, path, None, token).await
    }

    pub async fn register_and_login(&self, email: &str, password: &str) -> Value {
        let (status, body) = self
            .post(
                "/api/v1/auth/register",
                json!({"email": email, "password": password}),
                None,
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::OK, "register: {body}");
        let (status, tokens) = self
            .post(
                "/api/v1/auth/login",
                json!({"email": email, "password": password}),
                None,
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::OK, "login: {tokens}");
        tokens
    }

    /// The caller's profile, once the user service has consumed user.registered.
    pub async fn profile(&self, token: &str) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let (status, body) = self.get("/api/v1/users/me", Some(token)).await;
            match status {
                reqwest::StatusCode::OK => return body,
                reqwest::StatusCode::NOT_FOUND if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => panic!("GET /api/v1/users/me: {other} {body}"),
            }
        }
    }

    /// A token signed with the auth service's key, for a new user id with `roles`.
    pub fn token(&self, roles: &[&str]) -> String {
        self.signing_key.mint(
            &uuid::Uuid::now_v7().to_string(),
            roles,
            Duration::from_secs(300),
            tokens::DEFAULT_ISSUER,
            tokens::DEFAULT_AUDIENCE,
        )
    }

    pub fn admin_token(&self) -> String {
        self.token(&[rpc::roles::ADMIN])
    }
}

impl Platform {
    /// A NATS client with every permission, for a test's own publications.
    pub async fn operator(&self) -> async_nats::Client {
        self._nats.connect().await
    }

    /// Publishes a `user.registered` of `aggregate_id` that the user service's consumer can
    /// never apply (its user id is no UUID), as a producer with a bug would, so that consumer
    /// gives it up as a dead letter. Returns its event id.
    pub async fn publish_poisoned_registration(&self, aggregate_id: &str) -> String {
        let event = &api::auth::events::USER_REGISTERED;
        let event_id = uuid::Uuid::now_v7().to_string();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(events::headers::EVENT_ID, event_id.as_str());
        headers.insert(events::headers::MSG_ID, event_id.as_str());
        headers.insert(events::headers::EVENT_TYPE, event.name);
        headers.insert(events::headers::AGGREGATE_ID, aggregate_id);
        let payload = serde_json::json!({"user_id": "not-a-uuid", "email": "poison@example.com"});
        async_nats::jetstream::new(self.operator().await)
            .publish_with_headers(
                events::names::subject(event, aggregate_id).expect("the event's subject"),
                headers,
                payload.to_string().into(),
            )
            .await
            .expect("publishing the poisoned event")
            .await
            .expect("JetStream stores the poisoned event");
        event_id
    }

    /// The NATS permission violations the server logged so far.
    pub fn nats_violations(&self) -> Vec<String> {
        self._nats.violations()
    }
}
