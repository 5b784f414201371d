//! `TestApp`: the cart service and the product service on private servers, and helpers that
//! read like what a shopper does.

use api::cart::{
    Cart, CartClient, ClearCartRequest, CreateCartRequest, GetCartRequest, RemoveItemRequest,
    SetItemRequest,
};
use api::common::Money;
use api::product::{
    CreateProductRequest, Product, ProductClient, SetStockRequest, UpdateProductRequest,
};
use api::shop::{ApproveShopRequest, CreateShopRequest, ShopClient};
use api::voucher::VoucherClient;
use cart_service::Config;
use rpc::{Context, roles};
use testkit::callers::admin;
use testkit::{Companion, Harness};
use uuid::Uuid;

pub use testkit::callers::anonymous;
pub use testkit::{bad_fields, expect_error};

testkit::test_app!(CartApp, Config, CartClient);

/// The cart service under test, with the catalog it prices carts from.
pub struct TestApp {
    pub cart: CartApp,
    pub products: ProductClient,
    pub vouchers: VoucherClient,
    pub shops: ShopClient,
    /// Absent once a test stopped it.
    product_service: Option<Companion>,
    /// Product asks it who may change a shop's catalog.
    shop_service: Companion,
    /// Absent unless the test asks for vouchers: then nothing answers for them.
    voucher_service: Option<Companion>,
}

impl std::ops::Deref for TestApp {
    type Target = CartApp;

    fn deref(&self) -> &CartApp {
        &self.cart
    }
}

impl std::ops::DerefMut for TestApp {
    fn deref_mut(&mut self) -> &mut CartApp {
        &mut self.cart
    }
}

/// A signed-in customer with a fresh user id.
pub fn shopper() -> Context {
    testkit::callers::customer(&Uuid::now_v7().to_string())
}

/// A signed-in seller with a fresh user id.
pub fn seller() -> Context {
    testkit::callers::signed_in(&Uuid::now_v7().to_string(), &[roles::SELLER])
}

pub fn user_id(ctx: &Context) -> String {
    ctx.principal().expect("a signed-in caller").user_id.clone()
}

pub fn money(minor_units: i64, currency: &str) -> Option<Money> {
    Some(Money {
        minor_units,
        currency: currency.into(),
    })
}

/// A product to create: USD 10.00, 10 in stock, in a shop of its own unless a `shop_id` is
/// set (see [`TestApp::create_product`]).
pub fn product(name: &str) -> CreateProductRequest {
    CreateProductRequest {
        name: name.into(),
        description: format!("The {name}."),
        price: money(1000, "USD"),
        initial_stock: 10,
        ..Default::default()
    }
}

/// `(product id, quantity, status)` of every line, in order.
pub fn lines(cart: &Cart) -> Vec<(String, i32, String)> {
    cart.lines
        .iter()
        .map(|line| (line.product_id.clone(), line.quantity, line.status.clone()))
        .collect()
}

pub fn line(product: &Product, quantity: i32, status: &str) -> (String, i32, String) {
    (product.id.clone(), quantity, status.to_owned())
}

impl TestApp {
    /// The cart with the catalog, and nothing answering for vouchers.
    pub async fn spawn() -> Self {
        Self::start(false).await
    }

    /// The cart with the catalog and the voucher service.
    pub async fn spawn_with_vouchers() -> Self {
        Self::start(true).await
    }

    async fn start(with_vouchers: bool) -> Self {
        let harness = Harness::start(cart_service::start, |_: &mut Config| {}).await;
        let shop_service = harness
            .companion(shop_service::start, |config: &mut shop_service::Config| {
                config.seed_demo_shop = false;
            })
            .await;
        let product_service = harness
            .companion(
                product_service::start,
                |config: &mut product_service::Config| {
                    config.seed_demo_catalog = false;
                    // Prices read through LookupProducts; no cached copy may hide a change.
                    config.product_cache_local_ttl_ms = 0;
                },
            )
            .await;
        let voucher_service = match with_vouchers {
            true => Some(
                harness
                    .companion(voucher_service::start, |_: &mut voucher_service::Config| {})
                    .await,
            ),
            false => None,
        };
        let client = rpc::Client::new(harness.nats.clone());
        Self {
            products: ProductClient::new(client.clone()),
            shops: ShopClient::new(client.clone()),
            vouchers: VoucherClient::new(client),
            cart: CartApp::new(harness),
            product_service: Some(product_service),
            shop_service,
            voucher_service,
        }
    }

    /// Stops the product service, as an outage does.
    pub async fn stop_catalog(&mut self) {
        if let Some(catalog) = self.product_service.take() {
            catalog.stop().await;
        }
    }

