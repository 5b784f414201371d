//! Token keys from a JWKS URL: fetched at start, fetched again for a new key id (at most once
//! a minute), and no keys at all means no signed-in routes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;

use crate::helpers::{Options, TestApp, expect_error, new_product, products_path};

/// A JWKS endpoint whose keys the test can change, counting its fetches.
#[derive(Clone, Default)]
struct KeyServer {
    jwks: Arc<Mutex<tokens::Jwks>>,
    fetches: Arc<AtomicUsize>,
}

impl KeyServer {
    async fn start(self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        let app = axum::Router::new()
            .route(
                "/.well-known/jwks.json",
                get(|State(server): State<KeyServer>| async move {
                    server.fetches.fetch_add(1, Ordering::SeqCst);
                    axum::Json(server.jwks.lock().unwrap().clone())
                }),
            )
            .with_state(self);
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    fn publish(&self, keys: &[&tokens::SigningKey]) {
        *self.jwks.lock().unwrap() = tokens::Jwks {
            keys: keys.iter().map(|k| k.jwk()).collect(),
        };
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

fn admin_token(key: &tokens::SigningKey) -> String {
    key.mint(
        "admin-9",
        &[rpc::roles::ADMIN],
        Duration::from_secs(600),
        tokens::DEFAULT_ISSUER,
        tokens::DEFAULT_AUDIENCE,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_fetched_from_the_jwks_url_and_rotated_without_a_restart() {
    let first = tokens::SigningKey::generate("2024-01");
    let second = tokens::SigningKey::generate("2024-02");
    let server = KeyServer::default();
    server.publish(&[&first]);
    let url = server.clone().start().await;
    let app = TestApp::spawn_with(Options {
        configure: Box::new(move |config| {
            config.jwt_jwks_file = None;
            config.jwt_jwks_url = Some(url);
        }),
        ..Options::default()
    })
    .await;
    assert_eq!(server.fetches(), 1, "fetched at start");

    let response = app
        .post_json(
            &products_path(),
            &new_product("Lamp", 100),
            Some(&admin_token(&first)),
        )
        .await;
    assert_eq!(response.status(), 200);

    // The auth service rotates to a new key: its tokens work at once.
    server.publish(&[&first, &second]);
    let response = app
        .post_json(
            &products_path(),
            &new_product("Rug", 100),
            Some(&admin_token(&second)),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(server.fetches(), 2, "fetched again for the new key id");

    // A made-up key id does not make the gateway fetch again within the minute.
    let stranger = tokens::SigningKey::generate("2024-03");
    for _ in 0..3 {
        let response = app
            .post_json(
                &products_path(),
                &new_product("Nope", 100),
                Some(&admin_token(&stranger)),
            )
            .await;
        expect_error(response, 401, "unauthenticated").await;
    }
    assert_eq!(server.fetches(), 2);
    assert_eq!(app.list_products("").await.len(), 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keys_signed_in_routes_are_401_and_public_ones_work() {
    let app = TestApp::spawn_with(Options {
        configure: Box::new(|config| config.jwt_jwks_file = None),
        ..Options::default()
    })
    .await;
    let response = app
        .post_json(
            &products_path(),
            &new_product("Lamp", 100),
            Some(&app.admin_token()),
        )
        .await;
    expect_error(response, 401, "unauthenticated").await;
    assert_eq!(app.get(&products_path()).await.status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_foreign_audience_tokens_are_401() {
    let app = TestApp::spawn().await;
    let now = chrono_now();
    let expired = app.signing_key.sign(&tokens::Claims {
        sub: "admin-1".into(),
        roles: vec!["admin".into()],
        iss: tokens::DEFAULT_ISSUER.into(),
        aud: tokens::DEFAULT_AUDIENCE.into(),
        exp: now - 3600,
        iat: now - 7200,
        nbf: now - 7200,
        jti: "j1".into(),
    });
    let response = app
        .post_json(&products_path(), &new_product("Lamp", 100), Some(&expired))
        .await;
    let body = expect_error(response, 401, "unauthenticated").await;
    assert!(
        body["message"].as_str().unwrap().contains("expired"),
        "{body}"
    );

    let other_audience = app.signing_key.mint(
        "admin-1",
        &["admin"],
        Duration::from_secs(600),
        tokens::DEFAULT_ISSUER,
        "another-api",
    );
    let response = app
        .post_json(
            &products_path(),
            &new_product("Lamp", 100),
            Some(&other_audience),
        )
        .await;
    expect_error(response, 401, "unauthenticated").await;
    assert!(app.list_products("").await.is_empty());
    app.stop().await;
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
