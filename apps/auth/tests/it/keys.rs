//! The signing keys: a configured key file, or keys kept in the database.

use api::auth::GetJwksRequest;

use crate::helpers::{PASSWORD, TestApp, anonymous};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_key_file_tokens_are_signed_by_it_and_the_key_set_is_its_key() {
    let key = tokens::SigningKey::generate("file-key-1");
    let path = std::env::temp_dir().join(format!("auth-test-key-{}.pem", uuid::Uuid::now_v7()));
    std::fs::write(&path, key.to_pkcs8_pem()).unwrap();
    let key_path = path.clone();
    let app = TestApp::spawn_with(move |config| {
        config.signing_key_file = Some(key_path);
        config.signing_key_id = "file-key-1".into();
    })
    .await;
    std::fs::remove_file(&path).unwrap();

    let set = app
        .client
        .get_jwks(&anonymous(), &GetJwksRequest {})
        .await
        .unwrap();
    assert_eq!(set.keys.len(), 1);
    let published = &set.keys[0];
    let expected = key.jwk();
    assert_eq!(published.kid, "file-key-1");
    assert_eq!(published.kty, "OKP");
    assert_eq!(published.crv, "Ed25519");
    assert_eq!(published.alg, "EdDSA");
    assert_eq!(published.r#use, "sig");
    assert_eq!(Some(published.x.clone()), expected.x);

    // A token from the service verifies with the key the file holds.
    let pair = app.signed_up("filed@example.com").await;
    let verifier = tokens::Verifier::new(
        &key.jwks(),
        tokens::DEFAULT_ISSUER,
        tokens::DEFAULT_AUDIENCE,
    )
    .unwrap();
    verifier.verify(&pair.access_token).unwrap();
    assert_eq!(app.count("SELECT count(*) FROM signing_keys").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_key_file_one_database_key_is_made_and_kept_across_restarts() {
    let app = TestApp::spawn().await;
    let before = app
        .client
        .get_jwks(&anonymous(), &GetJwksRequest {})
        .await
        .unwrap();
    assert_eq!(before.keys.len(), 1);
    assert_eq!(app.count("SELECT count(*) FROM signing_keys").await, 1);

    // A second replica on the same database signs with the same key.
    let second = app.start_replica().await;
    second.stop().await;
    assert_eq!(app.count("SELECT count(*) FROM signing_keys").await, 1);
    let pair = app.signed_up("keyed@example.com").await;
    let claims = app.verifier().await.verify(&pair.access_token).unwrap();
    assert_eq!(claims.sub, pair.user_id);
    let after = app
        .client
        .get_jwks(&anonymous(), &GetJwksRequest {})
        .await
        .unwrap();
    assert_eq!(before, after);
}

/// `key`'s public half as `openssl pkey -pubout` writes it (RFC 8410 SubjectPublicKeyInfo).
fn public_key_pem(key: &tokens::SigningKey) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let x = URL_SAFE_NO_PAD.decode(key.jwk().x.unwrap()).unwrap();
    let prefix = [
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    let der = [prefix.as_slice(), &x].concat();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        STANDARD.encode(der)
    )
}

fn kid_of(token: &str) -> String {
    use base64::Engine as _;
    let header = token.split('.').next().unwrap();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let header: serde_json::Value = serde_json::from_slice(&json).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

fn verifier_of(key: &tokens::SigningKey) -> tokens::Verifier {
    tokens::Verifier::new(
        &key.jwks(),
        tokens::DEFAULT_ISSUER,
        tokens::DEFAULT_AUDIENCE,
    )
    .unwrap()
}

fn token_signed_by(key: &tokens::SigningKey) -> String {
    key.mint(
        "user-1",
        &["customer"],
        std::time::Duration::from_secs(900),
        tokens::DEFAULT_ISSUER,
        tokens::DEFAULT_AUDIENCE,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_key_files_are_published_beside_the_signing_key_and_never_sign() {
    let current = tokens::SigningKey::generate("auth-2");
    let previous = tokens::SigningKey::generate("auth-1");
    let next = tokens::SigningKey::generate("auth-3");
    let dir = std::env::temp_dir().join(format!("auth-test-keys-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let current_path = dir.join("auth-2.pem");
    let previous_path = dir.join("auth-1.pem");
    let next_path = dir.join("auth-3.pub.pem");
    // The retired key as the private key file it was; the next one as its public half only.
    std::fs::write(&current_path, current.to_pkcs8_pem()).unwrap();
    std::fs::write(&previous_path, previous.to_pkcs8_pem()).unwrap();
    std::fs::write(&next_path, public_key_pem(&next)).unwrap();
    let verification = vec![
        format!("auth-1={}", previous_path.display())
            .parse()
            .unwrap(),
        format!("auth-3={}", next_path.display()).parse().unwrap(),
    ];
    let app = TestApp::spawn_with(move |config| {
        config.signing_key_file = Some(current_path);
        config.signing_key_id = "auth-2".into();
        config.verification_key_files = verification;
    })
    .await;
    std::fs::remove_dir_all(&dir).unwrap();

    let set = app
        .client
        .get_jwks(&anonymous(), &GetJwksRequest {})
        .await
        .unwrap();
    let kids: Vec<&str> = set.keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids, ["auth-2", "auth-1", "auth-3"]);
    for (published, key) in set.keys.iter().zip([&current, &previous, &next]) {
        assert_eq!(Some(published.x.clone()), key.jwk().x, "{}", published.kid);
        assert_eq!(published.alg, "EdDSA");
        assert_eq!(published.r#use, "sig");
    }

    // A token another replica signed with the previous key (or, after the switch, the next
    // one) verifies against the published set, as the gateway builds it.
    let verifier = app.verifier().await;
    verifier.verify(&token_signed_by(&previous)).unwrap();
    verifier.verify(&token_signed_by(&next)).unwrap();

    // This service signs with the current key only.
    for n in 0..3 {
        let pair = app.signed_up(&format!("rotating{n}@example.com")).await;
        assert_eq!(kid_of(&pair.access_token), "auth-2");
        verifier_of(&current).verify(&pair.access_token).unwrap();
        assert!(verifier_of(&previous).verify(&pair.access_token).is_err());
        verifier.verify(&pair.access_token).unwrap();
        let refreshed = app.refresh(&pair.refresh_token).await.unwrap();
        assert_eq!(kid_of(&refreshed.access_token), "auth-2");
    }
    assert_eq!(app.count("SELECT count(*) FROM signing_keys").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_key_rotation_publishes_the_next_key_first_and_keeps_the_previous_for_a_token_lifetime()
 {
    // Superseded keys stay published for the TTL + 30 s follow interval + 30 s leeway: 120 s.
    let mut app = TestApp::spawn_with(|config| config.access_token_ttl_secs = 60).await;
    let jwks_kids = |set: api::auth::JsonWebKeySet| -> Vec<String> {
        set.keys.into_iter().map(|k| k.kid).collect()
    };
    let first = jwks_kids(
        app.client
            .get_jwks(&anonymous(), &GetJwksRequest {})
            .await
            .unwrap(),
    );
    assert_eq!(first.len(), 1);
    let old_kid = first[0].clone();
    let old_token = app.signed_up("early@example.com").await.access_token;
    assert_eq!(kid_of(&old_token), old_kid);

    // The next key: published at once, signing in ten minutes.
    let next = auth_service::keys::add_database_key(app.db(), std::time::Duration::from_secs(600))
        .await
        .unwrap();
    let published = jwks_kids(
        app.client
            .get_jwks(&anonymous(), &GetJwksRequest {})
            .await
            .unwrap(),
    );
    assert_eq!(published, [next.kid.clone(), old_kid.clone()]);
    // Not signing yet, even on a replica started now.
    app.stop_service().await;
    let replica = app.start_replica().await;
    let token = sign_in_on_started_replica(&app).await;
    assert_eq!(kid_of(&token.access_token), old_kid);
    replica.stop().await;

    // Its time comes (ten minutes pass): replicas switch to it...
    sqlx::query("UPDATE signing_keys SET signs_from = signs_from - interval '601 seconds'")
        .execute(app.db())
        .await
        .unwrap();
    let replica = app.start_replica().await;
    let token = sign_in_on_started_replica(&app).await;
    assert_eq!(kid_of(&token.access_token), next.kid);
    // ...and the tokens of the old key keep verifying.
    let verifier = app.verifier().await;
    verifier.verify(&old_token).unwrap();
    verifier.verify(&token.access_token).unwrap();

    // 100 s later, inside the old key's last token lifetime: still published.
    sqlx::query("UPDATE signing_keys SET signs_from = signs_from - interval '100 seconds'")
        .execute(app.db())
        .await
        .unwrap();
    let published = jwks_kids(
        app.client
            .get_jwks(&anonymous(), &GetJwksRequest {})
            .await
            .unwrap(),
    );
    assert_eq!(published, [next.kid.clone(), old_kid.clone()]);
    // 30 s more, every token of the old key has expired: it drops out by itself.
    sqlx::query("UPDATE signing_keys SET signs_from = signs_from - interval '30 seconds'")
        .execute(app.db())
        .await
        .unwrap();
    let published = jwks_kids(
        app.client
            .get_jwks(&anonymous(), &GetJwksRequest {})
            .await
            .unwrap(),
    );
    assert_eq!(published, [next.kid]);
    replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_follows_the_database_to_the_key_whose_time_has_come() {
    let app = TestApp::spawn().await;
    let keys = auth_service::keys::Keys::from_database(
        app.db().clone(),
        std::time::Duration::from_secs(900),
    )
    .await
    .unwrap();
    let old_kid = keys.signing_key().kid().to_owned();

    let pending =
        auth_service::keys::add_database_key(app.db(), std::time::Duration::from_secs(600))
            .await
            .unwrap();
    keys.refresh_from_database().await.unwrap();
    assert_eq!(
        keys.signing_key().kid(),
        old_kid,
        "a pending key does not sign"
    );

    let due = auth_service::keys::add_database_key(app.db(), std::time::Duration::ZERO)
        .await
        .unwrap();
    keys.refresh_from_database().await.unwrap();
    assert_eq!(keys.signing_key().kid(), due.kid);
    let set = keys.key_set().await.unwrap();
    let kids: Vec<&str> = set.keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(
        kids,
        [pending.kid.as_str(), due.kid.as_str(), old_kid.as_str()]
    );
}

/// Signs in `early@example.com` once a just-started replica answers: its NATS subscriptions may
/// reach the server a moment after its start returns.
async fn sign_in_on_started_replica(app: &TestApp) -> api::auth::TokenPair {
    let started = std::time::Instant::now();
    loop {
        match app.login("early@example.com", PASSWORD).await {
            Err(e)
                if e.code() == rpc::ErrorCode::Unavailable
                    && started.elapsed() < std::time::Duration::from_secs(10) =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            other => return other.unwrap(),
        }
    }
}
