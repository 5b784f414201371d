//! Who the auth service listens to on NATS, and how the gateway knows its keys are auth's.

use std::time::Duration;

use api::auth::{AuthClient, GetAccountRequest, GrantRoleRequest};
use base64::Engine as _;

use crate::helpers::{TestApp, admin, anonymous};

/// A role grant with forged admin headers, sent by anything but the gateway, reaches nobody:
/// NATS lets only the gateway publish to the auth service's admin subjects.
#[tokio::test]
async fn a_forged_grant_role_from_another_identity_is_refused() {
    let app = TestApp::spawn().await;
    let registered = app.signed_up("victim@example.com").await;
    let grant = GrantRoleRequest {
        user_id: registered.user_id.clone(),
        role: "admin".into(),
    };
    let forged = admin().with_timeout(Duration::from_secs(2));
    for identity in ["address", "user", "product"] {
        let client = AuthClient::new(rpc::Client::new(
            app.servers.nats.connect_as(identity).await,
        ));
        assert!(
            client.grant_role(&forged, &grant).await.is_err(),
            "{identity} granted a role"
        );
    }
    // Nobody gets in without a key at all.
    let anonymous = async_nats::ConnectOptions::new()
        .max_reconnects(1)
        .connect(app.servers.nats.url())
        .await;
    assert!(anonymous.is_err(), "an anonymous connection was accepted");

    let account = app
        .client
        .get_account(
            &admin(),
            &GetAccountRequest {
                user_id: registered.user_id.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(account.roles, ["customer"]);
    // The same grant through the gateway's identity works: the refusal above is NATS's.
    let gateway = AuthClient::new(rpc::Client::new(
        app.servers.nats.connect_as("gateway").await,
    ));
    let granted = gateway.grant_role(&admin(), &grant).await.unwrap();
    assert!(granted.roles.contains(&"admin".to_owned()));
    // The refusals were NATS permission violations; the service itself saw nothing amiss.
    let violations = app.servers.nats.violations();
    assert!(
        violations.iter().any(|v| v.contains(grant_subject())),
        "{violations:#?}"
    );
    // Stopped without the harness's no-violations check: the violations were the point.
    let mut app = app;
    app.stop_service().await;
}

fn grant_subject() -> &'static str {
    api::auth::methods::GRANT_ROLE.subject
}

/// The key set the gateway fetches is signed by the auth service's own NATS identity.
#[tokio::test]
async fn the_key_set_is_signed_by_the_services_nats_identity() {
    let app = TestApp::spawn().await;
    let gateway = AuthClient::new(rpc::Client::new(
        app.servers.nats.connect_as("gateway").await,
    ));
    let signed = gateway
        .get_signed_key_set(
            &rpc::Context::background(),
            &api::auth::GetSignedKeySetRequest {},
        )
        .await
        .unwrap();
    let auth_key = app.servers.nats.credentials().public_key("auth").unwrap();
    assert_eq!(signed.signer, auth_key);
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&signed.signature)
        .unwrap();
    nkeys::KeyPair::from_public_key(auth_key)
        .unwrap()
        .verify(&signed.jwks, &signature)
        .expect("the signature verifies with auth's public NKEY");
    // It is the same key set as the public document.
    let jwks: serde_json::Value = serde_json::from_slice(&signed.jwks).unwrap();
    let public = app
        .client
        .get_jwks(&anonymous(), &api::auth::GetJwksRequest {})
        .await
        .unwrap();
    assert_eq!(jwks, serde_json::to_value(&public).unwrap());
    // The signed key set is internal: not a route, and only the gateway may ask for it.
    assert!(
        api::ROUTES
            .iter()
            .all(|r| r.descriptor.subject != api::auth::methods::GET_SIGNED_KEY_SET.subject)
    );
    app.stop().await;
}
