//! The generated authorization on a real nats-server: who gets in, who hears what.
//!
//! Each refusal is checked next to the same thing done by an identity that is allowed to, so a
//! test cannot pass because nothing worked at all.

use std::time::Duration;

use async_nats::service::ServiceExt as _;
use futures::StreamExt as _;
use testkit::NatsServer;

/// How long a refused message is waited for: on a local server one that was let through
/// arrives in well under a millisecond. (What is allowed is waited for much longer, so a busy
/// machine cannot fail a test; what is refused can only make it pass late.)
const SETTLE: Duration = Duration::from_millis(500);

/// Whether `subscriber` receives anything within [`SETTLE`].
async fn receives(subscriber: &mut async_nats::Subscriber) -> Option<async_nats::Message> {
    tokio::time::timeout(SETTLE, subscriber.next())
        .await
        .ok()
        .flatten()
}

/// Publishes `subject` as `client` and says whether a watcher (the operator) saw it, waiting
/// [`SETTLE`] when `expected` is false and up to ten seconds when it is true.
async fn delivered(
    server: &NatsServer,
    client: &async_nats::Client,
    subject: &str,
    expected: bool,
) -> bool {
    let watcher = server.connect().await;
    let mut watch = watched(&watcher, subject).await;
    let _ = client.publish(subject.to_owned(), "x".into()).await;
    let _ = client.flush().await;
    let wait = if expected {
        Duration::from_secs(10)
    } else {
        SETTLE
    };
    tokio::time::timeout(wait, watch.next())
        .await
        .ok()
        .flatten()
        .is_some()
}

/// A subscription of the operator's `watcher` to `subject`, known to be in place on the
/// server: a probe the watcher publishes to it has come back.
async fn watched(watcher: &async_nats::Client, subject: &str) -> async_nats::Subscriber {
    let mut watch = watcher.subscribe(subject.to_owned()).await.unwrap();
    watcher
        .publish(subject.to_owned(), "probe".into())
        .await
        .unwrap();
    let probe = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("the watcher's own probe came back")
        .unwrap();
    assert_eq!(&probe.payload[..], b"probe");
    watch
}

async fn may_publish(server: &NatsServer, client: &async_nats::Client, subject: &str) -> bool {
    delivered(server, client, subject, true).await
}

async fn refused(server: &NatsServer, client: &async_nats::Client, subject: &str) -> bool {
    !delivered(server, client, subject, false).await
}

#[tokio::test]
async fn a_connection_without_credentials_is_refused() {
    let server = NatsServer::start().await.unwrap();
    let refused = async_nats::ConnectOptions::new()
        .max_reconnects(1)
        .connect(server.url())
        .await;
    let error = refused.expect_err("an anonymous connection was accepted");
    assert!(
        error.to_string().to_lowercase().contains("authorization"),
        "{error}"
    );
    // A key the server does not know is refused the same way.
    let stranger = nkeys::KeyPair::new_user().seed().unwrap();
    let refused = async_nats::ConnectOptions::with_nkey(stranger)
        .max_reconnects(1)
        .connect(server.url())
        .await;
    assert!(refused.is_err(), "an unknown NKEY was accepted");
    // The platform's own identities get in.
    let gateway = server.connect_as("gateway").await;
    gateway.flush().await.unwrap();
}

#[tokio::test]
async fn a_service_cannot_publish_another_services_events() {
    let server = NatsServer::start().await.unwrap();
    let event = api::product::events::PRODUCT_CREATED;
    let subject = events::names::subject(&event, "p1").unwrap();
    let product = server.connect_as("product").await;
    assert!(
        may_publish(&server, &product, &subject).await,
        "the producer itself could not publish: {:#?}",
        server.violations()
    );
    for other in ["address", "user", "auth", "gateway"] {
        let client = server.connect_as(other).await;
        assert!(
            refused(&server, &client, &subject).await,
            "{other} published product's event"
        );
    }
    let violations = server.violations();
    assert!(
        violations
            .iter()
            .any(|v| v.contains("Publish Violation") && v.contains(&subject)),
        "the server did not log the refusals: {violations:#?}"
    );
}

#[tokio::test]
async fn only_the_gateway_calls_routed_methods_and_services_only_what_they_declare() {
    let server = NatsServer::start().await.unwrap();
    let public = api::product::methods::GET_PRODUCT.subject;
    let admin = api::auth::methods::GRANT_ROLE.subject;
    let internal = api::product::methods::RESERVE_STOCK.subject;
    let gateway = server.connect_as("gateway").await;
    assert!(may_publish(&server, &gateway, public).await);
    assert!(may_publish(&server, &gateway, admin).await);
    assert!(
        refused(&server, &gateway, internal).await,
        "the gateway called an internal method it does not declare"
    );
    for service in ["address", "user", "auth"] {
        let client = server.connect_as(service).await;
        for subject in [public, admin, internal] {
            assert!(
                refused(&server, &client, subject).await,
                "{service} called {subject}"
            );
        }
    }
    // What a contract declares it calls, it may call.
    for contract in api::CONTRACTS.iter().filter(|c| trust::is_served(c)) {
        let client = server.connect_as(contract.service.name).await;
        for method in contract.calls {
            assert!(may_publish(&server, &client, method.subject).await);
        }
    }
}

