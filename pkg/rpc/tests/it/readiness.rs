//! An endpoint that stops serving while its service runs takes the replica out of service:
//! the readiness the admin port reports fails and names it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rpc::{Context, Limits, Service};
use telemetry::admin::AdminServer;

use crate::support::*;

async fn readiness(url: &str) -> (u16, serde_json::Value) {
    let response = reqwest::get(url).await.expect("the admin port answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_loop_that_ends_while_serving_fails_readiness() {
    let nats = testkit::NatsServer::start().await.expect("nats-server");
    // The admin server knows nothing of the service: the runtime registers its own check.
    let admin = AdminServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), Vec::new())
        .await
        .unwrap();
    let url = format!(
        "http://{}{}",
        admin.local_addr(),
        telemetry::admin::READY_PATH
    );
    let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();
    let admin = tokio::spawn(admin.run_until(async {
        let _ = admin_stopped.await;
    }));

    // Named apart from the other tests' services, which register checks of their own.
    let client = nats.connect().await;
    let _fragile = Service::new("fragile", "1.0.0")
        .endpoints(endpoints(Arc::new(Gauge::default())))
        .start(client.clone())
        .await
        .unwrap();
    let steady_client = nats.connect().await;
    let steady = Service::new("steady", "1.0.0")
        .endpoints(endpoints(Arc::new(Gauge::default())))
        .limits(Limits::default())
        .start(steady_client.clone())
        .await
        .unwrap();
    let (_, body) = readiness(&url).await;
    assert_eq!(body["checks"]["rpc.fragile"], "ok", "{body}");
    assert_eq!(body["checks"]["rpc.steady"], "ok", "{body}");

    // A service shut down on purpose leaves readiness alone.
    steady.shutdown().await.unwrap();
    let (_, body) = readiness(&url).await;
    assert!(body["checks"].get("rpc.steady").is_none(), "{body}");

    // The connection is drained under the running service: its subscriptions end, and with
    // them its endpoint loops.
    client.drain().await.unwrap();
    let body = loop {
        let (status, body) = readiness(&url).await;
        if status == 503 && body["checks"]["rpc.fragile"] != "ok" {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let reason = body["checks"]["rpc.fragile"].as_str().unwrap();
    assert!(
        reason.starts_with("error: endpoint loops ended: "),
        "{reason}"
    );
    assert!(reason.contains(SAY.subject), "{reason}");
    assert_eq!(body["status"], "unavailable");

    // Nobody answers on that connection any more; another replica would.
    let rpc = rpc::Client::new(nats.connect().await).with_default_timeout(Duration::from_secs(5));
    let error = rpc
        .call::<Say>(&Context::background(), &echo("anyone?"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), rpc::ErrorCode::Unavailable);

    let _ = stop_admin.send(());
    admin.await.unwrap().unwrap();
}

/// The readiness `reporting` puts in its `$SRV.STATS` answer (the first endpoint's data).
async fn reported(client: &async_nats::Client) -> serde_json::Value {
    let reply = client
        .request("$SRV.STATS.reporting", "".into())
        .await
        .expect("a STATS answer");
    let stats: serde_json::Value = serde_json::from_slice(&reply.payload).expect("JSON stats");
    stats["endpoints"][0]["data"]["readiness"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoints_stats_carry_the_readiness_the_admin_port_last_said() {
    let nats = testkit::NatsServer::start().await.expect("nats-server");
    let database_down = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let down = database_down.clone();
    let check = telemetry::admin::check_fn("database", move || {
        let down = down.clone();
        async move {
            if down.load(std::sync::atomic::Ordering::SeqCst) {
                Err("connection refused".to_owned())
            } else {
                Ok(())
            }
        }
    });
    let admin = AdminServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), vec![check])
        .await
        .unwrap();
    let last = admin.last_readiness();
    let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();
    let admin = tokio::spawn(admin.run_until(async {
        let _ = admin_stopped.await;
    }));
    let client = nats.connect().await;
    let service = Service::new("reporting", "1.0.0")
        .endpoints(endpoints(Arc::new(Gauge::default())))
        .readiness(last)
        .start(client.clone())
        .await
        .unwrap();

    // The admin server evaluates on its own: nobody probes it here.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while reported(&client).await != "unavailable" {
        assert!(std::time::Instant::now() < deadline, "never unavailable");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The database comes back; within the refresh period (and once other tests' failing
    // checks, which every admin server of this process counts, are gone) it says ok.
    database_down.store(false, std::sync::atomic::Ordering::SeqCst);
    let deadline = std::time::Instant::now()
        + telemetry::admin::READINESS_REFRESH * 2
        + Duration::from_secs(10);
    while reported(&client).await != "ok" {
        assert!(std::time::Instant::now() < deadline, "never ok again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    service.shutdown().await.unwrap();
    let _ = stop_admin.send(());
    admin.await.unwrap().unwrap();
}
