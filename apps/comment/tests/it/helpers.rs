//! `TestApp`: the comment service beside the real product and shop services on private
//! servers, and helpers that read like what customers, sellers and admins do.

use std::time::{Duration, Instant};

use api::comment::{
    CommentClient, GetMyReviewRequest, GetReviewRequest, ListProductReviewsRequest,
    ListProductReviewsResponse, MarkHelpfulRequest, ModerateReviewRequest, PutMyReviewRequest,
    Review, ReviewSummary,
};
use api::order::events::{ORDER_CANCELLED, ORDER_PAID};
use api::order::{Order, OrderCancelled, OrderLine, OrderPaid, SubOrder};
use api::product::{CreateProductRequest, Product, ProductClient};
use api::shop::{ApproveShopRequest, CreateShopRequest, ShopClient};
use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer::pull};
use comment_service::Config;
use rpc::{Context, roles};
use testkit::{Companion, Harness};
use uuid::Uuid;

pub use testkit::callers::{admin, anonymous};
pub use testkit::{bad_fields, expect_error};

testkit::test_app!(CommentApp, Config, CommentClient);

/// The comment service and the services it asks about products and shops.
pub struct TestApp {
    pub app: CommentApp,
    pub products: ProductClient,
    pub shops: ShopClient,
    companions: Vec<Companion>,
}

impl std::ops::Deref for TestApp {
    type Target = CommentApp;

    fn deref(&self) -> &CommentApp {
        &self.app
    }
}

/// Someone signed in: their id and the context of a request they make.
#[derive(Clone)]
pub struct User {
    pub id: String,
    pub ctx: Context,
}

/// A seller with an active shop.
#[derive(Clone)]
pub struct Seller {
    pub ctx: Context,
    pub shop_id: String,
}

pub fn customer() -> User {
    let id = Uuid::now_v7().to_string();
    User {
        ctx: testkit::callers::customer(&id),
        id,
    }
}

