//! The refresh token in an HttpOnly cookie, as a browser asks for it with
//! `X-Refresh-Token-Delivery: cookie`: login sets it, refresh takes it and rotates it, the
//! auth service refuses a used one, logout clears it. No other route reads it, and a client
//! that does not ask keeps getting the token in the body. The auth, user and address
//! services run for real behind the gateway.

use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Platform, PlatformOptions};

const DELIVERY: &str = "X-Refresh-Token-Delivery";
const PASSWORD: &str = "correct horse battery staple";

/// What a browser would see of one answer.
struct Answer {
    status: StatusCode,
    set_cookies: Vec<String>,
    /// The kept answer of an earlier request with the same Idempotency-Key.
    replayed: bool,
    body: Value,
}

impl Answer {
    /// The one `Set-Cookie` of the answer.
    fn set_cookie(&self) -> &str {
        assert_eq!(self.set_cookies.len(), 1, "{:?}", self.set_cookies);
        &self.set_cookies[0]
    }

    /// The value the answer sets the refresh cookie to.
    fn cookie_value(&self) -> String {
        let cookie = self.set_cookie();
        cookie
            .strip_prefix("emporium_refresh=")
            .and_then(|rest| rest.split(';').next())
            .unwrap_or_else(|| panic!("not the refresh cookie: {cookie}"))
            .to_owned()
    }

    /// The attributes of the `Set-Cookie`, after the name and value.
    fn attributes(&self) -> Vec<String> {
        self.set_cookie()
            .split(';')
            .skip(1)
            .map(|a| a.trim().to_owned())
            .collect()
    }
}

async fn send(
    platform: &Platform,
    path: &str,
    body: Value,
    headers: &[(&str, &str)],
    bearer: Option<&str>,
) -> Answer {
    let mut request = platform
        .http
        .request(Method::POST, format!("{}{path}", platform.address))
        .json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let set_cookies = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("a text Set-Cookie").to_owned())
        .collect();
    let replayed = response.headers().contains_key("idempotent-replayed");
    let body = response.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        set_cookies,
        replayed,
        body,
    }
}

