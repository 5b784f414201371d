//! A seller has at most 20 shops, however many they try to open at once.

use std::sync::Arc;

use rpc::ErrorCode;
use shop_service::domain::MAX_SHOPS_PER_OWNER;

use crate::helpers::{TestApp, User, expect_error, shop};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seller_opens_at_most_twenty_shops_even_all_at_once() {
    let app = Arc::new(TestApp::spawn().await);
    let seller = User::seller();
    let attempts = MAX_SHOPS_PER_OWNER as usize + 5;
    let tasks: Vec<_> = (0..attempts)
        .map(|index| {
            let (app, seller) = (app.clone(), seller.clone());
            tokio::spawn(async move {
                app.client
                    .create_shop(&seller.ctx(), &shop(&format!("Branch {index}")))
                    .await
            })
        })
        .collect();
    let mut opened = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => opened += 1,
            Err(error) => {
                let error = expect_error(Err::<(), _>(error), ErrorCode::FailedPrecondition);
                assert!(error.message().contains("20 shops"), "{error}");
            }
        }
    }
    assert_eq!(opened, MAX_SHOPS_PER_OWNER as usize);
    assert_eq!(app.stored_shops().await, MAX_SHOPS_PER_OWNER);

    // The limit is per seller.
    app.open(&User::seller(), shop("Someone Else")).await;
    let app = Arc::into_inner(app).expect("every request task has ended");
    app.stop().await;
}
