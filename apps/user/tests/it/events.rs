//! `user.registered`: one profile per account, however often the event is delivered, and
//! every message decided.

use api::auth::events::USER_REGISTERED;
use api::user::{ListUsersRequest, UpdateMyProfileRequest};
use uuid::Uuid;

use crate::helpers::{TestApp, User, admin, customer, registered};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_event_makes_one_profile_and_undoes_nothing() {
    let app = TestApp::spawn().await;
    let id = Uuid::now_v7().to_string();
    let event = registered(&id, "ada@example.com");
    let event_id = Uuid::now_v7();
    let first = app.publish(&event, event_id).await;
    app.handled(first).await;
    let ada = User {
        ctx: customer(&id),
        id: id.clone(),
    };
    // The user changes their profile before the event comes again.
    app.client
        .update_my_profile(
            &ada.ctx,
            &UpdateMyProfileRequest {
                first_name: Some("Ada".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let stored = app.stored(&id).await;

    // The same event again, under a new Nats-Msg-Id so the stream keeps it: to the consumer
    // it is a redelivery. A different email in it must not overwrite anything either.
    let again = registered(&id, "someone.else@example.com");
    let second = app.publish(&again, event_id).await;
    assert!(second > first);
    app.handled(second).await;

    assert_eq!(app.profile_count().await, 1);
    assert_eq!(app.stored(&id).await, stored, "the profile is unchanged");
    let profile = app.my_profile(&ada).await.unwrap();
    assert_eq!(profile.first_name, "Ada");
    assert_eq!(profile.email, "ada@example.com");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_event_is_terminated_into_the_dead_letters() {
    let app = TestApp::spawn().await;
    let bad_id = app
        .publish(&registered("not-a-uuid", "x@example.com"), Uuid::now_v7())
        .await;
    let no_email = app
        .publish(
            &registered(&Uuid::now_v7().to_string(), " "),
            Uuid::now_v7(),
        )
        .await;
    app.handled(bad_id.max(no_email)).await;
    assert_eq!(app.profile_count().await, 0);

    let durable = events::names::durable_name(api::user::SERVICE_NAME, &USER_REGISTERED).unwrap();
    let started = std::time::Instant::now();
    let letters = loop {
        let letters = events::dead_letter::list(&app.jetstream, Some(&durable))
            .await
            .unwrap();
        if letters.len() >= 2 || started.elapsed() > std::time::Duration::from_secs(10) {
            break letters;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let mut reasons: Vec<&str> = letters.iter().map(|l| l.reason.as_str()).collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "terminated: email is required",
            "terminated: user_id must be a UUID"
        ]
    );
    // A valid event after them is handled as usual.
    let ada = app.register("ada@example.com").await;
    let page = app
        .client
        .list_users(&admin(), &ListUsersRequest::default())
        .await
        .unwrap();
    assert_eq!(page.users.len(), 1);
    assert_eq!(page.users[0].user_id, ada.id);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_registrations_make_one_profile_each_and_leave_nothing_unacked() {
    let app = TestApp::spawn().await;
    let mut last = 0;
    for n in 0..40 {
        let id = Uuid::now_v7().to_string();
        last = app
            .publish(
                &registered(&id, &format!("user{n}@example.com")),
                Uuid::now_v7(),
            )
            .await;
    }
    app.handled(last).await;
    assert_eq!(app.profile_count().await, 40);
    // `stop` checks that the consumer has nothing pending or unacknowledged.
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failure_naks_and_the_retry_makes_the_profile() {
    use futures::StreamExt as _;

    let app = TestApp::spawn().await;
    let durable = events::names::durable_name(api::user::SERVICE_NAME, &USER_REGISTERED).unwrap();
    let mut naks = app
        .jetstream
        .client()
        .subscribe(events::names::naked_advisory(
            &events::names::stream_of(&USER_REGISTERED),
            &durable,
        ))
        .await
        .unwrap();
    // The store fails: its table is gone.
    sqlx::query("ALTER TABLE profiles RENAME TO profiles_away")
        .execute(app.db())
        .await
        .unwrap();
    let id = Uuid::now_v7().to_string();
    let ada = User {
        ctx: customer(&id),
        id: id.clone(),
    };
    let sequence = app
        .publish(&registered(&id, "ada@example.com"), Uuid::now_v7())
        .await;
    tokio::time::timeout(std::time::Duration::from_secs(10), naks.next())
        .await
        .expect("a nak advisory")
        .expect("the advisory subscription");

    // Meanwhile a request gets an internal error that tells nothing about the cause.
    let error = app.my_profile(&ada).await.unwrap_err();
    assert_eq!(error.code(), rpc::ErrorCode::Internal);
    assert_eq!(error.message(), "internal error");
    assert!(error.details().is_empty());

    sqlx::query("ALTER TABLE profiles_away RENAME TO profiles")
        .execute(app.db())
        .await
        .unwrap();
    app.handled(sequence).await;
    assert_eq!(app.my_profile(&ada).await.unwrap().email, "ada@example.com");
    assert!(app.consumer_info().await.delivered.stream_sequence >= sequence);
    app.stop().await;
}
