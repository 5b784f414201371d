use bytes::Bytes;
use rpc::Context;

use crate::support::*;

#[tokio::test]
async fn srv_ping_info_and_stats_describe_the_service() {
    let (service, _running) = TestService::start().await;
    let ping = service
        .client
        .request("$SRV.PING.echo", Bytes::new())
        .await
        .unwrap();
    let ping: serde_json::Value = serde_json::from_slice(&ping.payload).unwrap();
    assert_eq!(ping["name"], "echo");
    assert_eq!(ping["version"], "1.2.3");

    let info = service
        .client
        .request("$SRV.INFO.echo", Bytes::new())
        .await
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&info.payload).unwrap();
    assert_eq!(info["description"], "echoes what it is sent");
    let subjects: Vec<&str> = info["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    for expected in [SAY.subject, PANIC.subject, SLOW.subject, ADMIN.subject] {
        assert!(subjects.contains(&expected), "{subjects:?}");
    }

    let _: Echo = service
        .rpc
        .call::<Say>(&Context::background(), &echo("count me"))
        .await
        .unwrap();
    let _ = service
        .rpc
        .call::<Panic>(&Context::background(), &echo("boom"))
        .await;
    let stats = service
        .client
        .request("$SRV.STATS.echo", Bytes::new())
        .await
        .unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&stats.payload).unwrap();
    let endpoint = |name: &str| {
        stats["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(endpoint("say")["num_requests"], 1);
    assert_eq!(
        endpoint("panic")["data"]["errors"],
        1,
        "errors are reported in the endpoint data"
    );
}
