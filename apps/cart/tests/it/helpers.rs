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
use cart_service::Config;
use rpc::Context;
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
    product_service: Companion,
}

impl std::ops::Deref for TestApp {
    type Target = CartApp;

    fn deref(&self) -> &CartApp {
        &self.cart
    }
}

/// A signed-in customer with a fresh user id.
pub fn shopper() -> Context {
    testkit::callers::customer(&Uuid::now_v7().to_string())
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

/// A product to create: USD 10.00 in a shop of its own, 10 in stock.
pub fn product(name: &str) -> CreateProductRequest {
    CreateProductRequest {
        shop_id: Uuid::now_v7().to_string(),
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
    pub async fn spawn() -> Self {
        let harness = Harness::start(cart_service::start, |_: &mut Config| {}).await;
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
        let products = ProductClient::new(rpc::Client::new(harness.nats.clone()));
        Self {
            cart: CartApp::new(harness),
            products,
            product_service,
        }
    }

    /// Stops both services the way SIGTERM does and checks that they shut down cleanly.
    pub async fn stop(self) {
        self.product_service.stop().await;
        self.cart.harness.stop().await;
    }

    pub async fn create_product(&self, request: CreateProductRequest) -> Product {
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
