//! `TestApp`: the order service with every service the checkout calls, each on its own
//! database on one private nats-server, and helpers that read like what people do.

use std::time::{Duration, Instant};

use api::address::{AddressClient, CreateAddressRequest};
use api::cart::{ApplyVoucherRequest, Cart, CartClient, GetCartRequest, SetItemRequest};
use api::common::Money;
use api::order::{
    CheckoutQuote, CheckoutRequest, CheckoutResponse, GetOrderRequest, Order, OrderClient,
    QuoteCheckoutRequest, ShipSubOrderRequest, SubOrder,
};
use api::payment::{CreatePaymentMethodRequest, ListPaymentsRequest, Payment, PaymentClient};
use api::product::{
    Availability, CreateProductRequest, GetAvailabilityRequest, Product, ProductClient,
    UpdateProductRequest,
};
use api::shop::{ApproveShopRequest, CreateShopRequest, ShopClient};
use api::voucher::{CreateVoucherRequest, GetVoucherRequest, Voucher, VoucherClient};
use order_service::Config;
use rpc::{Context, roles};
use testkit::callers::admin;
use testkit::{Companion, Harness};
use uuid::Uuid;

#[allow(unused_imports)]
pub use testkit::{bad_fields, expect_error};

testkit::test_app!(OrderApp, Config, OrderClient);

/// The approved test cards of the simulated provider.
pub const VISA_OK: &str = "4242424242424242";
pub const VISA_DECLINED: &str = "4000000000000002";
pub const VISA_NO_FUNDS: &str = "4000000000009995";
pub const VISA_PROCESSING_ERROR: &str = "4000000000000119";

/// The order service under test, with cart, address, product, shop, voucher and payment.
pub struct TestApp {
    pub order: OrderApp,
    pub carts: CartClient,
    pub addresses: AddressClient,
    pub products: ProductClient,
    pub shops: ShopClient,
    pub vouchers: VoucherClient,
    pub payments: PaymentClient,
    companions: Vec<Companion>,
}

impl std::ops::Deref for TestApp {
    type Target = OrderApp;

    fn deref(&self) -> &OrderApp {
        &self.order
    }
}

/// A customer with an address and a card on file.
#[derive(Clone)]
pub struct Customer {
    pub ctx: Context,
    pub id: String,
    pub address_id: String,
    pub payment_method_id: String,
}

/// A seller with an active shop.
#[derive(Clone)]
pub struct Seller {
    pub ctx: Context,
    pub shop_id: String,
    pub shop_name: String,
}

