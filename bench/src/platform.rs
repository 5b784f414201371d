//! The platform under test, in this process: private servers (pkg/testkit), the product
//! service, the gateway in front of it, and the bare axum baseline that serves the same
//! handler and cache without the gateway, NATS or the runtime in between.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use api::product::{
    CreateProductRequest, GetProductRequest, ProductClient, ProductService as _, methods,
};
use api::shop::{ApproveShopRequest, CreateShopRequest, ShopClient};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use clap::Parser as _;
use product_service::ProductHandlers;
use sqlx::PgPool;
use testkit::{Companion, NatsServer, RedisServer, TestDatabase};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The gateway's token buckets, so large that no benchmark request is refused: the Redis
/// round trip of every rate-limit check is still paid, as in production.
const UNLIMITED_RATES: &str = "default=1000000000/1,search=1000000000/1";

/// Words product names and descriptions are made of, so that a search matches a known share.
const NOUNS: [&str; 4] = ["widget", "gadget", "gizmo", "doohickey"];
const ADJECTIVES: [&str; 5] = ["red", "sturdy", "compact", "deluxe", "quiet"];

/// The word the search scenario looks for: in a quarter of the products.
pub const SEARCH_WORD: &str = "widget";

/// How the product service caches `GetProduct`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheMode {
    /// The production defaults: Redis (60 s) with the in-process tier (1 s) in front.
    Cached,
    /// No in-process tier and a 1 ms Redis TTL: every read misses the cache and goes to
    /// PostgreSQL (and pays the Redis GET and SET of the miss).
    Uncached,
}

/// nats-server, Redis and PostgreSQL, private to this run.
pub struct Servers {
    pub nats: NatsServer,
    pub redis: RedisServer,
    pub database: TestDatabase,
}

impl Servers {
    pub async fn start() -> anyhow::Result<Self> {
        Ok(Self {
            nats: NatsServer::start().await.context("starting nats-server")?,
            redis: RedisServer::start().await.context("starting redis")?,
            database: testkit::fresh_database()
                .await
                .context("creating a database")?,
        })
    }
}

/// A task serving until told to stop.
struct BenchTask {
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl BenchTask {
    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .context("stopping within 30 s")?
            .context("the task panicked")?
    }
}

/// The product service configuration the benchmark runs with.
pub fn product_config(
    servers: &Servers,
    mode: CacheMode,
) -> anyhow::Result<product_service::Config> {
    let mut config = product_service::Config::try_parse_from(["product-service"])?;
    config.service.nats = servers.nats.args_for("product");
    config.redis.redis_url = servers.redis.url().to_owned();
    config.postgres.database_url = Some(servers.database.url().to_owned());
    config.service.admin_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.seed_demo_catalog = false;
    if mode == CacheMode::Uncached {
        config.product_cache_ttl_ms = 1;
        config.product_cache_local_ttl_ms = 0;
    }
    Ok(config)
}

fn cache_config(config: &product_service::Config) -> db::cache::CacheConfig {
    db::cache::CacheConfig {
        namespace: product_service::CACHE_NAMESPACE.to_owned(),
        redis_ttl: Duration::from_millis(config.product_cache_ttl_ms),
        local_ttl: (config.product_cache_local_ttl_ms > 0)
            .then(|| Duration::from_millis(config.product_cache_local_ttl_ms)),
    }
}

async fn start_product(config: product_service::Config) -> anyhow::Result<BenchTask> {
    let serving = product_service::start(config)
        .await
        .context("starting the product service")?;
    let (shutdown, stop) = oneshot::channel();
    let task = tokio::spawn(serving.run_until(async {
        let _ = stop.await;
    }));
    Ok(BenchTask { shutdown, task })
}

