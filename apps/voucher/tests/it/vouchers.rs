//! Creating, reading, changing and listing vouchers as an admin, and what everybody else may
//! not do with platform-wide vouchers. Shops' own vouchers are in `shops.rs`.

use api::voucher::{
    CreateVoucherRequest, GetVoucherRequest, ListVouchersRequest, UpdateVoucherRequest,
};
use chrono::{SubsecRound, Utc};
use rpc::ErrorCode;

use crate::helpers::{TestApp, admin, bad_fields, customer, expect_error, new_id, seller, voucher};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_creates_reads_and_changes_a_platform_voucher() {
    let app = TestApp::spawn().await;
    let creator = admin();
    let created = app
        .client
        .create_voucher(
            &creator,
            &CreateVoucherRequest {
                usage_limit: 100,
                per_user_limit: 2,
                min_order_minor_units: 1000,
                max_discount_minor_units: 5000,
                ..voucher("Spring-Sale")
            },
        )
        .await
        .unwrap();
    assert_eq!(created.code, "Spring-Sale");
    assert_eq!(created.shop_id, "", "platform-wide");
    assert_eq!(
        (created.kind.as_str(), created.percent_off),
        ("percent", 10)
    );
    assert_eq!(created.currency, "USD");
    assert_eq!((created.usage_limit, created.per_user_limit), (100, 2));
    assert_eq!((created.used_count, created.reserved_count), (0, 0));
    assert_eq!(created.status, "active");
    assert_eq!(created.created_by, creator.principal().unwrap().user_id);
    let started = created.valid_from.unwrap();
    assert!(
        (Utc::now().timestamp() - started.seconds).abs() < 60,
        "from now"
    );
    assert_eq!(created.valid_until, None);

    assert_eq!(
        app.get("SPRING-sale").await,
        created,
        "codes match in any case"
    );

    // Whole seconds: PostgreSQL keeps microseconds.
    let until = api::timestamp((Utc::now() + chrono::Duration::days(7)).trunc_subsecs(0));
    let updated = app
        .update(UpdateVoucherRequest {
            code: "spring-sale".into(),
            percent_off: Some(25),
            valid_until: until,
            status: Some("disabled".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(updated.percent_off, 25);
    assert_eq!(updated.valid_until, until);
    assert_eq!(updated.status, "disabled");
    assert_eq!(updated.code, "Spring-Sale", "the code stays");
    assert_eq!(updated.min_order_minor_units, 1000, "absent fields stay");
    assert_eq!(app.get("Spring-Sale").await, updated);

    let cleared = app
        .update(UpdateVoucherRequest {
            code: "spring-sale".into(),
            clear_valid_until: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(cleared.valid_until, None);

    expect_error(
        app.update(UpdateVoucherRequest {
            code: "no-such-code".into(),
            percent_off: Some(5),
            ..Default::default()
        })
        .await,
        ErrorCode::NotFound,
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_names_each_field_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let error = expect_error(
        app.client
            .create_voucher(
                &admin(),
                &CreateVoucherRequest {
                    kind: "percent".into(),
                    percent_off: 0,
                    amount_off_minor_units: 300,
                    currency: "XYZ".into(),
                    valid_from: api::timestamp(Utc::now()),
                    valid_until: api::timestamp(Utc::now() - chrono::Duration::hours(1)),
                    ..voucher("Broken")
                },
            )
            .await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(
        bad_fields(&error),
        [
            "percent_off",
            "amount_off_minor_units",
            "currency",
            "valid_until"
        ]
    );
    let error = expect_error(
        app.client
            .create_voucher(
                &admin(),
                &CreateVoucherRequest {
                    kind: "fixed".into(),
                    percent_off: 0,
                    ..voucher("Nothing-Off")
                },
            )
            .await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(bad_fields(&error), ["amount_off_minor_units"]);
    let error = expect_error(
        app.client
            .create_voucher(&admin(), &voucher("no spaces!"))
            .await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(bad_fields(&error), ["code"]);
    assert_eq!(app.stored_vouchers().await, 0);

    let created = app.create(voucher("Steady")).await;
    let error = expect_error(
        app.update(UpdateVoucherRequest {
            code: "steady".into(),
            amount_off_minor_units: Some(100),
            valid_until: api::timestamp(Utc::now() - chrono::Duration::days(1)),
            description: Some("changed".into()),
            ..Default::default()
        })
        .await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(
        bad_fields(&error),
        ["amount_off_minor_units", "valid_until"]
    );
    assert_eq!(app.get("steady").await, created, "nothing changed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_taken_in_another_case_is_a_conflict_naming_the_code() {
    let app = TestApp::spawn().await;
    app.create(voucher("Summer")).await;
    let error = expect_error(
        app.client
            .create_voucher(&admin(), &voucher("SUMMER"))
            .await,
        ErrorCode::Conflict,
    );
    assert_eq!(error.details()[0].field, "code");
    assert_eq!(app.stored_vouchers().await, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_usage_limit_cannot_go_below_the_uses_taken() {
    let app = TestApp::spawn().await;
    app.create(CreateVoucherRequest {
        usage_limit: 5,
        ..voucher("Popular")
    })
    .await;
    for _ in 0..3 {
        app.reserve("Popular", &new_id(), &new_id(), 100, 60)
            .await
            .unwrap();
    }
    let lower = |limit| UpdateVoucherRequest {
        code: "popular".into(),
        usage_limit: Some(limit),
        ..Default::default()
    };
    expect_error(app.update(lower(2)).await, ErrorCode::FailedPrecondition);
    assert_eq!(app.get("popular").await.usage_limit, 5);
    assert_eq!(app.update(lower(3)).await.unwrap().usage_limit, 3);
    assert_eq!(
        app.update(lower(0)).await.unwrap().usage_limit,
        0,
        "unlimited"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_vouchers_are_for_admins_only() {
    let app = TestApp::spawn().await;
    let error = expect_error(
        app.client
            .create_voucher(&customer(), &voucher("Mine"))
            .await,
        ErrorCode::PermissionDenied,
    );
    assert!(error.message().contains("seller"), "{error}");
    let error = expect_error(
        app.client
            .create_voucher(&seller(&new_id()), &voucher("Mine"))
            .await,
        ErrorCode::PermissionDenied,
    );
    assert!(error.message().contains("platform-wide"), "{error}");
    assert_eq!(app.stored_vouchers().await, 0);

    app.create(voucher("Everyone")).await;
    for caller in [customer(), seller(&new_id())] {
        expect_error(
            app.client
                .get_voucher(
                    &caller,
                    &GetVoucherRequest {
                        code: "everyone".into(),
                    },
                )
                .await,
            ErrorCode::NotFound,
        );
        expect_error(
            app.client
                .update_voucher(
                    &caller,
                    &UpdateVoucherRequest {
                        code: "everyone".into(),
                        status: Some("disabled".into()),
                        ..Default::default()
                    },
                )
                .await,
            ErrorCode::NotFound,
        );
    }
    assert_eq!(app.get("everyone").await.status, "active");
    expect_error(
        app.client
            .list_vouchers(&customer(), &ListVouchersRequest::default())
            .await,
        ErrorCode::PermissionDenied,
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_list_every_voucher_newest_first_a_page_at_a_time() {
    let app = TestApp::spawn().await;
    for code in ["One", "Two", "Three"] {
        app.create(voucher(code)).await;
    }
    let list = |cursor: String| ListVouchersRequest {
        page_size: 2,
        cursor,
        ..Default::default()
    };
    let first = app
        .client
        .list_vouchers(&admin(), &list(String::new()))
        .await
        .unwrap();
    let codes: Vec<_> = first.vouchers.iter().map(|v| v.code.as_str()).collect();
    assert_eq!(codes, ["Three", "Two"]);
    assert!(!first.next_cursor.is_empty());
    let rest = app
        .client
        .list_vouchers(&admin(), &list(first.next_cursor))
        .await
        .unwrap();
    let codes: Vec<_> = rest.vouchers.iter().map(|v| v.code.as_str()).collect();
    assert_eq!(codes, ["One"]);
    assert!(
        rest.next_cursor.is_empty(),
        "the last page has no next cursor"
    );

    let error = expect_error(
        app.client
            .list_vouchers(&seller(&new_id()), &ListVouchersRequest::default())
            .await,
        ErrorCode::InvalidArgument,
    );
    assert_eq!(bad_fields(&error), ["shop_id"]);
    app.stop().await;
}

#[test]
fn the_gateway_routes_every_public_method_of_the_contract() {
    let mut routes: Vec<(&str, &str)> = api::ROUTES
        .iter()
        .filter(|route| route.descriptor.service == api::voucher::SERVICE_NAME)
        .map(|route| (route.http_method, route.path))
        .collect();
    routes.sort();
    assert_eq!(
        routes,
        [
            ("GET", "/api/v1/vouchers"),
            ("GET", "/api/v1/vouchers/{code}"),
            ("GET", "/api/v1/vouchers/{code}/check"),
            ("PATCH", "/api/v1/vouchers/{code}"),
            ("POST", "/api/v1/vouchers"),
        ]
    );
}
