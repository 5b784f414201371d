use redis::AsyncCommands as _;
use testkit::RedisServer;

#[tokio::test]
async fn a_value_set_can_be_read_back() {
    let server = RedisServer::start().await.unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();

    let () = connection.set("testkit:greeting", "hello").await.unwrap();
    let value: String = connection.get("testkit:greeting").await.unwrap();
    assert_eq!(value, "hello");
}

#[tokio::test]
async fn two_servers_do_not_share_keys() {
    let first = RedisServer::start().await.unwrap();
    let second = RedisServer::start().await.unwrap();
    assert_ne!(first.url(), second.url());

    let mut on_first = redis::Client::open(first.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut on_second = redis::Client::open(second.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let () = on_first.set("testkit:owner", "first").await.unwrap();
    let value: Option<String> = on_second.get("testkit:owner").await.unwrap();
    assert_eq!(value, None);
}

#[tokio::test]
async fn a_dropped_server_refuses_connections() {
    let server = RedisServer::start().await.unwrap();
    let address = format!("127.0.0.1:{}", server.port());
    drop(server);
    assert!(tokio::net::TcpStream::connect(address).await.is_err());
}