async fn register(platform: &Platform, email: &str) {
    let answer = send(
        platform,
        "/api/v1/auth/register",
        json!({"email": email, "password": PASSWORD}),
        &[],
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

async fn login(platform: &Platform, email: &str, headers: &[(&str, &str)]) -> Answer {
    let answer = send(
        platform,
        "/api/v1/auth/login",
        json!({"email": email, "password": PASSWORD}),
        headers,
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "login: {}", answer.body);
    answer
}

fn jar(value: &str) -> String {
    format!("emporium_refresh={value}")
}

async fn me(platform: &Platform, access: &str) -> StatusCode {
    platform.get("/api/v1/auth/me", Some(access)).await.0
}

/// The platform with the gateway behind a proxy of ours, so that `X-Forwarded-Proto: https`
/// says the browser came over HTTPS.
async fn platform_behind_a_proxy() -> Platform {
    Platform::spawn_with(PlatformOptions {
        configure: Box::new(|config| config.trust_forwarded_for = true),
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn a_browser_keeps_its_refresh_token_in_an_httponly_cookie_only() {
    let platform = platform_behind_a_proxy().await;
    let email = "cookie@example.com";
    register(&platform, email).await;

    // Login: the token is in the cookie, and the body has none.
    let first = login(&platform, email, &[(DELIVERY, "cookie")]).await;
    let lifetime = first.body["refresh_expires_in"].as_str().expect("seconds");
    assert!(lifetime.parse::<u64>().unwrap() > 0);
    assert_eq!(
        first.attributes(),
        [
            "HttpOnly",
            "SameSite=Strict",
            "Path=/api/v1/auth",
            &format!("Max-Age={lifetime}"),
        ],
        "plain HTTP: not Secure"
    );
    assert_eq!(first.body["refresh_token"], "", "{}", first.body);
    let cookie_1 = first.cookie_value();
    assert!(cookie_1.len() >= 32, "{cookie_1}");
    let access = first.body["access_token"].as_str().unwrap();
    assert_eq!(me(&platform, access).await, StatusCode::OK);

    // Refresh with nothing but the cookie: a new pair, and the cookie rotates.
    let cookie = jar(&cookie_1);
    let second = send(
        &platform,
        "/api/v1/auth/refresh",
        json!({}),
        &[(DELIVERY, "cookie"), (COOKIE.as_str(), &cookie)],
        None,
    )
    .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(second.body["refresh_token"], "");
    let cookie_2 = second.cookie_value();
    assert_ne!(cookie_2, cookie_1, "the cookie rotates");
    assert!(second.attributes().contains(&"HttpOnly".to_owned()));
    let access = second.body["access_token"].as_str().unwrap();
    assert_eq!(me(&platform, access).await, StatusCode::OK);

    // The used cookie is refused, and presenting it again ends the session: its newer
    // cookie stops working too.
    let reused = send(
        &platform,
        "/api/v1/auth/refresh",
        json!({}),
        &[(DELIVERY, "cookie"), (COOKIE.as_str(), &cookie)],
        None,
    )
    .await;
    assert_eq!(reused.status, StatusCode::UNAUTHORIZED, "{}", reused.body);
    assert!(reused.set_cookies.is_empty(), "{:?}", reused.set_cookies);
    let after_theft = send(
        &platform,
        "/api/v1/auth/refresh",
        json!({}),
        &[(DELIVERY, "cookie"), (COOKIE.as_str(), &jar(&cookie_2))],
        None,
    )
    .await;
    assert_eq!(after_theft.status, StatusCode::UNAUTHORIZED);

    // No cookie and no token: the service's "required", naming the field.
    let none = send(
        &platform,
        "/api/v1/auth/refresh",
        json!({}),
        &[(DELIVERY, "cookie")],
        None,
    )
    .await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST, "{}", none.body);
    assert_eq!(none.body["details"][0]["field"], "refresh_token");

    // Over HTTPS (as the proxy says), the cookie is Secure.
    let secure = login(
        &platform,
        email,
        &[(DELIVERY, "cookie"), ("X-Forwarded-Proto", "https")],
    )
    .await;
    assert!(
        secure.attributes().contains(&"Secure".to_owned()),
        "{}",
        secure.set_cookie()
    );

    // Logout with the cookie clears it, and the session is over.
    let cookie_3 = jar(&secure.cookie_value());
    let logout = send(
        &platform,
        "/api/v1/auth/logout",
        json!({}),
        &[(DELIVERY, "cookie"), (COOKIE.as_str(), &cookie_3)],
        None,
    )
    .await;
    assert_eq!(logout.status, StatusCode::OK, "{}", logout.body);
    assert_eq!(
        logout.set_cookie(),
        "emporium_refresh=; HttpOnly; SameSite=Strict; Path=/api/v1/auth; Max-Age=0"
    );
    let after_logout = send(
        &platform,
        "/api/v1/auth/refresh",
        json!({}),
        &[(DELIVERY, "cookie"), (COOKIE.as_str(), &cookie_3)],
        None,
    )
    .await;
    assert_eq!(after_logout.status, StatusCode::UNAUTHORIZED);

    // A login the browser sends again with its Idempotency-Key gets the kept answer, with
    // the token again in the cookie and not in the body.
    let key = uuid::Uuid::new_v4().to_string();
    let keyed = [(DELIVERY, "cookie"), ("Idempotency-Key", key.as_str())];
    let kept = login(&platform, email, &keyed).await;
    let again = login(&platform, email, &keyed).await;
    assert!(!kept.replayed && again.replayed);
    assert_eq!(again.cookie_value(), kept.cookie_value());
    assert_eq!(again.body["refresh_token"], "");

    // An opt-in header the gateway does not know is refused, naming it.
    let odd = send(
        &platform,
        "/api/v1/auth/login",
        json!({"email": email, "password": PASSWORD}),
        &[(DELIVERY, "please")],
        None,
    )
    .await;
    assert_eq!(odd.status, StatusCode::BAD_REQUEST, "{}", odd.body);
    assert!(
        odd.body["message"].as_str().unwrap().contains(DELIVERY),
        "{}",
        odd.body
    );
    platform.stop().await;
}

#[tokio::test]
async fn without_the_header_tokens_stay_in_the_body_and_other_routes_ignore_the_cookie() {
    let platform = Platform::spawn().await;
    let email = "api-client@example.com";
    register(&platform, email).await;

    // An API client that does not ask: the token in the body, no cookie, as ever.
    let pair = login(&platform, email, &[]).await;
    assert!(pair.set_cookies.is_empty(), "{:?}", pair.set_cookies);
    let refresh_token = pair.body["refresh_token"].as_str().unwrap().to_owned();
    assert!(!refresh_token.is_empty());
    let rotated = send(
        &platform,
        "/api/v1/auth/refresh",
        json!({"refresh_token": refresh_token}),
        &[(DELIVERY, "body")],
        None,
    )
    .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    assert!(rotated.set_cookies.is_empty());
    let live_token = rotated.body["refresh_token"].as_str().unwrap().to_owned();
    assert!(!live_token.is_empty() && live_token != refresh_token);

    // The cookie of a live session authenticates nothing anywhere else: not the account,
    // not a change.
    let cookie = jar(&live_token);
    let (status, body) = platform
        .send_with(
            Method::GET,
            "/api/v1/auth/me",
            None,
            None,
            &[("Cookie", &cookie)],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = platform
        .send_with(
            Method::POST,
            "/api/v1/addresses",
            Some(
                json!({"recipient_name": "Ada", "line1": "1 Road", "city": "London",
                "postal_code": "N1 9GU", "country_code": "GB"}),
            ),
            None,
            &[("Cookie", &cookie)],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // Nor does a route of auth that takes no cookie read it: login still wants its body.
    let login_by_cookie = send(
        &platform,
        "/api/v1/auth/login",
        json!({}),
        &[(COOKIE.as_str(), &cookie)],
        None,
    )
    .await;
    assert_eq!(login_by_cookie.status, StatusCode::BAD_REQUEST);
    // A cookie of another name is not the refresh cookie.
    let other_name = send(
        &platform,
        "/api/v1/auth/refresh",
        json!({}),
        &[(COOKIE.as_str(), &format!("refresh_token={live_token}"))],
        None,
    )
    .await;
    assert_eq!(other_name.status, StatusCode::BAD_REQUEST);

    // None of that spent the token: it still refreshes, from its cookie without the header
    // too (the answer then carries the new one in the body).
    let by_cookie = send(
        &platform,
        "/api/v1/auth/refresh",
        json!({}),
        &[(COOKIE.as_str(), &cookie)],
        None,
    )
    .await;
    assert_eq!(by_cookie.status, StatusCode::OK, "{}", by_cookie.body);
    assert!(by_cookie.set_cookies.is_empty());
    assert!(!by_cookie.body["refresh_token"].as_str().unwrap().is_empty());
    platform.stop().await;
}
