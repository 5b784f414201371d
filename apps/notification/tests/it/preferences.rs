//! Preferences: marketing may be turned off, transactional kinds may not, and what a user
//! turned off is not sent.

use api::notification::{
    GetMyNotificationPreferencesRequest, NotificationPreference, NotificationPreferences,
    UpdateMyNotificationPreferencesRequest,
};
use rpc::ErrorCode;

use crate::helpers::{TestApp, bad_fields, customer, expect_error};

fn find<'a>(
    preferences: &'a NotificationPreferences,
    kind: &str,
    channel: &str,
) -> &'a NotificationPreference {
    preferences
        .preferences
        .iter()
        .find(|p| p.kind == kind && p.channel == channel)
        .unwrap_or_else(|| panic!("no preference for {kind} on {channel}"))
}

fn set(kind: &str, channel: &str, enabled: bool) -> NotificationPreference {
    NotificationPreference {
        kind: kind.into(),
        channel: channel.into(),
        enabled,
        required: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marketing_can_be_turned_off_and_a_transactional_kind_cannot() {
    let app = TestApp::spawn().await;
    let ada = app.register("ada@example.com").await;
    let defaults = app
        .client
        .get_my_notification_preferences(&ada.ctx, &GetMyNotificationPreferencesRequest {})
        .await
        .unwrap();
    assert!(
        defaults.preferences.iter().all(|p| p.enabled),
        "everything is on at first"
    );
    assert!(!find(&defaults, "marketing", "email").required);
    assert!(find(&defaults, "order_confirmation", "email").required);
    assert!(
        !defaults
            .preferences
            .iter()
            .any(|p| p.kind == "password_reset" && p.channel == "in_app"),
        "link emails have no in-app copy"
    );

    let updated = app
        .client
        .update_my_notification_preferences(
            &ada.ctx,
            &UpdateMyNotificationPreferencesRequest {
                preferences: vec![set("marketing", "email", false)],
            },
        )
        .await
        .unwrap();
    assert!(!find(&updated, "marketing", "email").enabled);
    assert!(
        find(&updated, "marketing", "in_app").enabled,
        "the other channel stays on"
    );

    // A request that also tries to turn a transactional kind off is refused whole.
    let error = expect_error(
        app.client
            .update_my_notification_preferences(
                &ada.ctx,
                &UpdateMyNotificationPreferencesRequest {
                    preferences: vec![
                        set("marketing", "in_app", false),
                        set("order_confirmation", "email", false),
                    ],
                },
            )
            .await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(bad_fields(&error), ["preferences[1].enabled"]);
    let now = app
        .client
        .get_my_notification_preferences(&ada.ctx, &GetMyNotificationPreferencesRequest {})
        .await
        .unwrap();
    assert!(find(&now, "order_confirmation", "email").enabled);
    assert!(
        find(&now, "marketing", "in_app").enabled,
        "nothing of the refused request was kept"
    );
    assert!(!find(&now, "marketing", "email").enabled);

    // Another user's preferences are their own.
    let bob = customer(&uuid::Uuid::now_v7().to_string());
    let bobs = app
        .client
        .get_my_notification_preferences(&bob, &GetMyNotificationPreferencesRequest {})
        .await
        .unwrap();
    assert!(find(&bobs, "marketing", "email").enabled);

    // Unknown kinds and channels are named.
    let error = expect_error(
        app.client
            .update_my_notification_preferences(
                &ada.ctx,
                &UpdateMyNotificationPreferencesRequest {
                    preferences: vec![
                        set("newsletter", "email", false),
                        set("welcome", "sms", true),
                    ],
                },
            )
            .await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(
        bad_fields(&error),
        ["preferences[0].kind", "preferences[1].channel"]
    );
    expect_error(
        app.client
            .get_my_notification_preferences(
                &testkit::callers::anonymous(),
                &GetMyNotificationPreferencesRequest {},
            )
            .await,
        ErrorCode::Unauthenticated,
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_user_turned_off_is_not_sent_while_transactional_email_still_goes_out() {
    let app = TestApp::spawn().await;
    // The user chose before their registration event was consumed.
    let id = uuid::Uuid::now_v7().to_string();
    app.client
        .update_my_notification_preferences(
            &customer(&id),
            &UpdateMyNotificationPreferencesRequest {
                preferences: vec![
                    set("welcome", "email", false),
                    set("welcome", "in_app", false),
                    // Turning a transactional kind on is allowed and changes nothing.
                    set("order_confirmation", "email", true),
                ],
            },
        )
        .await
        .unwrap();
    let ada = app.register_as(&id, "ada@example.com").await;
    app.pay_order(&ada).await;
    let mail = app.settled_mail().await;
    assert_eq!(mail.len(), 1, "no welcome email");
    assert_eq!(crate::helpers::with_subject(&mail, "is confirmed").len(), 1);
    let kinds: Vec<(String, String)> =
        sqlx::query_as("SELECT kind, channel FROM notifications ORDER BY id, channel")
            .fetch_all(app.db())
            .await
            .unwrap();
    assert_eq!(
        kinds,
        [
            ("order_confirmation".to_owned(), "email".to_owned()),
            ("order_confirmation".to_owned(), "in_app".to_owned())
        ]
    );
    app.stop().await;
}
