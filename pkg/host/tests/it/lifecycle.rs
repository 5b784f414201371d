use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use testkit::NatsServer;
use tokio::sync::oneshot;

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_until_the_signal_then_stops_tasks_before_the_shutdown_hooks() {
    telemetry::init_for_tests();
    let server = NatsServer::start().await.expect("starting nats-server");
    let nats = server.connect().await;
    let steps = Arc::new(Mutex::new(Vec::<&'static str>::new()));

    let task_steps = steps.clone();
    let hook_steps = steps.clone();
    let running = host::Host::new("sample", nats.clone())
        .check(telemetry::admin::check_fn("always", || async { Ok(()) }))
        .background("ticker", move |cancel| {
            tokio::spawn(async move {
                cancel.cancelled().await;
                task_steps.lock().unwrap().push("background task stopped");
            })
        })
        .on_shutdown(async move {
            hook_steps.lock().unwrap().push("shutdown hook ran");
        })
        .start(rpc::Service::new("sample", "0.1.0"), any_port())
        .await
        .expect("starting the host");
    let admin = running.admin_addr();
    assert_ne!(admin.port(), 0, "the admin port is the bound one");

    let ready = reqwest::get(format!("http://{admin}/health/ready"))
        .await
        .expect("asking for readiness");
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["nats"], "ok", "{body}");
    assert_eq!(body["checks"]["always"], "ok", "{body}");
    assert!(
        steps.lock().unwrap().is_empty(),
        "nothing stops before the signal"
    );

    let (signal, signalled) = oneshot::channel::<()>();
    let run = tokio::spawn(running.run_until(async move {
        let _ = signalled.await;
    }));
    signal.send(()).unwrap();
    run.await.unwrap().expect("a clean shutdown");

    assert_eq!(
        *steps.lock().unwrap(),
        ["background task stopped", "shutdown hook ran"]
    );
    assert!(
        reqwest::get(format!("http://{admin}/health/live"))
            .await
            .is_err(),
        "the admin port is closed after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_port_must_be_free() {
    telemetry::init_for_tests();
    let server = NatsServer::start().await.expect("starting nats-server");
    let taken = tokio::net::TcpListener::bind(any_port()).await.unwrap();
    let error = match host::Host::new("sample", server.connect().await)
        .start(
            rpc::Service::new("sample", "0.1.0"),
            taken.local_addr().unwrap(),
        )
        .await
    {
        Ok(_) => panic!("started on a port that is taken"),
        Err(error) => error,
    };
    assert!(format!("{error:#}").contains("admin port"), "{error:#}");
}
