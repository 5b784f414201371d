//! The summary is kept by deltas in the same transaction as each review: exact however many
//! customers write at once.

use futures::future::join_all;

use crate::helpers::{TestApp, customer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_is_exact_after_200_concurrent_reviews() {
    let app = TestApp::spawn().await;
    let product = app.product().await;
    let users: Vec<_> = (0..200).map(|_| customer()).collect();
    // User n gives (n % 5) + 1 stars: 40 reviews of each rating.
    let writes = users.iter().enumerate().map(|(n, user)| {
        let app = &app;
        let product_id = product.id.clone();
        async move {
            app.put_review(user, &product_id, (n % 5) as i32 + 1, "Rated", "")
                .await
                .expect("writing a review")
        }
    });
    let written = join_all(writes).await;
    assert_eq!(written.len(), 200);

    let summary = app.summary(&product.id).await;
    assert_eq!(summary.review_count, 200);
    assert_eq!(summary.distribution, [40, 40, 40, 40, 40]);
    assert_eq!(summary.rating_total, 40 * (1 + 2 + 3 + 4 + 5));
    assert_eq!(summary.average_rating, 3.0);

    // And again at once, every user changing their rating to 5: edits move, never add.
    let edits = users.iter().map(|user| {
        let app = &app;
        let product_id = product.id.clone();
        async move {
            app.put_review(user, &product_id, 5, "Changed my mind", "")
                .await
                .expect("editing a review")
        }
    });
    join_all(edits).await;
    let summary = app.summary(&product.id).await;
    assert_eq!(summary.review_count, 200);
    assert_eq!(summary.distribution, [0, 0, 0, 0, 200]);
    assert_eq!(summary.rating_total, 1000);
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM reviews")
            .fetch_one(app.db())
            .await
            .unwrap(),
        200
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_hammering_writes_and_votes_makes_one_review_and_one_vote() {
    let app = TestApp::spawn().await;
    let product = app.product().await;
    let (ada, bob) = (customer(), customer());
    let writes = (0..20).map(|n| {
        let app = &app;
        let ada = &ada;
        let product_id = product.id.clone();
        async move {
            app.put_review(ada, &product_id, n % 5 + 1, "Again and again", "")
                .await
                .expect("writing a review")
        }
    });
    let written = join_all(writes).await;
    let ids: std::collections::HashSet<_> = written.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids.len(), 1, "one review, edited 19 times");
    let kept = app.my_review(&ada, &product.id).await.unwrap();
    let summary = app.summary(&product.id).await;
    assert_eq!(summary.review_count, 1);
    assert_eq!(summary.rating_total, i64::from(kept.rating));

    let votes = (0..20).map(|_| app.vote(&bob, &kept.id));
    for vote in join_all(votes).await {
        vote.expect("voting");
    }
    assert_eq!(
        app.get_review(&bob.ctx, &kept.id)
            .await
            .unwrap()
            .helpful_count,
        1
    );
    app.stop().await;
}