impl TestApp {
    /// The services, with "scam" as the one banned word.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> Self {
        let harness = Harness::start(comment_service::start, |config: &mut Config| {
            // On PostgreSQL JSONB even when MONGODB_URL is set: the harness starts no MongoDB.
            config.mongo.mongodb_url = None;
            config.banned_words = "scam".into();
            configure(config);
        })
        .await;
        // What the order service does at its start-up.
        events::streams::ensure_for_producer(&harness.jetstream, "order", &Default::default())
            .await
            .expect("declaring the order service's streams");
        let companions = vec![
            harness
                .companion(shop_service::start, |c: &mut shop_service::Config| {
                    c.seed_demo_shop = false;
                })
                .await,
            harness
                .companion(product_service::start, |c: &mut product_service::Config| {
                    c.seed_demo_catalog = false;
                    c.product_cache_local_ttl_ms = 0;
                })
                .await,
        ];
        let client = rpc::Client::new(harness.nats.clone());
        Self {
            products: ProductClient::new(client.clone()),
            shops: ShopClient::new(client),
            app: CommentApp::new(harness),
            companions,
        }
    }

    /// Stops every service the way SIGTERM does, checks they shut down cleanly, that NATS
    /// refused none of them anything, and that the order event consumers left nothing
    /// undelivered or unacknowledged.
    pub async fn stop(self) {
        for event in [&ORDER_PAID, &ORDER_CANCELLED] {
            let info = self.consumer_info(event).await;
            assert_eq!(
                info.num_ack_pending, 0,
                "unacknowledged {} messages",
                event.name
            );
            assert_eq!(info.num_pending, 0, "undelivered {} messages", event.name);
        }
        for companion in self.companions.into_iter().rev() {
            companion.stop().await;
        }
        self.app.harness.stop().await;
    }

    /// A seller with an approved shop.
    pub async fn seller(&self) -> Seller {
        let id = Uuid::now_v7().to_string();
        let ctx = testkit::callers::signed_in(&id, &[roles::SELLER]);
        let slug = format!("shop-{}", Uuid::now_v7().simple());
        let shop = self
            .shops
            .create_shop(
                &ctx,
                &CreateShopRequest {
                    name: slug.clone(),
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
        }
    }

    /// A product of `seller`'s.
    pub async fn product_of(&self, seller: &Seller, name: &str) -> Product {
        self.products
            .create_product(
                &seller.ctx,
                &CreateProductRequest {
                    shop_id: seller.shop_id.clone(),
                    name: name.into(),
                    description: format!("The {name}."),
                    price: Some(api::common::Money {
                        minor_units: 1999,
                        currency: "USD".into(),
                    }),
                    initial_stock: 10,
                    ..Default::default()
                },
            )
            .await
            .expect("creating a product")
    }

    /// A product of a fresh seller's.
    pub async fn product(&self) -> Product {
        let seller = self.seller().await;
        self.product_of(&seller, "Kettle").await
    }

    pub async fn put_review(
        &self,
        user: &User,
        product_id: &str,
        rating: i32,
        title: &str,
        body: &str,
    ) -> Result<Review, rpc::Error> {
        self.client
            .put_my_review(
                &user.ctx,
                &PutMyReviewRequest {
                    id: product_id.into(),
                    rating,
                    title: title.into(),
                    body: body.into(),
                },
            )
            .await
    }

    /// `user` writes a review that no rule flags.
    pub async fn review(&self, user: &User, product_id: &str, rating: i32) -> Review {
        let review = self
            .put_review(
                user,
                product_id,
                rating,
                "Does the job",
                "Boils water quickly.",
            )
            .await
            .expect("writing a review");
        assert_eq!(review.status, "published");
        review
    }

    pub async fn my_review(&self, user: &User, product_id: &str) -> Result<Review, rpc::Error> {
        self.client
            .get_my_review(
                &user.ctx,
                &GetMyReviewRequest {
                    id: product_id.into(),
                },
            )
            .await
    }

    pub async fn get_review(&self, ctx: &Context, id: &str) -> Result<Review, rpc::Error> {
        self.client
            .get_review(ctx, &GetReviewRequest { id: id.into() })
            .await
    }

    pub async fn page(
        &self,
        product_id: &str,
        sort: &str,
        page_size: i32,
        cursor: &str,
    ) -> Result<ListProductReviewsResponse, rpc::Error> {
        self.client
            .list_product_reviews(
                &anonymous(),
                &ListProductReviewsRequest {
                    id: product_id.into(),
                    sort: sort.into(),
                    page_size,
                    cursor: cursor.into(),
                },
            )
            .await
    }

    pub async fn summary(&self, product_id: &str) -> ReviewSummary {
        self.page(product_id, "", 1, "")
            .await
            .expect("listing reviews")
            .summary
            .expect("a summary")
    }

    /// The ids of the published reviews of `product_id`, newest first.
    pub async fn listed(&self, product_id: &str) -> Vec<String> {
        self.page(product_id, "newest", 100, "")
            .await
            .expect("listing reviews")
            .reviews
            .into_iter()
            .map(|r| r.id)
            .collect()
    }

    pub async fn vote(&self, user: &User, review_id: &str) -> Result<Review, rpc::Error> {
        self.client
            .mark_helpful(
                &user.ctx,
                &MarkHelpfulRequest {
                    id: review_id.into(),
                },
            )
            .await
    }

    pub async fn moderate(
        &self,
        review_id: &str,
        action: &str,
        reason: &str,
    ) -> Result<Review, rpc::Error> {
        self.client
            .moderate_review(
                &admin(),
                &ModerateReviewRequest {
                    id: review_id.into(),
                    action: action.into(),
                    reason: reason.into(),
                },
            )
            .await
    }

    /// The durable consumer of `event`, as JetStream sees it.
    pub async fn consumer_info(&self, event: &api::EventDescriptor) -> jetstream::consumer::Info {
        let durable = events::names::durable_name(api::comment::SERVICE_NAME, event).unwrap();
        let mut consumer: jetstream::consumer::Consumer<pull::Config> = self
            .jetstream
            .get_stream(events::names::stream_of(event))
            .await
            .expect("the order event stream")
            .get_consumer(&durable)
            .await
            .expect("the comment service's consumer");
        consumer.info().await.expect("consumer info").clone()
    }

    /// Publishes `payload` as the order service's relay would: on its subject, with the event
    /// headers and `Nats-Msg-Id` = the event id, and waits until the comment service's
    /// consumer has decided it.
    pub async fn publish_order_event<E: api::Event>(&self, order_id: &str, payload: &E) {
        let event = E::DESCRIPTOR;
        let subject = events::names::subject(event, order_id).expect("an event subject");
        let event_id = Uuid::now_v7().to_string();
        let mut headers = HeaderMap::new();
        headers.insert(events::headers::EVENT_ID, event_id.as_str());
        headers.insert(events::headers::EVENT_TYPE, event.name);
        headers.insert(
            events::headers::EVENT_VERSION,
            event.version.to_string().as_str(),
        );
        headers.insert(events::headers::PRODUCER, event.producer);
        headers.insert(events::headers::AGGREGATE_ID, order_id);
        headers.insert(events::headers::CONTENT_TYPE, events::headers::JSON);
        headers.insert(events::headers::MSG_ID, event_id.as_str());
        let bytes = serde_json::to_vec(payload).expect("encoding the event");
        let ack = self
            .jetstream
            .publish_with_headers(subject, headers, bytes.into())
            .await
            .expect("publishing")
            .await
            .expect("the stream's ack");
        let started = Instant::now();
        loop {
            let info = self.consumer_info(event).await;
            if info.ack_floor.stream_sequence >= ack.sequence && info.num_ack_pending == 0 {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{} {} not handled: {info:?}",
                event.name,
                ack.sequence
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `user` paid an order of `product_ids`: order.paid as the order service publishes it.
    pub async fn paid(&self, user: &User, product_ids: &[&str]) -> Order {
        let order = order_of(user, product_ids, "paid");
        self.publish_order_event(
            &order.id,
            &OrderPaid {
                order: Some(order.clone()),
            },
        )
        .await;
        order
    }

    /// `order` was cancelled.
    pub async fn cancelled(&self, order: &Order) {
        let order = Order {
            status: "cancelled".into(),
            ..order.clone()
        };
        self.publish_order_event(&order.id.clone(), &OrderCancelled { order: Some(order) })
            .await;
    }
}

/// An order of `user`'s with one sub-order holding a line of each product.
pub fn order_of(user: &User, product_ids: &[&str], status: &str) -> Order {
    let order_id = Uuid::now_v7().to_string();
    Order {
        id: order_id.clone(),
        user_id: user.id.clone(),
        status: status.into(),
        currency: "USD".into(),
        sub_orders: vec![SubOrder {
            id: Uuid::now_v7().to_string(),
            order_id,
            shop_id: Uuid::now_v7().to_string(),
            status: status.into(),
            lines: product_ids
                .iter()
                .map(|id| OrderLine {
                    product_id: (*id).into(),
                    name: "Kettle".into(),
                    quantity: 1,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}