#[tokio::test]
async fn services_call_only_the_internal_methods_they_declare() {
    use api::{address, auth, cart, order, payment, product, shop, voucher};
    let server = NatsServer::start().await.unwrap();
    // Each pair: a service, and another's internal method its contract does not declare
    // (what checkout alone will reserve, commit or complete, or what only others ask).
    let undeclared = [
        ("cart", voucher::methods::RESERVE_VOUCHER.subject),
        ("cart", voucher::methods::COMMIT_REDEMPTION.subject),
        ("cart", product::methods::RESERVE_STOCK.subject),
        ("cart", shop::methods::GET_SHOP_ACCESS.subject),
        ("voucher", cart::methods::COMPLETE_CHECKOUT.subject),
        ("voucher", cart::methods::GET_CHECKOUT_SNAPSHOT.subject),
        ("voucher", product::methods::LOOKUP_PRODUCTS.subject),
        ("shop", product::methods::LOOKUP_PRODUCTS.subject),
        ("shop", voucher::methods::EVALUATE_VOUCHER.subject),
        ("product", cart::methods::GET_CART_SUBTOTALS.subject),
        ("product", voucher::methods::RELEASE_REDEMPTION.subject),
        ("address", shop::methods::GET_SHOP_ACCESS.subject),
        // Only the order service's sagas move money and stock; nobody calls into order.
        ("cart", payment::methods::CAPTURE_PAYMENT.subject),
        ("voucher", payment::methods::REFUND_PAYMENT.subject),
        ("product", payment::methods::AUTHORIZE_PAYMENT.subject),
        ("shop", product::methods::RESTOCK_RESERVATION.subject),
        ("cart", voucher::methods::RETURN_REDEMPTION.subject),
        ("payment", product::methods::RESERVE_STOCK.subject),
        ("payment", cart::methods::COMPLETE_CHECKOUT.subject),
        ("payment", order::methods::GET_ORDER.subject),
        ("order", product::methods::SET_STOCK.subject),
        ("order", product::methods::LOOKUP_PRODUCTS.subject),
        ("order", auth::methods::GRANT_ROLE.subject),
        ("order", payment::methods::CREATE_PAYMENT_METHOD.subject),
        ("address", order::methods::CHECKOUT.subject),
        ("cart", address::methods::GET_USER_ADDRESS.subject),
        ("payment", address::methods::GET_USER_ADDRESS.subject),
    ];
    // One at a time: a check's watcher would see another check's probe on the same subject.
    for (service, subject) in undeclared {
        let client = server.connect_as(service).await;
        assert!(
            refused(&server, &client, subject).await,
            "{service} called {subject}, which it does not declare"
        );
    }
}

#[tokio::test]
async fn nobody_subscribes_to_another_services_subjects_or_inbox() {
    let server = NatsServer::start().await.unwrap();
    // The snoop: the user service's identity, listening wherever it can.
    let snoop = server.connect_as("user").await;
    let mut snooped = Vec::new();
    for subject in [
        "auth.>",
        "auth.get_jwks",
        "_INBOX.>",
        "_INBOX_gateway.>",
        ">",
    ] {
        if let Ok(subscriber) = snoop.subscribe(subject).await {
            snooped.push((subject, subscriber));
        }
    }
    snoop.flush().await.unwrap();

    // The auth service answers the gateway's request for the signed key set.
    let auth = server.connect_as("auth").await;
    let mut requests = auth
        .subscribe(api::auth::methods::GET_SIGNED_KEY_SET.subject)
        .await
        .unwrap();
    auth.flush().await.unwrap();
    tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            if let Some(reply) = request.reply {
                auth.publish(reply, "the keys".into()).await.unwrap();
            }
        }
    });
    let gateway = server.connect_as("gateway").await;
    let answer = gateway
        .request(api::auth::methods::GET_SIGNED_KEY_SET.subject, "".into())
        .await
        .expect("the gateway's request to auth was answered");
    assert_eq!(&answer.payload[..], b"the keys");
    assert!(
        answer.subject.starts_with("_INBOX_gateway."),
        "{}",
        answer.subject
    );

    for (subject, mut subscriber) in snooped {
        assert!(
            receives(&mut subscriber).await.is_none(),
            "user's subscription to {subject} heard the request or its reply"
        );
    }
}

#[tokio::test]
async fn a_service_reads_its_own_inbox_and_answers_requests() {
    let server = NatsServer::start().await.unwrap();
    // user answers on its own subject; the gateway's request reaches it and the answer comes
    // back through the gateway's private inbox.
    let user = server.connect_as("user").await;
    let subject = api::user::methods::GET_MY_PROFILE.subject;
    let mut requests = user.subscribe(subject).await.unwrap();
    user.flush().await.unwrap();
    tokio::spawn(async move {
        if let Some(request) = requests.next().await {
            user.publish(request.reply.unwrap(), "me".into())
                .await
                .unwrap();
            user.flush().await.unwrap();
        }
    });
    let gateway = server.connect_as("gateway").await;
    let answer =
        tokio::time::timeout(Duration::from_secs(5), gateway.request(subject, "".into())).await;
    let answer = answer.unwrap().unwrap();
    assert_eq!(&answer.payload[..], b"me");
}

