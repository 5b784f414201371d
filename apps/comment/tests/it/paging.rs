//! Keyset pages in every sort: walked to the end they list every published review exactly
//! once, in the sort's order.

use std::collections::HashSet;

use api::comment::Review;

use crate::helpers::{TestApp, customer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyset_paging_with_each_sort_has_no_duplicates_or_gaps() {
    let app = TestApp::spawn().await;
    let product = app.product().await;
    let voters: Vec<_> = (0..4).map(|_| customer()).collect();
    let mut written = Vec::new();
    for n in 0..23 {
        // Ratings and vote counts repeat, so ties are broken by id.
        let review = app.review(&customer(), &product.id, n % 5 + 1).await;
        for voter in voters.iter().take((n % 3) as usize) {
            app.vote(voter, &review.id).await.unwrap();
        }
        written.push(review.id);
    }
    let all = app
        .page(&product.id, "newest", 100, "")
        .await
        .unwrap()
        .reviews;
    assert_eq!(all.len(), 23);

    let key = |r: &Review| (r.rating, r.helpful_count, r.id.clone());
    for sort in ["newest", "most_helpful", "rating_high", "rating_low"] {
        let mut expected: Vec<Review> = all.clone();
        expected.sort_by(|a, b| {
            let (a, b) = (key(a), key(b));
            let by_id = b.2.cmp(&a.2);
            match sort {
                "newest" => by_id,
                "most_helpful" => b.1.cmp(&a.1).then(by_id),
                "rating_high" => b.0.cmp(&a.0).then(by_id),
                _ => a.0.cmp(&b.0).then(by_id),
            }
        });
        let mut seen = Vec::new();
        let mut cursor = String::new();
        let mut pages = 0;
        loop {
            let page = app.page(&product.id, sort, 4, &cursor).await.unwrap();
            assert!(page.reviews.len() <= 4);
            seen.extend(page.reviews.into_iter().map(|r| r.id));
            pages += 1;
            if page.next_cursor.is_empty() {
                break;
            }
            cursor = page.next_cursor;
        }
        assert_eq!(pages, 6, "{sort}: 23 reviews in pages of 4");
        let unique: HashSet<_> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "{sort}: no duplicates");
        assert_eq!(
            seen,
            expected.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
            "{sort}: every review once, in order"
        );
    }
    // A cursor is only good for the sort it was made for.
    let page = app.page(&product.id, "rating_high", 4, "").await.unwrap();
    let error = app
        .page(&product.id, "newest", 4, &page.next_cursor)
        .await
        .unwrap_err();
    assert_eq!(crate::helpers::bad_fields(&error), ["cursor"]);
    assert_eq!(written.len(), 23);
    app.stop().await;
}
