//! Bad requests name every bad field and write nothing; country codes and postal codes.

use api::address::CreateAddressRequest;
use rpc::ErrorCode;

use crate::helpers::{TestApp, User, address, bad_fields, expect_error, replacement};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_create_names_every_bad_field_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let user = User::signed_up();
    let request = CreateAddressRequest {
        recipient_name: "   ".into(),
        phone: "555-2671".into(),
        line1: String::new(),
        line2: "x".repeat(201),
        city: String::new(),
        region: "x".repeat(101),
        postal_code: "941".into(),
        country_code: "us".into(),
        is_default: true,
    };
    let error = expect_error(
        app.create(&user, request.clone()).await,
        ErrorCode::InvalidArgument,
    );
    // The contract's field rules are checked first and name every field that breaks one; the
    // postal code breaks none (its format depends on the country, which the service checks
    // once the request has the right shape).
    assert_eq!(
        bad_fields(&error),
        [
            "recipient_name",
            "phone",
            "line1",
            "line2",
            "city",
            "region"
        ]
    );
    assert!(error.details().iter().all(|d| !d.problem.is_empty()));
    let shaped = CreateAddressRequest {
        recipient_name: "Ada".into(),
        phone: String::new(),
        line1: "1 Main Street".into(),
        line2: String::new(),
        city: "San Francisco".into(),
        region: String::new(),
        ..request
    };
    let error = expect_error(app.create(&user, shaped).await, ErrorCode::InvalidArgument);
    assert_eq!(bad_fields(&error), ["postal_code"]);

    let error = expect_error(
        app.create(&user, CreateAddressRequest::default()).await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(
        bad_fields(&error),
        ["recipient_name", "line1", "city", "country_code"],
        "empty optional fields are fine; the postal code is not checked without a country"
    );
    assert_eq!(app.stored_total().await, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_update_names_every_bad_field_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let user = User::signed_up();
    let created = app.add(&user, address("Before")).await;
    let request = api::address::UpdateAddressRequest {
        recipient_name: "x".repeat(201),
        phone: "+0123".into(),
        country_code: "Germany".into(),
        ..replacement(&created.id)
    };
    let error = expect_error(app.update(&user, request).await, ErrorCode::InvalidArgument);
    assert_eq!(
        bad_fields(&error),
        ["recipient_name", "phone", "country_code"]
    );
    let request = api::address::UpdateAddressRequest {
        city: " ".into(),
        ..replacement("not-a-uuid")
    };
    let error = expect_error(app.update(&user, request).await, ErrorCode::InvalidArgument);
    assert_eq!(bad_fields(&error), ["id", "city"]);
    assert_eq!(app.get(&user, &created.id).await.unwrap(), created);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_must_be_uuids() {
    let app = TestApp::spawn().await;
    let user = User::signed_up();
    let created = app.add(&user, address("Kept")).await;
    for id in ["", "42", "not-a-uuid"] {
        let errors = [
            expect_error(app.get(&user, id).await, ErrorCode::InvalidArgument),
            expect_error(app.set_default(&user, id).await, ErrorCode::InvalidArgument),
            expect_error(app.delete(&user, id).await, ErrorCode::InvalidArgument),
            expect_error(
                app.update(&user, replacement(id)).await,
                ErrorCode::InvalidArgument,
            ),
        ];
        for error in &errors {
            assert_eq!(bad_fields(error), ["id"], "{id:?}");
        }
    }
    assert_eq!(app.list(&user).await, [created]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn country_codes_are_accepted_in_any_case_and_stored_upper_case() {
    let app = TestApp::spawn().await;
    let user = User::signed_up();
    for (given, postal_code, stored) in [
        ("de", "10115", "DE"),
        ("De", "10115", "DE"),
        ("fR", "75001", "FR"),
        ("BO", "0000", "BO"),
        (" jp ", "100-0001", "JP"),
    ] {
        let request = CreateAddressRequest {
            country_code: given.into(),
            postal_code: postal_code.into(),
            ..address(given)
        };
        let created = app.add(&user, request).await;
        assert_eq!(created.country_code, stored);
    }
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT country_code::text FROM addresses ORDER BY 1")
            .fetch_all(app.db())
            .await
            .unwrap();
    assert_eq!(stored, ["BO", "DE", "FR", "JP"]);

    for bad in ["", "D", "DEU", "UK", "XK", "ZZ", "1A"] {
        let request = CreateAddressRequest {
            country_code: bad.into(),
            ..address("Nowhere")
        };
        let error = expect_error(app.create(&user, request).await, ErrorCode::InvalidArgument);
        assert_eq!(bad_fields(&error), ["country_code"], "{bad:?}");
    }
    assert_eq!(app.stored_count(&user).await, 5);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postal_codes_follow_the_format_of_their_country() {
    let app = TestApp::spawn().await;
    let user = User::signed_up();
    let accepted = [
        ("US", "94105", "94105"),
        ("US", "94105-1234", "94105-1234"),
        ("CA", "k1a0b1", "K1A 0B1"),
        ("GB", "sw1a 1aa", "SW1A 1AA"),
        ("GB", "M11AE", "M1 1AE"),
        ("DE", "01067", "01067"),
        ("FR", "75008", "75008"),
        ("NL", "1012ab", "1012 AB"),
        ("JP", "1000001", "100-0001"),
        ("AU", "2000", "2000"),
        ("IN", "110001", "110001"),
        ("BR", "01310100", "01310-100"),
        ("BR", "01310-100", "01310-100"),
        ("AR", " c1425dkf ", "C1425DKF"),
        ("HK", "", ""),
        ("AE", "", ""),
    ];
    for (country, given, stored) in accepted {
        let request = CreateAddressRequest {
            country_code: country.into(),
            postal_code: given.into(),
            ..address(country)
        };
        let created = app
            .create(&user, request)
            .await
            .unwrap_or_else(|error| panic!("{country} {given:?}: {error}"));
        assert_eq!(created.postal_code, stored, "{country} {given:?}");
    }

    let refused = [
        ("US", "9410", "ZIP"),
        ("US", "94105-12", "ZIP"),
        ("CA", "K1A 0B", "K1A 0B1"),
        ("GB", "SW1A", "SW1A 1AA"),
        ("DE", "1011", "5 digits"),
        ("FR", "750080", "5 digits"),
        ("NL", "1012", "1012 AB"),
        ("JP", "100-001", "100-0001"),
        ("AU", "20000", "4 digits"),
        ("IN", "11001", "6 digits"),
        ("BR", "0131-0100", "01310-100"),
        ("US", "", "is required"),
        ("AR", "C1425_DKF", "letters, digits, spaces and hyphens"),
        ("AR", "123456789012345678901", "at most 20"),
    ];
    for (country, given, named_in_problem) in refused {
        let request = CreateAddressRequest {
            country_code: country.into(),
            postal_code: given.into(),
            ..address(country)
        };
        let error = expect_error(app.create(&user, request).await, ErrorCode::InvalidArgument);
        assert_eq!(bad_fields(&error), ["postal_code"], "{country} {given:?}");
        let problem = &error.details()[0].problem;
        assert!(
            problem.contains(named_in_problem),
            "{country} {given:?}: {problem}"
        );
    }
    assert_eq!(app.stored_count(&user).await, accepted.len() as i64);
    app.stop().await;
}