pub fn usd(minor_units: i64) -> Option<Money> {
    Some(Money {
        minor_units,
        currency: "USD".into(),
    })
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> Self {
        let harness = Harness::start(order_service::start, |config: &mut Config| {
            config.saga_poll_ms = 50;
            config.saga_lease_ms = 2_000;
            // Shipping 5.00 per sub-order, no tax in the US, 10% in Germany.
            config.shipping_rates = "standard=500,express=1500".into();
            config.tax_rates = "US=0,DE=1000".into();
            configure(config);
        })
        .await;
        let mut companions = Vec::new();
        companions.push(
            harness
                .companion(shop_service::start, |c: &mut shop_service::Config| {
                    c.seed_demo_shop = false;
                })
                .await,
        );
        companions.push(
            harness
                .companion(product_service::start, |c: &mut product_service::Config| {
                    c.seed_demo_catalog = false;
                    c.product_cache_local_ttl_ms = 0;
                })
                .await,
        );
        companions.push(
            harness
                .companion(voucher_service::start, |_: &mut voucher_service::Config| {})
                .await,
        );
        companions.push(
            harness
                .companion(cart_service::start, |_: &mut cart_service::Config| {})
                .await,
        );
        companions.push(
            harness
                .companion(address_service::start, |_: &mut address_service::Config| {})
                .await,
        );
        companions.push(
            harness
                .companion(payment_service::start, |_: &mut payment_service::Config| {})
                .await,
        );
        let client = rpc::Client::new(harness.nats.clone());
        Self {
            carts: CartClient::new(client.clone()),
            addresses: AddressClient::new(client.clone()),
            products: ProductClient::new(client.clone()),
            shops: ShopClient::new(client.clone()),
            vouchers: VoucherClient::new(client.clone()),
            payments: PaymentClient::new(client),
            order: OrderApp::new(harness),
            companions,
        }
    }

    /// Starts the settings service beside the others, and a client of it: shipping, tax and
    /// the checkout's hold then come from its bucket instead of the order service's flags.
    /// Like the dev stack's, it accepts fault flags.
    pub async fn start_settings_service(&mut self) -> api::settings::SettingsClient {
        let settings = self
            .companion(
                settings_service::start,
                |c: &mut settings_service::Config| c.allow_fault_flags = true,
            )
            .await;
        self.companions.push(settings);
        api::settings::SettingsClient::new(rpc::Client::new(self.nats.clone()))
    }

    /// Stops every service the way SIGTERM does and checks they shut down cleanly and that
    /// NATS refused none of them anything.
    pub async fn stop(self) {
        for companion in self.companions.into_iter().rev() {
            companion.stop().await;
        }
        self.order.harness.stop().await;
    }

    /// A seller with an active shop trading in USD.
    pub async fn seller(&self) -> Seller {
        let ctx = testkit::callers::signed_in(&Uuid::now_v7().to_string(), &[roles::SELLER]);
        let slug = format!("shop-{}", Uuid::now_v7().simple());
        let shop = self
            .shops
            .create_shop(
                &ctx,
                &CreateShopRequest {
                    name: format!("Atelier {slug}"),
                    slug,
                    contact_email: "seller@example.com".into(),
                    currency: "USD".into(),
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
        Seller {
            ctx,
            shop_id: shop.id,
            shop_name: shop.name,
        }
    }

    /// A product of `seller`'s at `price` cents with `stock` on hand.
    pub async fn product(&self, seller: &Seller, name: &str, price: i64, stock: i64) -> Product {
        self.products
            .create_product(
                &seller.ctx,
                &CreateProductRequest {
                    shop_id: seller.shop_id.clone(),
                    name: name.into(),
                    description: format!("The {name}."),
                    price: usd(price),
                    initial_stock: stock,
                    ..Default::default()
                },
            )
            .await
            .expect("creating a product")
    }

    pub async fn reprice(&self, seller: &Seller, product: &Product, price: i64) {
        self.products
            .update_product(
                &seller.ctx,
                &UpdateProductRequest {
                    id: product.id.clone(),
                    price: usd(price),
                    ..Default::default()
                },
            )
            .await
            .expect("repricing a product");
    }

    pub async fn availability(&self, product: &Product) -> Availability {
        self.products
            .get_availability(
                &testkit::callers::anonymous(),
                &GetAvailabilityRequest {
                    id: product.id.clone(),
                },
            )
            .await
            .expect("reading availability")
    }

    /// A customer with a US address and `card` on file.
    pub async fn customer_with(&self, card: &str, country: &str) -> Customer {
        let id = Uuid::now_v7().to_string();
        let ctx = testkit::callers::customer(&id);
        let (line1, city, postal_code) = match country {
            "DE" => ("Unter den Linden 1", "Berlin", "10117"),
            _ => ("1 Market Street", "San Francisco", "94105"),
        };
        let address = self
            .addresses
            .create_address(
                &ctx,
                &CreateAddressRequest {
                    recipient_name: "Ada Lovelace".into(),
                    line1: line1.into(),
                    city: city.into(),
                    postal_code: postal_code.into(),
                    country_code: country.into(),
                    ..Default::default()
                },
            )
            .await
            .expect("adding an address");
        let method = self
            .payments
            .create_payment_method(
                &ctx,
                &CreatePaymentMethodRequest {
                    card_number: card.into(),
                    exp_month: 12,
                    exp_year: 2030,
                    cvc: "123".into(),
                },
            )
            .await
            .expect("adding a card");
        Customer {
            ctx,
            id,
            address_id: address.id,
            payment_method_id: method.id,
        }
    }

    pub async fn customer(&self) -> Customer {
        self.customer_with(VISA_OK, "US").await
    }

    pub async fn add_to_cart(&self, customer: &Customer, product: &Product, quantity: i32) -> Cart {
        self.carts
            .set_item(
                &customer.ctx,
                &SetItemRequest {
                    product_id: product.id.clone(),
                    quantity,
                    ..Default::default()
                },
            )
            .await
            .expect("adding to the cart")
    }

    pub async fn cart(&self, customer: &Customer) -> Cart {
        self.carts
            .get_cart(&customer.ctx, &GetCartRequest::default())
            .await
            .expect("reading the cart")
    }

    pub async fn apply_voucher(&self, customer: &Customer, code: &str) -> Cart {
        self.carts
            .apply_voucher(
                &customer.ctx,
                &ApplyVoucherRequest {
                    code: code.into(),
                    ..Default::default()
                },
            )
            .await
            .expect("applying a voucher")
    }

    /// A platform-wide voucher taking `amount_off` cents, usable `usage_limit` times.
    pub async fn voucher(&self, code: &str, amount_off: i64, usage_limit: i32) -> Voucher {
        self.vouchers
            .create_voucher(
                &admin(),
                &CreateVoucherRequest {
                    code: code.into(),
                    kind: "fixed".into(),
                    amount_off_minor_units: amount_off,
                    currency: "USD".into(),
                    usage_limit,
                    ..Default::default()
                },
            )
            .await
            .expect("creating a voucher")
    }

    pub async fn voucher_state(&self, code: &str) -> Voucher {
        self.vouchers
            .get_voucher(&admin(), &GetVoucherRequest { code: code.into() })
            .await
            .expect("reading a voucher")
    }

    /// The checkout request of `customer` with `key`.
    pub fn checkout_request(&self, customer: &Customer, key: &str) -> CheckoutRequest {
        CheckoutRequest {
            idempotency_key: key.into(),
            shipping_address_id: customer.address_id.clone(),
            payment_method_id: customer.payment_method_id.clone(),
            ..Default::default()
        }
    }

    /// What checking out `customer`'s cart now would charge, with their address on file.
    pub async fn quote(
        &self,
        customer: &Customer,
        request: QuoteCheckoutRequest,
    ) -> Result<CheckoutQuote, rpc::Error> {
        let request = QuoteCheckoutRequest {
            shipping_address_id: if request.shipping_address_id.is_empty() {
                customer.address_id.clone()
            } else {
                request.shipping_address_id
            },
            ..request
        };
        self.client.quote_checkout(&customer.ctx, &request).await
    }

    pub async fn checkout_with(
        &self,
        customer: &Customer,
        request: &CheckoutRequest,
    ) -> Result<CheckoutResponse, rpc::Error> {
        self.client.checkout(&customer.ctx, request).await
    }

    /// Checks out with a fresh key and waits until the order is settled.
    pub async fn checkout(&self, customer: &Customer) -> Order {
        let request = self.checkout_request(customer, &Uuid::now_v7().to_string());
        let answer = self
            .checkout_with(customer, &request)
            .await
            .expect("checking out");
        let order = answer.order.expect("the answer holds the order");
        self.settled(customer, &order.id).await
    }

    pub async fn get_order(&self, ctx: &Context, id: &str) -> Result<Order, rpc::Error> {
        self.client
            .get_order(ctx, &GetOrderRequest { id: id.into() })
            .await
    }

    /// The order once it is no longer pending (its saga ended); fails after 20 s.
    pub async fn settled(&self, customer: &Customer, id: &str) -> Order {
        self.until(customer, id, |o| o.status != "pending").await
    }

    /// The order once `done` holds for it; fails after 20 s.
    pub async fn until(
        &self,
        customer: &Customer,
        id: &str,
        done: impl Fn(&Order) -> bool,
    ) -> Order {
        let started = Instant::now();
        loop {
            let order = self
                .get_order(&customer.ctx, id)
                .await
                .expect("reading the order");
            if done(&order) {
                return order;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "order {id} is still {}",
                order.status
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Every payment of an order (admin view, with ledgers).
    pub async fn payments_of(&self, order_id: &str) -> Vec<Payment> {
        let listed = self
            .payments
            .list_payments(
                &admin(),
                &ListPaymentsRequest {
                    order_id: order_id.into(),
                    ..Default::default()
                },
            )
            .await
            .expect("listing payments")
            .payments;
        let mut payments = Vec::new();
        for payment in listed {
            payments.push(
                self.payments
                    .get_payment(
                        &admin(),
                        &api::payment::GetPaymentRequest { id: payment.id },
                    )
                    .await
                    .expect("reading a payment"),
            );
        }
        payments
    }

    /// How many successful provider calls of `operation` the order's payments made.
    pub async fn provider_calls(&self, order_id: &str, operation: &str) -> usize {
        self.payments_of(order_id)
            .await
            .iter()
            .flat_map(|p| &p.ledger)
            .filter(|entry| entry.operation == operation && entry.outcome == "succeeded")
            .count()
    }

    pub async fn ship(
        &self,
        seller: &Seller,
        sub_order: &SubOrder,
        carrier: &str,
        tracking: &str,
    ) -> Result<SubOrder, rpc::Error> {
        self.client
            .ship_sub_order(
                &seller.ctx,
                &ShipSubOrderRequest {
                    id: sub_order.id.clone(),
                    carrier: carrier.into(),
                    tracking_number: tracking.into(),
                },
            )
            .await
    }
}

/// The sub-order of `shop_id` in `order`.
pub fn sub_order_of<'a>(order: &'a Order, seller: &Seller) -> &'a SubOrder {
    order
        .sub_orders
        .iter()
        .find(|s| s.shop_id == seller.shop_id)
        .expect("a sub-order of the shop")
}

/// Changes `key`'s platform value through the settings service, as an admin would.
pub async fn change_setting(
    settings: &api::settings::SettingsClient,
    key: &str,
    value: serde_json::Value,
    expected_version: i64,
) {
    settings
        .change_setting(
            &testkit::callers::admin(),
            &api::settings::ChangeSettingRequest {
                key: key.into(),
                scope: String::new(),
                value_json: value.to_string(),
                expected_version,
                reason: "a test's change".into(),
            },
        )
        .await
        .expect("changing a setting");
}

pub fn minor(money: &Option<Money>) -> i64 {
    money.as_ref().map(|m| m.minor_units).unwrap_or_default()
}

/// Reading and moving orders and sub-orders as customers, sellers and admins do.
impl TestApp {
    /// A paid order of `customer`'s, of `quantity` of each of `products` (each seller's
    /// product makes a sub-order of its shop).
    pub async fn paid_order(
        &self,
        customer: &Customer,
        products: &[&Product],
        quantity: i32,
    ) -> Order {
        for product in products {
            self.add_to_cart(customer, product, quantity).await;
        }
        let order = self.checkout(customer).await;
        assert_eq!(order.status, "paid", "{:?}", order.failure);
        order
    }

    pub async fn list_orders(
        &self,
        ctx: &Context,
        request: api::order::ListOrdersRequest,
    ) -> Result<api::order::ListOrdersResponse, rpc::Error> {
        self.client.list_orders(ctx, &request).await
    }

    pub async fn get_sub_order(&self, ctx: &Context, id: &str) -> Result<SubOrder, rpc::Error> {
        self.client
            .get_sub_order(ctx, &api::order::GetSubOrderRequest { id: id.into() })
            .await
    }

    /// The sub-orders of `shop_id` as `ctx` lists them, with `status` ("" for the default).
    pub async fn shop_sub_orders(
        &self,
        ctx: &Context,
        shop_id: &str,
        status: &str,
    ) -> Result<Vec<SubOrder>, rpc::Error> {
        self.client
            .list_shop_sub_orders(
                ctx,
                &api::order::ListShopSubOrdersRequest {
                    shop_id: shop_id.into(),
                    status: status.into(),
                    ..Default::default()
                },
            )
            .await
            .map(|page| page.sub_orders)
    }

    pub async fn deliver(
        &self,
        ctx: &Context,
        sub_order: &SubOrder,
    ) -> Result<SubOrder, rpc::Error> {
        self.client
            .deliver_sub_order(
                ctx,
                &api::order::DeliverSubOrderRequest {
                    id: sub_order.id.clone(),
                },
            )
            .await
    }

    pub async fn cancel(&self, ctx: &Context, id: &str) -> Result<CheckoutResponse, rpc::Error> {
        self.client
            .cancel_order(
                ctx,
                &api::order::CancelOrderRequest {
                    id: id.into(),
                    reason: "changed my mind".into(),
                },
            )
            .await
    }

    /// A payment method of `customer`'s besides the one on file, with `card`.
    pub async fn another_card(&self, customer: &Customer, card: &str) -> String {
        self.payments
            .create_payment_method(
                &customer.ctx,
                &CreatePaymentMethodRequest {
                    card_number: card.into(),
                    exp_month: 11,
                    exp_year: 2031,
                    cvc: "456".into(),
                },
            )
            .await
            .expect("adding a card")
            .id
    }

    /// An address of `customer`'s besides the one on file.
    pub async fn another_address(&self, customer: &Customer) -> String {
        self.addresses
            .create_address(
                &customer.ctx,
                &CreateAddressRequest {
                    recipient_name: "Charles Babbage".into(),
                    line1: "5 Devonshire Street".into(),
                    city: "New York".into(),
                    postal_code: "10001".into(),
                    country_code: "US".into(),
                    ..Default::default()
                },
            )
            .await
            .expect("adding an address")
            .id
    }
}

/// The message of a not-found error with the id in it made anonymous, to compare the answer
/// about someone else's resource with the answer about one that does not exist.
pub fn not_found_shape(error: &rpc::Error, id: &str) -> String {
    assert_eq!(error.code(), rpc::ErrorCode::NotFound, "{error}");
    error.message().replace(id, "<id>")
}
