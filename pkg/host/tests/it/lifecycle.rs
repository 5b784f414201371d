use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use clap::Parser as _;
use testkit::NatsServer;
use tokio::sync::oneshot;

static SAMPLE: rpc::ServiceDescriptor = rpc::ServiceDescriptor {
    name: "sample",
    version: "0.1.0",
    description: "A service with nothing to serve.",
};

#[derive(clap::Parser)]
struct Args {
    #[command(flatten)]
    service: config::ServiceArgs,
}

/// Service arguments with the admin port at `admin_addr`.
fn service_args(admin_addr: SocketAddr) -> config::ServiceArgs {
    let mut args = Args::try_parse_from(["sample"]).unwrap().service;
    args.admin_addr = Some(admin_addr);
    args
}

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
    let mut host = host::Host::with_connection(&SAMPLE, nats.clone(), &service_args(any_port()));
    host.check(telemetry::admin::check_fn("always", || async { Ok(()) }));
    host.background("ticker", move |cancel| {
        tokio::spawn(async move {
            cancel.cancelled().await;
            task_steps.lock().unwrap().push("background task stopped");
        })
    });
    host.on_shutdown(async move {
        hook_steps.lock().unwrap().push("shutdown hook ran");
    });
    let running = host.serve(Vec::new()).await.expect("starting the host");
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
    let host = host::Host::with_connection(
        &SAMPLE,
        server.connect().await,
        &service_args(taken.local_addr().unwrap()),
    );
    let error = match host.serve(Vec::new()).await {
        Ok(_) => panic!("started on a port that is taken"),
        Err(error) => error,
    };
    assert!(format!("{error:#}").contains("admin port"), "{error:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_exist_when_serving_starts_and_stop_with_the_service() {
    telemetry::init_for_tests();
    let server = NatsServer::start().await.expect("starting nats-server");
    let nats = server.connect().await;
    let mut host = host::Host::with_connection(&SAMPLE, nats.clone(), &service_args(any_port()));
    host.consumer(events::Consumer::new(
        events::ConsumerConfig::new("sample"),
        |_delivery: events::Delivery<api::product::ProductUpdated>| async { events::Outcome::Done },
    ));
    let serving = host.serve(Vec::new()).await.expect("starting the host");

    let event = &api::product::events::PRODUCT_UPDATED;
    let jetstream = async_nats::jetstream::new(nats);
    let stream = jetstream
        .get_stream(events::names::stream_of(event))
        .await
        .expect("the consumer's stream was declared");
    let durable = events::names::durable_name("sample", event).unwrap();
    stream
        .consumer_info(&durable)
        .await
        .expect("the durable exists before the first request");

    let run = tokio::spawn(serving.run_until(async {}));
    tokio::time::timeout(std::time::Duration::from_secs(20), run)
        .await
        .expect("the consumer stops with the service")
        .unwrap()
        .expect("a clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_cannot_start_stops_the_start() {
    telemetry::init_for_tests();
    let server = NatsServer::start().await.expect("starting nats-server");
    let mut host =
        host::Host::with_connection(&SAMPLE, server.connect().await, &service_args(any_port()));
    host.consumer(events::Consumer::new(
        events::ConsumerConfig {
            // Fewer deliveries than backoff steps is a configuration the runtime refuses.
            max_deliver: 1,
            ..events::ConsumerConfig::new("sample")
        },
        |_delivery: events::Delivery<api::product::ProductUpdated>| async { events::Outcome::Done },
    ));
    let error = match host.serve(Vec::new()).await {
        Ok(_) => panic!("served with a consumer that could not start"),
        Err(error) => error,
    };
    assert!(
        format!("{error:#}").contains("sample consumer of product.updated"),
        "{error:#}"
    );
}