/// Writes a JWKS for a fresh key where a gateway can read it: the directory, the file, and
/// the key, which signs the access tokens of the benchmark's customers.
pub fn write_jwks() -> anyhow::Result<(PathBuf, PathBuf, tokens::SigningKey)> {
    let dir = std::env::temp_dir().join(format!("emporium-bench-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("jwks.json");
    let key = tokens::SigningKey::generate("bench-1");
    std::fs::write(&file, key.jwks().to_json())?;
    Ok((dir, file, key))
}

/// The principal the benchmark's set-up acts as: an admin, who may open shops and stock any.
fn admin() -> rpc::Context {
    rpc::Context::background().with_principal(rpc::Principal {
        user_id: ADMIN_ID.to_owned(),
        roles: vec![rpc::roles::ADMIN.to_owned(), rpc::roles::SELLER.to_owned()],
    })
}

const ADMIN_ID: &str = "01900000-0000-7000-8000-0000000be7c1";

/// Everything the HTTP and inventory scenarios talk to.
pub struct Platform {
    pub servers: Servers,
    /// The product service's own database.
    pub pool: PgPool,
    pub product_client: ProductClient,
    pub gateway_addr: SocketAddr,
    pub bare_addr: SocketAddr,
    /// Ids of the products created for the read scenarios, all in `shop_id`.
    pub catalog: Vec<String>,
    /// The active shop the catalog belongs to.
    pub shop_id: String,
    shop_client: ShopClient,
    /// The shop service, which product asks on every catalog write; stopped last.
    shop: Option<Companion>,
    product: Option<BenchTask>,
    gateway: Option<BenchTask>,
    bare: Option<BenchTask>,
    handlers: Arc<ProductHandlers>,
    jwks_dir: PathBuf,
    /// The key of the JWKS the gateway trusts: bearer tokens signed with it are accepted.
    signing_key: tokens::SigningKey,
}

impl Platform {
    /// Starts the product service (cached), creates `catalog_size` products, and starts the
    /// gateway and the bare axum server.
    pub async fn start(servers: Servers, catalog_size: usize) -> anyhow::Result<Self> {
        let shop = Companion::start(&servers.nats, shop_service::start, |_| {}).await;
        let shop_client = ShopClient::new(rpc::Client::new(servers.nats.connect().await));
        let shop_id = open_shop(&shop_client, "bench-shop").await?;
        let config = product_config(&servers, CacheMode::Cached)?;
        let product = start_product(config.clone()).await?;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(config.postgres.max_connections)
            .connect(servers.database.url())
            .await
            .context("connecting to the product database")?;
        let redis = db::redis::connect(servers.redis.url()).await?;
        let handlers = Arc::new(ProductHandlers::new(
            pool.clone(),
            db::cache::Cache::new(redis, cache_config(&config)),
            product_service::shops::Shops::new(servers.nats.connect().await),
        ));
        let catalog = create_products(&handlers, &shop_id, catalog_size, 1_000).await?;

        let bare_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let bare_addr = bare_listener.local_addr()?;
        let bare = serve_bare(bare_listener, handlers.clone());

        let (jwks_dir, jwks_file, signing_key) = write_jwks()?;
        let mut gateway_config = gateway::Config::try_parse_from([
            "gateway",
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--nats-url",
            servers.nats.url(),
            "--redis-url",
            servers.redis.url(),
            "--jwt-jwks-file",
            jwks_file.to_str().context("a UTF-8 temporary path")?,
            "--rate-limits",
            UNLIMITED_RATES,
        ])?;
        gateway_config.nats = servers.nats.args_for("gateway");
        let application = gateway::Application::build(gateway_config)
            .await
            .context("starting the gateway")?;
        let gateway_addr = application.local_addr();
        let (shutdown, stop) = oneshot::channel();
        let task = tokio::spawn(application.run_until(async {
            let _ = stop.await;
        }));

        let nats = servers.nats.connect().await;
        Ok(Self {
            product_client: ProductClient::new(rpc::Client::new(nats)),
            servers,
            pool,
            gateway_addr,
            bare_addr,
            catalog,
            shop_id,
            shop_client,
            shop: Some(shop),
            product: Some(product),
            gateway: Some(BenchTask { shutdown, task }),
            bare: Some(bare),
            handlers,
            jwks_dir,
            signing_key,
        })
    }

    /// Replaces the running product service with one caching as `mode` says.
    pub async fn restart_product(&mut self, mode: CacheMode) -> anyhow::Result<()> {
        if let Some(product) = self.product.take() {
            product.stop().await?;
        }
        self.product = Some(start_product(product_config(&self.servers, mode)?).await?);
        Ok(())
    }

    /// Creates products in the catalog's shop through the handlers (no NATS in front; the
    /// handler asks the shop service), each with `stock` units.
    pub async fn create_products(&self, count: usize, stock: i64) -> anyhow::Result<Vec<String>> {
        create_products(&self.handlers, &self.shop_id, count, stock).await
    }

    /// Like [`Platform::create_products`], in another shop.
    pub async fn create_products_in(
        &self,
        shop_id: &str,
        count: usize,
        stock: i64,
    ) -> anyhow::Result<Vec<String>> {
        create_products(&self.handlers, shop_id, count, stock).await
    }

    /// Another active shop, in USD like the catalog's.
    pub async fn open_shop(&self, slug: &str) -> anyhow::Result<String> {
        open_shop(&self.shop_client, slug).await
    }

    /// A bearer access token for `user_id` with `roles`, signed with the key the gateway
    /// trusts, valid for an hour (longer than any run).
    pub fn access_token(&self, user_id: &str, roles: &[&str]) -> String {
        self.signing_key.mint(
            user_id,
            roles,
            Duration::from_secs(3_600),
            tokens::DEFAULT_ISSUER,
            tokens::DEFAULT_AUDIENCE,
        )
    }

    /// Stops everything; the servers go when `self.servers` is dropped.
    pub async fn stop(mut self) -> anyhow::Result<Servers> {
        for running in [self.gateway.take(), self.bare.take(), self.product.take()]
            .into_iter()
            .flatten()
        {
            running.stop().await?;
        }
        if let Some(shop) = self.shop.take() {
            shop.stop().await;
        }
        self.pool.close().await;
        let _ = std::fs::remove_dir_all(&self.jwks_dir);
        Ok(self.servers)
    }
}

/// An active shop opened (and approved) by the benchmark's admin.
async fn open_shop(client: &ShopClient, slug: &str) -> anyhow::Result<String> {
    let shop = client
        .create_shop(
            &admin(),
            &CreateShopRequest {
                name: format!("Shop {slug}"),
                slug: slug.to_owned(),
                contact_email: format!("{slug}@bench.example"),
                currency: "USD".to_owned(),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("opening a benchmark shop: {e}"))?;
    client
        .approve_shop(
            &admin(),
            &ApproveShopRequest {
                id: shop.id.clone(),
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("approving a benchmark shop: {e}"))?;
    Ok(shop.id)
}

async fn create_products(
    handlers: &ProductHandlers,
    shop_id: &str,
    count: usize,
    stock: i64,
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let noun = NOUNS[i % NOUNS.len()];
        let adjective = ADJECTIVES[(i / NOUNS.len()) % ADJECTIVES.len()];
        let request = CreateProductRequest {
            shop_id: shop_id.to_owned(),
            name: format!("{adjective} {noun} {i}"),
            description: format!(
                "A {adjective} {noun} for everyday use, number {i} of the benchmark catalog."
            ),
            price: Some(api::common::Money {
                minor_units: 500 + (i as i64 % 100) * 25,
                currency: "USD".into(),
            }),
            initial_stock: stock,
            ..Default::default()
        };
        let product = handlers
            .create_product(admin(), request)
            .await
            .map_err(|e| anyhow::anyhow!("creating a benchmark product: {e}"))?;
        ids.push(product.id);
    }
    Ok(ids)
}

/// The HTTP path template of `method`, from the contracts' route table.
pub fn route_path(method: &'static rpc::MethodDescriptor) -> &'static str {
    api::ROUTES
        .iter()
        .find(|route| std::ptr::eq(route.descriptor, method))
        .map(|route| route.path)
        .unwrap_or_else(|| panic!("{} has no HTTP route", method.subject))
}

/// The HTTP path of `GetProduct` for `id`, from the contracts' route table.
pub fn product_path(id: &str) -> String {
    route_path(&methods::GET_PRODUCT).replace("{id}", id)
}

/// The HTTP path of a `ListProducts` search for `word`.
pub fn search_path(word: &str) -> String {
    format!("{}?q={word}", route_path(&methods::LIST_PRODUCTS))
}

/// The baseline: `GET /api/v1/products/{id}` served by the product service's own handler
/// and cache, straight from axum.
fn serve_bare(listener: tokio::net::TcpListener, handlers: Arc<ProductHandlers>) -> BenchTask {
    let router = axum::Router::new()
        .route(
            route_path(&methods::GET_PRODUCT),
            axum::routing::get(bare_get_product),
        )
        .with_state(handlers);
    let (shutdown, stop) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stop.await;
            })
            .await
            .context("serving the bare axum baseline")
    });
    BenchTask { shutdown, task }
}

async fn bare_get_product(
    State(handlers): State<Arc<ProductHandlers>>,
    Path(id): Path<String>,
) -> Response {
    match handlers
        .get_product(rpc::Context::background(), GetProductRequest { id })
        .await
    {
        Ok(product) => match serde_json::to_vec(&product) {
            Ok(body) => ([(header::CONTENT_TYPE, rpc::headers::JSON)], body).into_response(),
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        },
        Err(error) if error.code() == rpc::ErrorCode::NotFound => {
            StatusCode::NOT_FOUND.into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
