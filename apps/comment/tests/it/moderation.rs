//! Flagged reviews wait for an admin; approving publishes them into the summary, hiding takes
//! them out; each change that makes a review public or not is an event.

use api::comment::events::{REVIEW_HIDDEN, REVIEW_PUBLISHED};
use api::comment::{ListReviewsForModerationRequest, ReviewHidden, ReviewPublished};
use rpc::ErrorCode;

use crate::helpers::{TestApp, admin, anonymous, bad_fields, customer, expect_error};

fn payload<E: serde::de::DeserializeOwned>(
    message: &async_nats::jetstream::message::StreamMessage,
) -> E {
    serde_json::from_slice(&message.payload).expect("an event payload")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flagged_review_waits_and_approval_publishes_it_into_the_summary() {
    let app = TestApp::spawn().await;
    let product = app.product().await;
    let (ada, bob) = (customer(), customer());
    app.review(&bob, &product.id, 2).await;
    let flagged = app
        .put_review(&ada, &product.id, 4, "Honest", "Not a SCAM at all.")
        .await
        .unwrap();
    assert_eq!(flagged.status, "pending");
    assert_eq!(
        flagged.moderation_reason,
        "contains the banned word \"scam\""
    );
    assert_eq!(app.summary(&product.id).await.review_count, 1);

    let pending = app
        .client
        .list_reviews_for_moderation(
            &admin(),
            &ListReviewsForModerationRequest {
                queue: "pending".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        pending
            .reviews
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        [flagged.id.as_str()]
    );

    let approved = app.moderate(&flagged.id, "approve", "").await.unwrap();
    assert_eq!(approved.status, "published");
    assert_eq!(approved.moderation_reason, "");
    let summary = app.summary(&product.id).await;
    assert_eq!((summary.review_count, summary.rating_total), (2, 6));
    assert_eq!(summary.distribution, [0, 1, 0, 1, 0]);
    assert_eq!(
        app.get_review(&anonymous(), &flagged.id)
            .await
            .unwrap()
            .status,
        "published"
    );

    // bob's review and the approval: two publications, each with the summary after it.
    let published = app.published(&REVIEW_PUBLISHED, 2).await;
    let last: ReviewPublished = payload(&published[1]);
    assert_eq!(last.review.unwrap().id, flagged.id);
    assert_eq!(last.summary.unwrap().review_count, 2);
    let subject = events::names::subject(&REVIEW_PUBLISHED, &product.id).unwrap();
    assert_eq!(
        published[1].subject.as_str(),
        subject,
        "the aggregate is the product"
    );

    // What an operator's dashboard reads.
    let metrics = metrics(&app).await;
    for expected in [
        "comment_reviews_written_total{kind=\"new\"}",
        "comment_reviews_flagged_total",
        "comment_reviews_published_total{by=\"rules\"}",
        "comment_reviews_published_total{by=\"moderator\"}",
    ] {
        assert!(
            metrics.contains(expected),
            "{expected} in /metrics:\n{metrics}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hiding_a_review_takes_it_out_of_the_summary_and_the_listing() {
    let app = TestApp::spawn().await;
    let product = app.product().await;
    let (ada, bob) = (customer(), customer());
    let rude = app.review(&ada, &product.id, 1).await;
    app.review(&bob, &product.id, 5).await;

    let error = app.moderate(&rude.id, "hide", "").await.unwrap_err();
    assert_eq!(bad_fields(&error), ["reason"], "hiding needs a reason");
    let hidden = app
        .moderate(&rude.id, "hide", "insults the seller")
        .await
        .unwrap();
    assert_eq!(hidden.status, "hidden");
    expect_error(
        app.moderate(&rude.id, "hide", "again").await,
        ErrorCode::FailedPrecondition,
    );

    let summary = app.summary(&product.id).await;
    assert_eq!((summary.review_count, summary.rating_total), (1, 5));
    assert_eq!(summary.distribution, [0, 0, 0, 0, 1]);
    assert_eq!(app.listed(&product.id).await.len(), 1);
    expect_error(
        app.get_review(&bob.ctx, &rude.id).await,
        ErrorCode::NotFound,
    );
    let mine = app.my_review(&ada, &product.id).await.unwrap();
    assert_eq!(
        (mine.status.as_str(), mine.moderation_reason.as_str()),
        ("hidden", "insults the seller")
    );

    assert!(
        metrics(&app)
            .await
            .contains("comment_reviews_hidden_total{by=\"moderator\"}")
    );
    let events = app.published(&REVIEW_HIDDEN, 1).await;
    let event: ReviewHidden = payload(&events[0]);
    assert_eq!(event.reason, "hidden by a moderator: insults the seller");
    assert_eq!(event.summary.unwrap().review_count, 1);

    // Its author edits it: it waits for a moderator again instead of coming back.
    let edited = app
        .put_review(&ada, &product.id, 2, "Calmer now", "It is not for me.")
        .await
        .unwrap();
    assert_eq!(edited.status, "pending");
    assert_eq!(app.summary(&product.id).await.review_count, 1);

    // Every status change is a history row: who, from what, to what, why.
    let history: Vec<(Option<String>, Option<String>, String, String)> = sqlx::query_as(
        "SELECT from_status, to_status, actor, reason FROM review_history \
         WHERE review_id = $1::uuid ORDER BY id",
    )
    .bind(&rude.id)
    .fetch_all(app.db())
    .await
    .unwrap();
    let status = |s: &str| Some(s.to_owned());
    assert_eq!(
        history,
        [
            (None, status("published"), "author".into(), "written".into()),
            (
                status("published"),
                status("hidden"),
                "admin".into(),
                "hidden: insults the seller".into()
            ),
            (
                status("hidden"),
                status("pending"),
                "author".into(),
                "edited after a moderator hid it: waiting for a moderator".into()
            ),
        ]
    );
    expect_error(
        app.moderate(&uuid::Uuid::now_v7().to_string(), "approve", "")
            .await,
        ErrorCode::NotFound,
    );
    expect_error(
        app.client
            .moderate_review(
                &ada.ctx,
                &api::comment::ModerateReviewRequest {
                    id: rude.id.clone(),
                    action: "approve".into(),
                    reason: String::new(),
                },
            )
            .await,
        ErrorCode::PermissionDenied,
    );
    app.stop().await;
}

/// The comment service's `/metrics` from its admin port.
async fn metrics(app: &TestApp) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.admin_addr())
        .await
        .unwrap();
    let request = "GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}
