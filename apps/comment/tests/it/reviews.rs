//! Writing, replacing, reading, deleting, voting on and reporting reviews, and who sees what.

use api::comment::{DeleteMyReviewRequest, ListReviewsForModerationRequest, ReportReviewRequest};
use rpc::ErrorCode;

use crate::helpers::{TestApp, admin, anonymous, bad_fields, customer, expect_error};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_review_by_the_same_user_replaces_the_first() {
    let app = TestApp::spawn().await;
    let product = app.product().await;
    let ada = customer();
    let first = app.review(&ada, &product.id, 2).await;
    assert_eq!(app.summary(&product.id).await.distribution, [0, 1, 0, 0, 0]);

    let second = app
        .put_review(&ada, &product.id, 5, "Grew on me", "Now I love it.")
        .await
        .unwrap();
    assert_eq!(second.id, first.id, "the same review, edited");
    assert_eq!((second.rating, second.title.as_str()), (5, "Grew on me"));

    let summary = app.summary(&product.id).await;
    assert_eq!(summary.review_count, 1);
    assert_eq!(summary.rating_total, 5);
    assert_eq!(summary.average_rating, 5.0);
    assert_eq!(summary.distribution, [0, 0, 0, 0, 1]);
    assert_eq!(app.listed(&product.id).await, vec![first.id]);
    assert_eq!(
        app.my_review(&ada, &product.id).await.unwrap().body,
        "Now I love it."
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helpful_votes_count_once_per_user_and_never_for_ones_own_review() {
    let app = TestApp::spawn().await;
    let product = app.product().await;
    let (author, bob, cy) = (customer(), customer(), customer());
    let review = app.review(&author, &product.id, 4).await;

    assert_eq!(app.vote(&bob, &review.id).await.unwrap().helpful_count, 1);
    assert_eq!(
        app.vote(&bob, &review.id).await.unwrap().helpful_count,
        1,
        "a second vote by the same user changes nothing"
    );
    assert_eq!(app.vote(&cy, &review.id).await.unwrap().helpful_count, 2);
    expect_error(
        app.vote(&author, &review.id).await,
        ErrorCode::PermissionDenied,
    );
    expect_error(
        app.vote(&bob, &uuid::Uuid::now_v7().to_string()).await,
        ErrorCode::NotFound,
    );
    let listed = app.page(&product.id, "most_helpful", 10, "").await.unwrap();
    assert_eq!(listed.reviews[0].helpful_count, 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_review_is_seen_only_by_its_author_and_admins() {
    let app = TestApp::spawn().await;
    let product = app.product().await;
    let (author, other) = (customer(), customer());
    let pending = app
        .put_review(
            &author,
            &product.id,
            1,
            "Avoid",
            "Buy the real one at cheapkettles.com",
        )
        .await
        .unwrap();
    assert_eq!(pending.status, "pending");
    assert_eq!(pending.moderation_reason, "contains a link");

    expect_error(
        app.get_review(&other.ctx, &pending.id).await,
        ErrorCode::NotFound,
    );
    expect_error(
        app.get_review(&anonymous(), &pending.id).await,
        ErrorCode::NotFound,
    );
    expect_error(app.vote(&other, &pending.id).await, ErrorCode::NotFound);
    let seen = app.get_review(&author.ctx, &pending.id).await.unwrap();
    assert_eq!(seen.moderation_reason, "contains a link");
    let seen = app.get_review(&admin(), &pending.id).await.unwrap();
    assert_eq!(seen.status, "pending");
    assert!(app.listed(&product.id).await.is_empty());
    assert_eq!(app.summary(&product.id).await.review_count, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_review_takes_it_out_of_the_summary_and_only_the_author_can() {
    let app = TestApp::spawn().await;
    let product = app.product().await;
    let (ada, bob) = (customer(), customer());
    app.review(&ada, &product.id, 3).await;
    app.review(&bob, &product.id, 5).await;
    let delete = DeleteMyReviewRequest {
        id: product.id.clone(),
    };
    expect_error(
        app.client.delete_my_review(&customer().ctx, &delete).await,
        ErrorCode::NotFound,
    );
    app.client
        .delete_my_review(&ada.ctx, &delete)
        .await
        .unwrap();
    let summary = app.summary(&product.id).await;
    assert_eq!((summary.review_count, summary.rating_total), (1, 5));
    assert_eq!(summary.distribution, [0, 0, 0, 0, 1]);
    expect_error(app.my_review(&ada, &product.id).await, ErrorCode::NotFound);
    // Writing again is a new review.
    app.review(&ada, &product.id, 1).await;
    assert_eq!(app.summary(&product.id).await.review_count, 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_are_refused_with_field_errors_and_nothing_is_kept() {
    let app = TestApp::spawn().await;
    let product = app.product().await;
    let ada = customer();
    for rating in [0, 6] {
        let error = app
            .put_review(&ada, &product.id, rating, "t", "b")
            .await
            .unwrap_err();
        assert_eq!(bad_fields(&error), ["rating"], "rating {rating}");
    }
    let error = app
        .put_review(&ada, &product.id, 3, "t", &"x".repeat(5001))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&error), ["body"]);
    let error = app
        .put_review(
            &ada,
            &product.id,
            3,
            "<b>Great</b>",
            "<script>alert(1)</script>",
        )
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&error), ["title", "body"]);
    assert!(error.details()[0].problem.contains("HTML"), "{error:?}");
    let error = app
        .put_review(&ada, &product.id, 3, "", "nul\u{0}here")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&error), ["title", "body"]);
    let error = app
        .put_review(&ada, "not-a-product", 3, "t", "")
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&error), ["id"]);
    // A product the catalog does not have.
    expect_error(
        app.put_review(&ada, &uuid::Uuid::now_v7().to_string(), 3, "t", "")
            .await,
        ErrorCode::NotFound,
    );
    // Anonymous callers write nothing.
    expect_error(
        app.client
            .put_my_review(
                &anonymous(),
                &api::comment::PutMyReviewRequest {
                    id: product.id.clone(),
                    rating: 3,
                    title: "t".into(),
                    body: String::new(),
                },
            )
            .await,
        ErrorCode::Unauthenticated,
    );
    expect_error(app.my_review(&ada, &product.id).await, ErrorCode::NotFound);
    assert_eq!(app.summary(&product.id).await.review_count, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_are_once_per_user_and_reach_the_admins_queue() {
    let app = TestApp::spawn().await;
    let product = app.product().await;
    let (author, bob) = (customer(), customer());
    let review = app.review(&author, &product.id, 1).await;
    let report = |reason: &str| ReportReviewRequest {
        id: review.id.clone(),
        reason: reason.into(),
        note: "Reads like an advert.".into(),
    };
    app.client
        .report_review(&bob.ctx, &report("spam"))
        .await
        .unwrap();
    expect_error(
        app.client.report_review(&bob.ctx, &report("fake")).await,
        ErrorCode::Conflict,
    );
    expect_error(
        app.client.report_review(&author.ctx, &report("spam")).await,
        ErrorCode::PermissionDenied,
    );
    let error = app
        .client
        .report_review(&bob.ctx, &report("boring"))
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&error), ["reason"]);

    let queue = |name: &str| ListReviewsForModerationRequest {
        queue: name.into(),
        ..Default::default()
    };
    let reported = app
        .client
        .list_reviews_for_moderation(&admin(), &queue("reported"))
        .await
        .unwrap();
    assert_eq!(reported.reviews.len(), 1);
    assert_eq!(reported.reviews[0].open_reports, 1);
    // Customers see no report counts and no queue.
    assert_eq!(
        app.get_review(&bob.ctx, &review.id)
            .await
            .unwrap()
            .open_reports,
        0
    );
    expect_error(
        app.client
            .list_reviews_for_moderation(&bob.ctx, &queue("reported"))
            .await,
        ErrorCode::PermissionDenied,
    );
    // An admin looks and keeps it: the reports are closed, the review stays published.
    let kept = app.moderate(&review.id, "approve", "").await.unwrap();
    assert_eq!((kept.status.as_str(), kept.open_reports), ("published", 0));
    let reported = app
        .client
        .list_reviews_for_moderation(&admin(), &queue("reported"))
        .await
        .unwrap();
    assert!(reported.reviews.is_empty());
    assert_eq!(app.summary(&product.id).await.review_count, 1);
    app.stop().await;
}