    /// Stops both services the way SIGTERM does and checks that they shut down cleanly.
    pub async fn stop(self) {
        if let Some(vouchers) = self.voucher_service {
            vouchers.stop().await;
        }
        if let Some(catalog) = self.product_service {
            catalog.stop().await;
        }
        self.shop_service.stop().await;
        self.cart.harness.stop().await;
    }

    /// An active shop trading in `currency`, of a seller of its own.
    pub async fn new_shop(&self, currency: &str) -> String {
        self.new_shop_of(&seller(), currency).await
    }

    /// An active shop of `seller` trading in `currency`.
    pub async fn new_shop_of(&self, seller: &Context, currency: &str) -> String {
        let slug = format!("shop-{}", Uuid::now_v7().simple());
        let shop = self
            .shops
            .create_shop(
                seller,
                &CreateShopRequest {
                    name: slug.clone(),
                    slug,
                    contact_email: "seller@example.com".into(),
                    currency: currency.into(),
                    ..Default::default()
                },
            )
            .await
            .expect("opening a shop");
        self.shops
            .approve_shop(
                &admin(),
                &ApproveShopRequest {
                    id: shop.id.clone(),
                },
            )
            .await
            .expect("approving a shop");
        shop.id
    }

    /// Creates the product, in a new shop of its price's currency when it names none.
    pub async fn create_product(&self, mut request: CreateProductRequest) -> Product {
        if request.shop_id.is_empty() {
            let currency = request.price.as_ref().map(|price| price.currency.clone());
            request.shop_id = self.new_shop(&currency.unwrap_or_default()).await;
        }
        self.products
            .create_product(&admin(), &request)
            .await
            .expect("creating a product")
    }

    pub async fn update_product(&self, request: UpdateProductRequest) -> Product {
        self.products
            .update_product(&admin(), &request)
            .await
            .expect("updating a product")
    }

    pub async fn set_stock(&self, product: &Product, stock: i64) {
        self.products
            .set_stock(
                &admin(),
                &SetStockRequest {
                    id: product.id.clone(),
                    stock,
                },
            )
            .await
            .expect("setting stock");
    }

    /// A new guest cart's token.
    pub async fn new_guest_cart(&self) -> String {
        let created = self
            .client
            .create_cart(&anonymous(), &CreateCartRequest {})
            .await
            .expect("creating a guest cart");
        assert!(created.cart.is_some(), "the new cart comes with its token");
        created.cart_token
    }

    pub async fn get(&self, ctx: &Context, token: &str) -> Result<Cart, rpc::Error> {
        self.client
            .get_cart(
                ctx,
                &GetCartRequest {
                    cart_token: token.into(),
                },
            )
            .await
    }

    pub async fn set(
        &self,
        ctx: &Context,
        token: &str,
        product_id: &str,
        quantity: i32,
    ) -> Result<Cart, rpc::Error> {
        self.client
            .set_item(
                ctx,
                &SetItemRequest {
                    cart_token: token.into(),
                    product_id: product_id.into(),
                    quantity,
                },
            )
            .await
    }

    pub async fn remove(&self, ctx: &Context, token: &str, product_id: &str) -> Cart {
        self.client
            .remove_item(
                ctx,
                &RemoveItemRequest {
                    cart_token: token.into(),
                    product_id: product_id.into(),
                },
            )
            .await
            .expect("removing a line")
    }

    pub async fn clear(&self, ctx: &Context, token: &str) -> Cart {
        self.client
            .clear_cart(
                ctx,
                &ClearCartRequest {
                    cart_token: token.into(),
                },
            )
            .await
            .expect("clearing a cart")
    }

    /// A connection to the cart service's own Redis.
    pub async fn redis(&self) -> redis::aio::MultiplexedConnection {
        let url = self
            .servers
            .redis
            .as_ref()
            .expect("the cart service has Redis")
            .url();
        redis::Client::open(url)
            .expect("a Redis URL")
            .get_multiplexed_async_connection()
            .await
            .expect("connecting to Redis")
    }

    /// Forgets everything Redis holds, as a restart without persistence does.
    pub async fn flush_redis(&self) {
        let () = redis::cmd("FLUSHALL")
            .query_async(&mut self.redis().await)
            .await
            .expect("FLUSHALL");
    }
}

/// The fields any error names (`bad_fields` is for `invalid_argument` only; the cart also
/// names the field of a `not_found` or `failed_precondition`).
pub fn named_fields(error: &rpc::Error) -> Vec<&str> {
    error.details().iter().map(|d| d.field.as_str()).collect()
}
