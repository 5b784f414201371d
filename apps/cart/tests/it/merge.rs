//! The first request of a signed-in user that still carries a guest token moves the guest
//! cart into the user's, once.

use api::cart::ApplyVoucherRequest;
use rpc::ErrorCode;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_merges_the_guest_cart_once() {
    let app = TestApp::spawn().await;
    let [mug, tea, jam] = [
        app.create_product(product("Mug")).await,
        app.create_product(product("Tea")).await,
        app.create_product(product("Jam")).await,
    ];
    let user = shopper();
    app.set(&user, "", &jam.id, 1).await.unwrap();
    app.set(&user, "", &mug.id, 60).await.unwrap();
    let token = app.new_guest_cart().await;
    app.set(&anonymous(), &token, &tea.id, 2).await.unwrap();
    app.set(&anonymous(), &token, &mug.id, 50).await.unwrap();

    let merged = app.get(&user, &token).await.unwrap();
    assert_eq!(
        lines(&merged)
            .into_iter()
            .map(|(id, quantity, _)| (id, quantity))
            .collect::<Vec<_>>(),
        [
            (jam.id.clone(), 1),
            (mug.id.clone(), 99),
            (tea.id.clone(), 2)
        ],
        "the user's lines first, quantities added and capped at 99"
    );
    assert_eq!(merged.user_id, user_id(&user));
    let error = expect_error(app.get(&anonymous(), &token).await, ErrorCode::NotFound);
    assert_eq!(error.message(), "cart not found", "the guest cart is gone");

    let again = app.get(&user, &token).await.unwrap();
    assert_eq!(again.lines, merged.lines, "a second request adds nothing");
    let after_write = app.set(&user, &token, &tea.id, 3).await.unwrap();
    assert_eq!(after_write.lines.len(), 3);
    assert_eq!(after_write.lines[2].quantity, 3);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_requests_merge_the_guest_cart_once() {
    let app = TestApp::spawn().await;
    let mug = app.create_product(product("Mug")).await;
    let user = shopper();
    app.set(&user, "", &mug.id, 1).await.unwrap();
    let token = app.new_guest_cart().await;
    app.set(&anonymous(), &token, &mug.id, 5).await.unwrap();

    let requests = (0..6).map(|_| app.get(&user, &token));
    for answered in futures::future::join_all(requests).await {
        answered.expect("every request answers the user's cart");
    }
    let cart = app.get(&user, "").await.unwrap();
    assert_eq!(lines(&cart), [line(&mug, 6, "ok")], "1 + 5, added once");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_guest_token_on_a_signed_in_request_is_ignored() {
    let app = TestApp::spawn().await;
    let mug = app.create_product(product("Mug")).await;
    let user = shopper();
    app.set(&user, "", &mug.id, 2).await.unwrap();
    let cart = app.get(&user, "no-such-token").await.unwrap();
    assert_eq!(lines(&cart), [line(&mug, 2, "ok")]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_cart_merges_into_a_user_who_had_none() {
    let app = TestApp::spawn().await;
    let mug = app.create_product(product("Mug")).await;
    let token = app.new_guest_cart().await;
    app.set(&anonymous(), &token, &mug.id, 2).await.unwrap();
    let user = shopper();
    // Any cart request merges, a write as well as a read.
    let error = expect_error(
        app.client
            .apply_voucher(
                &user,
                &ApplyVoucherRequest {
                    cart_token: token.clone(),
                    code: "NOVOUCHERSERVICE".into(),
                },
            )
            .await,
        ErrorCode::Unavailable,
    );
    assert!(error.message().contains("voucher"), "{error}");
    let cart = app.get(&user, "").await.unwrap();
    assert_eq!(lines(&cart), [line(&mug, 2, "ok")]);
    assert!(
        cart.voucher.is_none(),
        "a code that could not be checked is not kept"
    );
    app.stop().await;
}
