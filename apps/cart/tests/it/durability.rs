//! PostgreSQL keeps every cart; Redis is only the hot copy.

use cart_service::domain::{CartContents, CartKey, Line};
use cart_service::store::{Hot, HotCarts, StoredCart};
use uuid::Uuid;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carts_survive_a_redis_flush() {
    let app = TestApp::spawn().await;
    let [mug, tea] = [
        app.create_product(product("Mug")).await,
        app.create_product(product("Tea")).await,
    ];
    let user = shopper();
    app.set(&user, "", &mug.id, 2).await.unwrap();
    app.set(&user, "", &tea.id, 1).await.unwrap();
    let token = app.new_guest_cart().await;
    app.set(&anonymous(), &token, &tea.id, 4).await.unwrap();

    app.flush_redis().await;
    assert_eq!(
        lines(&app.get(&user, "").await.unwrap()),
        [line(&mug, 2, "ok"), line(&tea, 1, "ok")]
    );
    assert_eq!(
        lines(&app.get(&anonymous(), &token).await.unwrap()),
        [line(&tea, 4, "ok")]
    );
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("cart:*")
        .query_async(&mut app.redis().await)
        .await
        .unwrap();
    assert_eq!(keys.len(), 2, "the reads refilled Redis: {keys:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neither_store_holds_a_guest_token() {
    let app = TestApp::spawn().await;
    let mug = app.create_product(product("Mug")).await;
    let token = app.new_guest_cart().await;
    app.set(&anonymous(), &token, &mug.id, 1).await.unwrap();

    let keys: Vec<String> = sqlx::query_scalar("SELECT key FROM carts")
        .fetch_all(app.db())
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);
    assert!(!keys[0].contains(&token));
    let mut redis = app.redis().await;
    let redis_keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut redis)
        .await
        .unwrap();
    for key in redis_keys {
        assert!(!key.contains(&token));
        let fields: Vec<String> = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .unwrap();
        assert!(fields.iter().all(|field| !field.contains(&token)));
        let ttl: i64 = redis::cmd("TTL")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .unwrap();
        assert!(
            ttl > 29 * 24 * 3600,
            "a guest cart expires in 30 days: {ttl}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_copy_never_replaces_a_newer_one_in_redis() {
    let app = TestApp::spawn().await;
    let redis = redis::Client::open(app.servers.redis.as_ref().unwrap().url())
        .unwrap()
        .get_connection_manager()
        .await
        .unwrap();
    let hot = HotCarts::new(redis);
    let key = CartKey::user(&Uuid::now_v7().to_string());
    let cart = |version: i64, quantity: i32| StoredCart {
        contents: CartContents {
            lines: vec![Line {
                product_id: Uuid::nil(),
                quantity,
            }],
            currency: None,
            voucher_code: None,
        },
        version,
        ..StoredCart::empty(key.clone())
    };
    hot.put(&cart(6, 2)).await.unwrap();
    // A reader that loaded version 5 before the write refills late.
    hot.put(&cart(5, 1)).await.unwrap();
    assert_eq!(hot.get(&key).await.unwrap(), Some(Hot::Cart(cart(6, 2))));

    hot.bury(&key, 7, None).await.unwrap();
    hot.put(&cart(6, 2)).await.unwrap();
    assert_eq!(
        hot.get(&key).await.unwrap(),
        Some(Hot::Gone),
        "an ended cart stays ended"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_guest_carts_answer_like_missing_ones() {
    let app = TestApp::spawn().await;
    let token = app.new_guest_cart().await;
    sqlx::query("UPDATE carts SET expires_at = now() - interval '1 second'")
        .execute(app.db())
        .await
        .unwrap();
    app.flush_redis().await;
    expect_error(
        app.get(&anonymous(), &token).await,
        rpc::ErrorCode::NotFound,
    );
    let deleted = cart_service::store::delete_expired(app.db()).await.unwrap();
    assert_eq!(deleted, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carts_answer_through_a_redis_outage_and_lose_nothing() {
    let mut app = TestApp::spawn().await;
    let [mug, tea] = [
        app.create_product(product("Mug")).await,
        app.create_product(product("Tea")).await,
    ];
    let user = shopper();
    app.set(&user, "", &mug.id, 2).await.unwrap();

    app.servers.redis.as_mut().unwrap().stop();
    assert_eq!(
        lines(&app.get(&user, "").await.unwrap()),
        [line(&mug, 2, "ok")],
        "read from PostgreSQL while Redis is down"
    );
    app.set(&user, "", &tea.id, 1).await.unwrap();

    app.servers.redis.as_mut().unwrap().restart().await.unwrap();
    let expected = [line(&mug, 2, "ok"), line(&tea, 1, "ok")];
    // The connection comes back in the background; every answer meanwhile is the full cart.
    for _ in 0..20 {
        assert_eq!(lines(&app.get(&user, "").await.unwrap()), expected);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    app.stop().await;
}
