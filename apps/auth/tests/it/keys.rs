//! The signing keys: a configured key file, or keys kept in the database.

use api::auth::GetJwksRequest;

use crate::helpers::{TestApp, anonymous};

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
