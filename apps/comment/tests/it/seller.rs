//! The shop's owner replies once per review; nobody else speaks for the shop.

use api::comment::{ReplyToReviewRequest, Review};
use rpc::{Context, ErrorCode};

use crate::helpers::{TestApp, admin, bad_fields, customer, expect_error};

async fn reply(
    app: &TestApp,
    ctx: &Context,
    review: &Review,
    body: &str,
) -> Result<Review, rpc::Error> {
    app.client
        .reply_to_review(
            ctx,
            &ReplyToReviewRequest {
                id: review.id.clone(),
                body: body.into(),
            },
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shops_owner_replies_once_and_nobody_else_can() {
    let app = TestApp::spawn().await;
    let owner = app.seller().await;
    let other_seller = app.seller().await;
    let kettle = app.product_of(&owner, "Kettle").await;
    let ada = customer();
    let review = app.review(&ada, &kettle.id, 2).await;

    expect_error(
        reply(&app, &other_seller.ctx, &review, "We are sorry.").await,
        ErrorCode::PermissionDenied,
    );
    expect_error(
        reply(&app, &ada.ctx, &review, "Me again.").await,
        ErrorCode::PermissionDenied,
    );
    expect_error(
        reply(&app, &admin(), &review, "Admin here.").await,
        ErrorCode::PermissionDenied,
    );
    let error = reply(&app, &owner.ctx, &review, "<a href=x>see</a>")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&error), ["body"]);

    let answered = reply(&app, &owner.ctx, &review, "Sorry to hear it: write to us.")
        .await
        .unwrap();
    let answered_reply = answered.reply.clone();
    let answer = answered.reply.expect("the reply");
    assert_eq!(answer.body, "Sorry to hear it: write to us.");
    assert_eq!(answer.shop_id, owner.shop_id);
    // The same reply again (a retry) is answered with the review; another one is refused.
    let again = reply(&app, &owner.ctx, &review, "Sorry to hear it: write to us.")
        .await
        .unwrap();
    assert_eq!(again.reply, answered_reply);
    expect_error(
        reply(&app, &owner.ctx, &review, "And another thing.").await,
        ErrorCode::Conflict,
    );
    // Everyone sees the one reply; the author's later edit keeps it.
    let listed = app.page(&kettle.id, "newest", 10, "").await.unwrap();
    assert_eq!(
        listed.reviews[0].reply.as_ref().unwrap().body,
        "Sorry to hear it: write to us."
    );
    let edited = app
        .put_review(&ada, &kettle.id, 3, "Better", "They answered.")
        .await
        .unwrap();
    assert_eq!(edited.reply.unwrap().body, "Sorry to hear it: write to us.");
    expect_error(
        reply(
            &app,
            &owner.ctx,
            &Review {
                id: uuid::Uuid::now_v7().to_string(),
                ..Default::default()
            },
            "x",
        )
        .await,
        ErrorCode::NotFound,
    );
    app.stop().await;
}
