//! A customer's first visit, end to end through the gateway: register, log in, read the
//! profile the user service made from user.registered, manage addresses, refresh, log out.
//! The auth, user and address services run for real behind the gateway, which verifies
//! access tokens with the key set it fetches from the auth service over NATS.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::Platform;

fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {value}"))
}

fn address(line1: &str, default: bool) -> Value {
    json!({
        "recipient_name": "Ada Lovelace",
        "line1": line1,
        "city": "London",
        "postal_code": "SW1A 1AA",
        "country_code": "gb",
        "is_default": default,
    })
}

#[tokio::test]
async fn a_customer_registers_logs_in_keeps_addresses_refreshes_and_logs_out() {
    let platform = Platform::spawn().await;
    let tokens = platform
        .register_and_login("Ada@Example.com", "correct horse battery staple")
        .await;
    let access = text(&tokens, "access_token").to_owned();
    let refresh = text(&tokens, "refresh_token").to_owned();
    let user_id = text(&tokens, "user_id").to_owned();
    assert_eq!(tokens["roles"], json!(["customer"]));

    // The gateway verifies the token with the keys the auth service publishes.
    let (status, jwks) = platform.get("/.well-known/jwks.json", None).await;
    assert_eq!(status, StatusCode::OK, "{jwks}");
    let jwks = tokens::Jwks::from_json(jwks.to_string().as_bytes()).expect("a JWKS document");
    let verifier = tokens::Verifier::new(&jwks, tokens::DEFAULT_ISSUER, tokens::DEFAULT_AUDIENCE)
        .expect("keys");
    let claims = verifier.verify(&access).expect("the access token verifies");
    assert_eq!(claims.sub, user_id);

    // The profile was made from user.registered.
    let profile = platform.profile(&access).await;
    assert_eq!(text(&profile, "user_id"), user_id);
    assert_eq!(text(&profile, "email"), "ada@example.com");
    let (status, profile) = platform
        .send(
            Method::PUT,
            "/api/v1/users/me",
            Some(json!({"first_name": "Ada", "last_name": "Lovelace"})),
            Some(&access),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    assert_eq!(text(&profile, "first_name"), "Ada");

    // Two addresses; the first is the default until the second is made it.
    let (status, home) = platform
        .post(
            "/api/v1/addresses",
            address("1 Home Street", false),
            Some(&access),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{home}");
    assert_eq!(home["is_default"], json!(true));
    assert_eq!(text(&home, "country_code"), "GB");
    let (status, work) = platform
        .post(
            "/api/v1/addresses",
            address("2 Work Road", false),
            Some(&access),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{work}");
    assert_eq!(work["is_default"], json!(false));
    let work_id = text(&work, "id").to_owned();
    let (status, body) = platform
        .post(
            &format!("/api/v1/addresses/{work_id}/default"),
            json!({}),
            Some(&access),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, list) = platform.get("/api/v1/addresses", Some(&access)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let defaults: Vec<&str> = list["addresses"]
        .as_array()
        .expect("addresses")
        .iter()
        .filter(|a| a["is_default"] == json!(true))
        .map(|a| text(a, "id"))
        .collect();
    assert_eq!(defaults, [work_id.as_str()]);

    // A bad address is refused field by field.
    let (status, body) = platform
        .post(
            "/api/v1/addresses",
            json!({"recipient_name": "", "line1": "x", "city": "y", "postal_code": "1", "country_code": "XXX"}),
            Some(&access),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let fields = body.to_string();
    assert!(
        fields.contains("country_code") && fields.contains("recipient_name"),
        "{body}"
    );

    // Another customer sees none of it, not even by id.
    let other = platform
        .register_and_login("grace@example.com", "another long passphrase")
        .await;
    let other_access = text(&other, "access_token");
    let (status, _) = platform
        .get(&format!("/api/v1/addresses/{work_id}"), Some(other_access))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, list) = platform.get("/api/v1/addresses", Some(other_access)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["addresses"], json!([]));
    let other_profile = platform.profile(other_access).await;
    assert_eq!(text(&other_profile, "email"), "grace@example.com");
    assert_eq!(text(&other_profile, "first_name"), "");

    // An admin grants the seller role; the next refresh carries it.
    let (status, account) = platform
        .post(
            &format!("/api/v1/auth/accounts/{user_id}/roles"),
            json!({"role": "seller"}),
            Some(&platform.admin_token()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{account}");
    let (status, refreshed) = platform
        .post(
            "/api/v1/auth/refresh",
            json!({"refresh_token": refresh}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let mut roles: Vec<&str> = refreshed["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    roles.sort_unstable();
    assert_eq!(roles, ["customer", "seller"]);
    let new_refresh = text(&refreshed, "refresh_token").to_owned();
    assert_ne!(new_refresh, refresh);
    let (status, _) = platform
        .get("/api/v1/users/me", Some(text(&refreshed, "access_token")))
        .await;
    assert_eq!(status, StatusCode::OK);

    // Logging out ends the session: neither refresh token works any more.
    let (status, body) = platform
        .post(
            "/api/v1/auth/logout",
            json!({"refresh_token": new_refresh}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for token in [&refresh, &new_refresh] {
        let (status, body) = platform
            .post(
                "/api/v1/auth/refresh",
                json!({"refresh_token": token}),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }

    // Without a token the profile is not there to read.
    let (status, _) = platform.get("/api/v1/users/me", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    platform.stop().await;
}

#[tokio::test]
async fn login_failures_do_not_say_whether_an_email_is_registered() {
    let platform = Platform::spawn().await;
    platform
        .register_and_login("known@example.com", "a perfectly fine passphrase")
        .await;
    let (known_status, known) = platform
        .post(
            "/api/v1/auth/login",
            json!({"email": "known@example.com", "password": "the wrong passphrase"}),
            None,
        )
        .await;
    let (unknown_status, unknown) = platform
        .post(
            "/api/v1/auth/login",
            json!({"email": "nobody@example.com", "password": "the wrong passphrase"}),
            None,
        )
        .await;
    assert_eq!(known_status, StatusCode::UNAUTHORIZED, "{known}");
    assert_eq!(unknown_status, known_status);
    assert_eq!(known["code"], unknown["code"]);
    assert_eq!(known["message"], unknown["message"]);

    // Registering a taken email answers exactly as a new one does.
    let (status_taken, taken) = platform
        .post(
            "/api/v1/auth/register",
            json!({"email": "known@example.com", "password": "some other passphrase"}),
            None,
        )
        .await;
    let (status_new, new) = platform
        .post(
            "/api/v1/auth/register",
            json!({"email": "new@example.com", "password": "some other passphrase"}),
            None,
        )
        .await;
    assert_eq!(status_taken, StatusCode::OK);
    assert_eq!(status_new, status_taken);
    assert_eq!(taken, new);
    platform.stop().await;
}
