//! Fault flags: the simulated provider declines a share of authorisations when the settings
//! bucket says so (values put there the way the settings service does; its own tests cover
//! how they get there).

use std::time::{Duration, Instant};

use crate::helpers::{APPROVED, TestApp, new_id};

/// Puts `value` as `key`'s platform value into the settings bucket, creating it if needed.
async fn set_fault_flag(app: &TestApp, key: &str, version: i64, value: serde_json::Value) {
    let bucket = settings::open_bucket(&app.jetstream)
        .await
        .expect("opening the settings bucket");
    let stored = settings::Stored { version, value };
    settings::put(&bucket, &settings::Scope::Platform, key, &stored)
        .await
        .expect("putting a setting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failure_fault_flag_declines_authorisations_at_its_rate() {
    let app = TestApp::spawn().await;
    let (user, method) = app.user_with_card(APPROVED).await;
    // Off by default: the approving card approves.
    for _ in 0..20 {
        let payment = app.authorize(&new_id(), &user, &method, 500).await.unwrap();
        assert_eq!(payment.status, "authorized");
    }

    set_fault_flag(
        &app,
        settings::catalogue::FAULT_PAYMENT_FAILURE_PERCENT,
        1,
        serde_json::json!(50),
    )
    .await;
    // The first decline says the running service has the flag (no restart).
    let started = Instant::now();
    loop {
        let payment = app.authorize(&new_id(), &user, &method, 500).await.unwrap();
        if payment.status == "failed" {
            assert_eq!(payment.failure_code, "card_declined");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the fault flag never took effect"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // 200 authorisations at 50%: a binomial with a standard deviation of about 7, so 70 to
    // 130 declines (more than four deviations either way) fails by chance about once in
    // 30,000 runs.
    let mut declined = 0;
    for _ in 0..200 {
        let payment = app.authorize(&new_id(), &user, &method, 500).await.unwrap();
        match payment.status.as_str() {
            "failed" => {
                assert_eq!(payment.failure_code, "card_declined");
                declined += 1;
            }
            status => assert_eq!(status, "authorized"),
        }
    }
    eprintln!("the 50% failure flag declined {declined} of 200 authorisations");
    assert!(
        (70..=130).contains(&declined),
        "50% of 200 authorisations declined, ± 30: got {declined}"
    );

    // Off again: every authorisation approves.
    set_fault_flag(
        &app,
        settings::catalogue::FAULT_PAYMENT_FAILURE_PERCENT,
        2,
        serde_json::json!(0),
    )
    .await;
    let started = Instant::now();
    let mut approved_in_a_row = 0;
    while approved_in_a_row < 30 {
        let payment = app.authorize(&new_id(), &user, &method, 500).await.unwrap();
        approved_in_a_row = if payment.status == "authorized" {
            approved_in_a_row + 1
        } else {
            0
        };
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the flag never went off"
        );
    }
    app.stop().await;
}