/// TLS is optional and supported: with the server's CA a service connects (and still needs
/// its key); without the CA it does not.
#[tokio::test]
async fn connections_use_tls_when_the_server_requires_it() {
    let (server, certificates) = NatsServer::start_tls().await.unwrap();
    let mut args = server.args_for("product");
    args.nats_tls_ca_file = Some(certificates.ca().to_path_buf());
    let product = args.connect("product", "test-product").await.unwrap();
    let subject = events::names::subject(&api::product::events::PRODUCT_CREATED, "p1").unwrap();
    let watcher = {
        let mut operator = server.args_for("operator");
        operator.nats_tls_ca_file = Some(certificates.ca().to_path_buf());
        operator.connect("operator", "test-operator").await.unwrap()
    };
    // Connections are made in the background: start once both are up.
    for client in [&product, &watcher] {
        let mut waited = 0;
        while client.connection_state() != async_nats::connection::State::Connected {
            assert!(waited < 1000, "no TLS connection");
            waited += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let mut watch = watched(&watcher, &subject).await;
    product.publish(subject, "x".into()).await.unwrap();
    product.flush().await.unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(10), watch.next()).await;
    assert!(matches!(seen, Ok(Some(_))), "nothing arrived over TLS");

    // Without trusting the CA, the server's certificate is refused.
    let untrusting = async_nats::ConnectOptions::with_nkey(
        std::fs::read_to_string(server.credentials().seed_file("product").unwrap())
            .unwrap()
            .trim()
            .to_owned(),
    )
    .max_reconnects(1)
    .connect(server.url())
    .await;
    assert!(
        untrusting.is_err(),
        "a connection that does not trust the CA got in"
    );
}

/// The gateway asks every instance at once for its description and counts, and the replies
/// of a real micro service reach its inbox; a service may answer discovery but not ask it.
#[tokio::test]
async fn the_gateway_gathers_service_discovery_and_services_do_not() {
    let server = NatsServer::start().await.unwrap();
    let product = server.connect_as("product").await;
    let _micro = product
        .service_builder()
        .description("the product service")
        .start(api::product::SERVICE_NAME, "1.0.0")
        .await
        .unwrap();
    product.flush().await.unwrap();

    let gateway = server.connect_as("gateway").await;
    for verb in trust::GATEWAY_DISCOVERY {
        let inbox = gateway.new_inbox();
        let mut replies = gateway.subscribe(inbox.clone()).await.unwrap();
        gateway
            .publish_with_reply(verb, inbox, "".into())
            .await
            .unwrap();
        gateway.flush().await.unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(10), replies.next())
            .await
            .unwrap_or_else(|_| panic!("no reply to {verb}: {:#?}", server.violations()))
            .unwrap();
        let reply: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
        assert_eq!(reply["name"], "product", "{verb}: {reply}");
    }
    // Asking one service, or pinging, is not the gateway's to do.
    for subject in ["$SRV.PING", "$SRV.INFO.product"] {
        assert!(refused(&server, &gateway, subject).await, "{subject}");
    }
    let user = server.connect_as("user").await;
    for subject in trust::GATEWAY_DISCOVERY {
        assert!(
            refused(&server, &user, subject).await,
            "user asked {subject}"
        );
    }
}

#[tokio::test]
async fn only_a_consumers_own_service_puts_its_dead_letters_back() {
    let server = NatsServer::start().await.unwrap();
    let event = &api::auth::events::USER_REGISTERED;
    let durable = events::names::durable_name("user", event).unwrap();
    let redrive = events::names::redrive_subject(event.domain, &durable).unwrap();
    let endpoint = events::names::redrive_endpoint_subject("user");
    let delete = format!(
        "$JS.API.STREAM.MSG.DELETE.{}",
        events::names::DEAD_LETTER_STREAM
    );
    let user = server.connect_as("user").await;
    assert!(
        may_publish(&server, &user, &redrive).await,
        "user could not put its own letter back: {:#?}",
        server.violations()
    );
    let gateway = server.connect_as("gateway").await;
    assert!(
        may_publish(&server, &gateway, &endpoint).await,
        "the gateway could not ask user to redrive: {:#?}",
        server.violations()
    );
    // notification consumes the same event, but its durable is another.
    for other in ["notification", "address", "gateway"] {
        let client = server.connect_as(other).await;
        assert!(
            refused(&server, &client, &redrive).await,
            "{other} put an event on user's durable"
        );
    }
    for other in ["notification", "address", "product"] {
        let client = server.connect_as(other).await;
        assert!(
            refused(&server, &client, &endpoint).await,
            "{other} asked user to redrive"
        );
    }
    assert!(
        refused(&server, &gateway, &delete).await,
        "the gateway deleted a dead letter"
    );
}
