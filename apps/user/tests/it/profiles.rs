//! A user's own profile: made from registration, read and changed only by its owner.

use api::user::{GetMyProfileRequest, NotificationChannels, Preferences, UpdateMyProfileRequest};
use rpc::ErrorCode;
use uuid::Uuid;

use crate::helpers::{TestApp, User, bad_fields, customer, expect_error};

fn preferences(language: &str, currency: &str) -> Option<Preferences> {
    Some(Preferences {
        language: language.into(),
        currency: currency.into(),
        notifications: Some(NotificationChannels {
            email: false,
            sms: true,
            push: true,
        }),
    })
}

async fn update(
    app: &TestApp,
    user: &User,
    request: UpdateMyProfileRequest,
) -> Result<api::user::Profile, rpc::Error> {
    app.client.update_my_profile(&user.ctx, &request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_user_gets_a_profile_with_the_defaults() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let profile = app.my_profile(&ada).await.unwrap();
    assert_eq!(profile.user_id, ada.id);
    assert_eq!(profile.email, "ada@example.com");
    assert_eq!(profile.status, "active");
    assert_eq!(profile.username, "");
    assert_eq!(profile.first_name, "");
    assert_eq!(profile.gender, "");
    let preferences = profile.preferences.unwrap();
    assert_eq!(preferences.language, "en");
    assert_eq!(preferences.currency, "USD");
    assert_eq!(
        preferences.notifications.unwrap(),
        NotificationChannels {
            email: true,
            sms: false,
            push: false
        }
    );
    assert!(profile.created_at.is_some());
    assert_eq!(profile.created_at, profile.updated_at);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_not_made_yet_is_not_found_with_a_message_saying_so() {
    let app = TestApp::spawn().await;
    let stranger = customer(&Uuid::now_v7().to_string());
    let error = expect_error(
        app.client
            .get_my_profile(&stranger, &GetMyProfileRequest {})
            .await,
        ErrorCode::NotFound,
    );
    assert!(error.message().contains("no profile yet"), "{error}");
    let error = expect_error(
        app.client
            .update_my_profile(
                &stranger,
                &UpdateMyProfileRequest {
                    first_name: Some("Nobody".into()),
                    ..Default::default()
                },
            )
            .await,
        ErrorCode::NotFound,
    );
    assert!(error.message().contains("no profile yet"), "{error}");
    assert_eq!(app.profile_count().await, 0, "an update creates nothing");

    // Without a principal the runtime refuses before the handler runs.
    expect_error(
        app.client
            .get_my_profile(&rpc::Context::background(), &GetMyProfileRequest {})
            .await,
        ErrorCode::Unauthenticated,
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_sets_the_fields_present_and_leaves_the_others() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let before = app.my_profile(&ada).await.unwrap();

    let updated = update(
        &app,
        &ada,
        UpdateMyProfileRequest {
            username: Some("Ada_L".into()),
            first_name: Some("  Ada ".into()),
            last_name: Some("Lovelace".into()),
            phone: Some("+442071234567".into()),
            avatar_url: Some("https://cdn.example.com/ada.png".into()),
            date_of_birth: Some("1990-12-10".into()),
            gender: Some("female".into()),
            preferences: preferences("en-gb", "GBP"),
        },
    )
    .await
    .unwrap();
    assert_eq!(updated.username, "ada_l", "stored lower case");
    assert_eq!(updated.first_name, "Ada", "trimmed");
    assert_eq!(updated.last_name, "Lovelace");
    assert_eq!(updated.phone, "+442071234567");
    assert_eq!(updated.avatar_url, "https://cdn.example.com/ada.png");
    assert_eq!(updated.date_of_birth, "1990-12-10");
    assert_eq!(updated.gender, "female");
    let preferences = updated.preferences.clone().unwrap();
    assert_eq!(preferences.language, "en-GB");
    assert_eq!(preferences.currency, "GBP");
    assert_eq!(
        preferences.notifications.unwrap(),
        NotificationChannels {
            email: false,
            sms: true,
            push: true
        }
    );
    assert_eq!(
        updated.email, before.email,
        "email is not the user's to change"
    );
    assert_eq!(updated.created_at, before.created_at);
    let at = |t: &Option<api::Timestamp>| t.as_ref().map(|t| (t.seconds, t.nanos)).unwrap();
    assert!(at(&updated.updated_at) > at(&before.updated_at));
    assert_eq!(
        app.my_profile(&ada).await.unwrap(),
        updated,
        "it was stored"
    );

    // Only what is present changes; the empty string clears an optional field.
    let cleared = update(
        &app,
        &ada,
        UpdateMyProfileRequest {
            phone: Some(String::new()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(cleared.phone, "");
    assert_eq!(cleared.last_name, "Lovelace");
    assert_eq!(cleared.username, "ada_l");
    assert_eq!(cleared.preferences, updated.preferences);

    // An empty update answers the profile as it is and writes nothing.
    let stored = app.stored(&ada.id).await;
    let same = update(&app, &ada, UpdateMyProfileRequest::default())
        .await
        .unwrap();
    assert_eq!(same, cleared);
    assert_eq!(app.stored(&ada.id).await, stored);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_update_names_every_bad_field_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let stored = app.stored(&ada.id).await;

    let error = expect_error(
        update(
            &app,
            &ada,
            UpdateMyProfileRequest {
                username: Some("a!".into()),
                first_name: Some("x".repeat(101)),
                // Valid: it must not be written either, since the request as a whole fails.
                last_name: Some("Lovelace".into()),
                phone: Some("020 7123 4567".into()),
                avatar_url: Some("http://cdn.example.com/ada.png".into()),
                date_of_birth: Some("2999-01-01".into()),
                gender: Some("robot".into()),
                preferences: preferences("english", "usd"),
            },
        )
        .await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(
        bad_fields(&error),
        [
            "username",
            "first_name",
            "phone",
            "avatar_url",
            "gender",
            "preferences.language",
            "preferences.currency"
        ],
        "the field rules name every malformed field; a well-formed date in the future is \
         the service's to refuse once the request has the right shape"
    );
    assert_eq!(app.stored(&ada.id).await, stored, "nothing was written");

    for (request, field) in [
        (
            UpdateMyProfileRequest {
                date_of_birth: Some("2999-01-01".into()),
                ..Default::default()
            },
            "date_of_birth",
        ),
        (
            UpdateMyProfileRequest {
                date_of_birth: Some("1899-12-31".into()),
                ..Default::default()
            },
            "date_of_birth",
        ),
        (
            UpdateMyProfileRequest {
                avatar_url: Some(format!("https://cdn.example.com/{}", "a".repeat(2048))),
                ..Default::default()
            },
            "avatar_url",
        ),
        (
            UpdateMyProfileRequest {
                preferences: preferences("en", "XYZ"),
                ..Default::default()
            },
            "preferences.currency",
        ),
    ] {
        let error = expect_error(
            update(&app, &ada, request).await,
            ErrorCode::InvalidArgument,
        );
        assert_eq!(bad_fields(&error), [field]);
    }
    assert_eq!(app.stored(&ada.id).await, stored, "nothing was written");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_username_belongs_to_one_profile_whatever_its_case() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let grace = app.register("grace@example.com").await;
    let username = |name: &str| UpdateMyProfileRequest {
        username: Some(name.into()),
        ..Default::default()
    };

    update(&app, &ada, username("countess")).await.unwrap();
    let grace_before = app.stored(&grace.id).await;
    let error = expect_error(
        update(
            &app,
            &grace,
            UpdateMyProfileRequest {
                username: Some("Countess".into()),
                first_name: Some("Grace".into()),
                ..Default::default()
            },
        )
        .await,
        ErrorCode::Conflict,
    );
    assert_eq!(error.details().len(), 1);
    assert_eq!(error.details()[0].field, "username");
    assert_eq!(
        app.stored(&grace.id).await,
        grace_before,
        "a refused update changes nothing"
    );

    // Setting one's own username again is no conflict.
    update(&app, &ada, username("countess")).await.unwrap();
    // Once released, it can be taken; the empty username is shared by anyone.
    update(&app, &ada, username("")).await.unwrap();
    let taken = update(&app, &grace, username("countess")).await.unwrap();
    assert_eq!(taken.username, "countess");
    update(&app, &grace, username("")).await.unwrap();
    assert_eq!(app.my_profile(&ada).await.unwrap().username, "");
    assert_eq!(app.my_profile(&grace).await.unwrap().username, "");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_reads_and_changes_only_their_own_profile() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let grace = app.register("grace@example.com").await;
    let grace_before = app.stored(&grace.id).await;

    let mine = app.my_profile(&ada).await.unwrap();
    assert_eq!(mine.user_id, ada.id);
    assert_eq!(mine.email, "ada@example.com");

    let changed = update(
        &app,
        &ada,
        UpdateMyProfileRequest {
            first_name: Some("Ada".into()),
            preferences: preferences("fr", "EUR"),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(changed.user_id, ada.id);
    assert_eq!(
        app.stored(&grace.id).await,
        grace_before,
        "the other user's document is byte for byte the same"
    );
    let theirs = app.my_profile(&grace).await.unwrap();
    assert_eq!(theirs.user_id, grace.id);
    assert_eq!(theirs.first_name, "");
    assert_eq!(theirs.preferences.unwrap().currency, "USD");
    app.stop().await;
}
