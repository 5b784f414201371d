use std::time::Duration;

use futures::StreamExt as _;
use testkit::NatsServer;

#[tokio::test]
async fn a_message_published_reaches_a_subscriber() {
    let server = NatsServer::start().await.unwrap();
    let client = server.connect().await;
    let mut subscriber = client.subscribe("testkit.roundtrip").await.unwrap();
    client
        .publish("testkit.roundtrip", "hello".into())
        .await
        .unwrap();
    client.flush().await.unwrap();

    let message = tokio::time::timeout(Duration::from_secs(5), subscriber.next())
        .await
        .expect("the message arrives")
        .expect("the subscription is open");
    assert_eq!(&message.payload[..], b"hello");
}

#[tokio::test]
async fn jetstream_is_enabled() {
    let server = NatsServer::start().await.unwrap();
    let jetstream = async_nats::jetstream::new(server.connect().await);
    let stream = jetstream
        .create_stream(async_nats::jetstream::stream::Config {
            name: "TESTKIT".into(),
            subjects: vec!["testkit.events.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let ack = jetstream
        .publish("testkit.events.one", "event".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(ack.stream, "TESTKIT");
    assert_eq!(
        stream.get_raw_message(ack.sequence).await.unwrap().payload,
        "event"
    );
}

#[tokio::test]
async fn two_servers_are_independent() {
    let first = NatsServer::start().await.unwrap();
    let second = NatsServer::start().await.unwrap();
    assert_ne!(first.url(), second.url());

    let first_client = first.connect().await;
    let second_client = second.connect().await;
    let mut on_second = second_client.subscribe("testkit.private").await.unwrap();
    second_client.flush().await.unwrap();
    first_client
        .publish("testkit.private", "only first".into())
        .await
        .unwrap();
    first_client.flush().await.unwrap();

    let nothing = tokio::time::timeout(Duration::from_millis(300), on_second.next()).await;
    assert!(
        nothing.is_err(),
        "a message crossed from one server to another"
    );
}

#[tokio::test]
async fn a_stopped_server_is_unreachable_and_a_restarted_one_keeps_its_streams() {
    let mut server = NatsServer::start().await.unwrap();
    let jetstream = async_nats::jetstream::new(server.connect().await);
    jetstream
        .create_stream(async_nats::jetstream::stream::Config {
            name: "KEPT".into(),
            subjects: vec!["kept.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();

    server.stop();
    let refused = tokio::time::timeout(Duration::from_secs(5), async_nats::connect(server.url()))
        .await
        .expect("connecting to a stopped server fails fast");
    assert!(refused.is_err(), "a stopped server accepted a connection");

    server.restart().await.unwrap();
    let jetstream = async_nats::jetstream::new(server.connect().await);
    let mut stream = jetstream.get_stream("KEPT").await.unwrap();
    assert_eq!(stream.info().await.unwrap().config.subjects, vec!["kept.>"]);
}

#[tokio::test]
async fn a_dropped_server_is_gone() {
    let server = NatsServer::start().await.unwrap();
    let url = server.url().to_owned();
    drop(server);
    assert!(async_nats::connect(url.as_str()).await.is_err());
}
