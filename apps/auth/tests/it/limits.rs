//! Login attempt limits and the bound on concurrent password hashing.

use std::time::{Duration, Instant};

use rpc::ErrorCode;

use crate::helpers::{PASSWORD, TestApp, anonymous, expect_error, from_client};

const LIMITED: &str = "too many login attempts; try again later";
const WRONG: &str = "a wrong guess here";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attacker_failing_on_the_admins_account_does_not_keep_the_admin_out() {
    let app = TestApp::spawn_with(|config| config.login_failures_per_client_and_account = 3).await;
    app.register("admin@example.com", PASSWORD).await.unwrap();
    let attacker = from_client("203.0.113.7");
    let admin = from_client("198.51.100.2");

    for _ in 0..3 {
        expect_error(
            app.login_from(&attacker, "admin@example.com", WRONG).await,
            ErrorCode::Unauthenticated,
        );
    }
    // The attacker keeps trying: every attempt is now refused without a password check.
    for _ in 0..10 {
        expect_error(
            app.login_from(&attacker, "admin@example.com", WRONG).await,
            ErrorCode::RateLimited,
        );
    }
    // The flagged client is refused even with the right password.
    let limited = expect_error(
        app.login_from(&attacker, "admin@example.com", PASSWORD)
            .await,
        ErrorCode::RateLimited,
    );
    assert_eq!(limited.message(), LIMITED);
    assert!(limited.details().is_empty());

    // The admin, from their own address, logs in as usual, and again after that.
    let pair = app
        .login_from(&admin, "admin@example.com", PASSWORD)
        .await
        .expect("the owner logs in while someone else is failing on the account");
    assert!(!pair.access_token.is_empty());
    app.login_from(&admin, "admin@example.com", PASSWORD)
        .await
        .unwrap();
    // The admin's success did not clear the attacker's flag.
    expect_error(
        app.login_from(&attacker, "admin@example.com", PASSWORD)
            .await,
        ErrorCode::RateLimited,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_reads_the_same_for_an_account_that_exists_and_one_that_does_not() {
    let app = TestApp::spawn_with(|config| config.login_failures_per_client_and_account = 3).await;
    app.register("target@example.com", PASSWORD).await.unwrap();
    let client = from_client("203.0.113.9");

    let mut refusals = Vec::new();
    for email in ["target@example.com", "ghost@example.com"] {
        for _ in 0..3 {
            expect_error(
                app.login_from(&client, email, WRONG).await,
                ErrorCode::Unauthenticated,
            );
        }
        refusals.push(expect_error(
            app.login_from(&client, email, PASSWORD).await,
            ErrorCode::RateLimited,
        ));
    }
    assert_eq!(refusals[0].to_body(), refusals[1].to_body());
    assert_eq!(refusals[0].message(), LIMITED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipv6_attacker_rotating_addresses_inside_one_64_is_one_client() {
    let app = TestApp::spawn_with(|config| config.login_failures_per_client_and_account = 3).await;
    app.register("admin@example.com", PASSWORD).await.unwrap();

    // Three failures, each from another address of 2001:db8:1:2::/64.
    for address in [
        "2001:db8:1:2::1",
        "2001:db8:1:2::2",
        "2001:db8:1:2:abcd:ef01:2345:6789",
    ] {
        expect_error(
            app.login_from(&from_client(address), "admin@example.com", WRONG)
                .await,
            ErrorCode::Unauthenticated,
        );
    }
    // A fresh address of the same /64 is the same flagged client.
    expect_error(
        app.login_from(
            &from_client("2001:db8:1:2:ffff::99"),
            "admin@example.com",
            PASSWORD,
        )
        .await,
        ErrorCode::RateLimited,
    );
    // The neighbouring /64 is somebody else.
    app.login_from(
        &from_client("2001:db8:1:3::1"),
        "admin@example.com",
        PASSWORD,
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successful_login_clears_the_clients_failures() {
    let app = TestApp::spawn_with(|config| config.login_failures_per_client_and_account = 3).await;
    app.register("forgetful@example.com", PASSWORD)
        .await
        .unwrap();
    let client = from_client("192.0.2.10");
    for _ in 0..2 {
        for _ in 0..2 {
            expect_error(
                app.login_from(&client, "forgetful@example.com", WRONG)
                    .await,
                ErrorCode::Unauthenticated,
            );
        }
        app.login_from(&client, "forgetful@example.com", PASSWORD)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_is_limited_across_accounts_and_other_clients_are_not() {
    let app = TestApp::spawn_with(|config| config.login_attempts_per_client = 4).await;
    app.register("shared@example.com", PASSWORD).await.unwrap();
    let noisy = from_client("203.0.113.7");
    for n in 0..4 {
        let email = format!("guess{n}@example.com");
        expect_error(
            app.login_from(&noisy, &email, PASSWORD).await,
            ErrorCode::Unauthenticated,
        );
    }
    let limited = expect_error(
        app.login_from(&noisy, "shared@example.com", PASSWORD).await,
        ErrorCode::RateLimited,
    );
    assert_eq!(limited.message(), LIMITED);
    // The same holds for an IPv6 client, whichever address of its /64 it uses.
    for n in 0..4 {
        let address = format!("2001:db8:77:1::{n}");
        let email = format!("v6guess{n}@example.com");
        expect_error(
            app.login_from(&from_client(&address), &email, PASSWORD)
                .await,
            ErrorCode::Unauthenticated,
        );
    }
    expect_error(
        app.login_from(
            &from_client("2001:db8:77:1::ffff"),
            "shared@example.com",
            PASSWORD,
        )
        .await,
        ErrorCode::RateLimited,
    );
    // Another client, and a caller without a client address, log in as usual.
    app.login_from(&from_client("198.51.100.2"), "shared@example.com", PASSWORD)
        .await
        .unwrap();
    app.login_from(&anonymous(), "shared@example.com", PASSWORD)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_failing_from_many_clients_is_slowed_down_not_locked() {
    const SLOWDOWN: Duration = Duration::from_millis(700);
    let app = TestApp::spawn_with(|config| {
        config.login_failures_per_client_and_account = 3;
        config.login_account_slowdown_after = 4;
        config.login_account_slowdown_ms = SLOWDOWN.as_millis() as u64;
    })
    .await;
    app.register("admin@example.com", PASSWORD).await.unwrap();

    // Five clients of a botnet, each under its own limit, fail once or twice each.
    for n in 0..5 {
        let bot = from_client(&format!("192.0.2.{}", 100 + n));
        expect_error(
            app.login_from(&bot, "admin@example.com", WRONG).await,
            ErrorCode::Unauthenticated,
        );
    }
    // The account is now over its threshold: the owner still logs in, only later.
    let started = Instant::now();
    app.login_from(&from_client("198.51.100.2"), "admin@example.com", PASSWORD)
        .await
        .expect("a slowed-down account still lets its owner in");
    assert!(
        started.elapsed() >= SLOWDOWN,
        "the login took {:?}, less than the slowdown",
        started.elapsed()
    );
    // An unknown address under the same campaign is slowed down alike.
    for n in 0..5 {
        let bot = from_client(&format!("192.0.2.{}", 200 + n));
        expect_error(
            app.login_from(&bot, "ghost@example.com", WRONG).await,
            ErrorCode::Unauthenticated,
        );
    }
    let started = Instant::now();
    expect_error(
        app.login_from(&from_client("198.51.100.3"), "ghost@example.com", PASSWORD)
            .await,
        ErrorCode::Unauthenticated,
    );
    assert!(started.elapsed() >= SLOWDOWN, "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_logins_is_turned_away_instead_of_queueing_without_bound() {
    let app = TestApp::spawn_with(|config| {
        config.max_concurrent_hashes = Some(1);
        config.hash_queue_timeout_ms = 5;
    })
    .await;
    app.register("popular@example.com", PASSWORD).await.unwrap();

    let burst = (0..16).map(|_| app.login("popular@example.com", PASSWORD));
    let outcomes = futures::future::join_all(burst).await;
    let succeeded = outcomes.iter().filter(|o| o.is_ok()).count();
    let unavailable: Vec<_> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().err())
        .inspect(|e| assert_eq!(e.code(), ErrorCode::Unavailable, "{e}"))
        .collect();
    assert!(succeeded >= 1, "at least the first login gets a slot");
    assert!(!unavailable.is_empty(), "some logins were turned away");
    assert!(
        !unavailable[0].message().contains("argon") && !unavailable[0].message().contains("slot"),
        "{}",
        unavailable[0]
    );
    // Once the burst is over, logins work again.
    app.login("popular@example.com", PASSWORD).await.unwrap();
}
