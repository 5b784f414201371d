//! Crash recovery: the order service runs as a real process, is killed with SIGKILL right
//! after each step of the checkout saga commits (and after each compensation), and a fresh
//! process finishes every saga: the order is paid with exactly one capture, or failed with
//! everything given back, and no stock stays held. A second replica takes over a dead one's
//! sagas once its lease expires.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::helpers::{Customer, TestApp, VISA_DECLINED, VISA_OK};

/// The lease of the processes here: a dead one's sagas are taken over this long after.
const LEASE_MS: &str = "1000";

/// An order-service process on the test's servers.
struct OrderProcess {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
}

impl OrderProcess {
    /// Starts the binary with the test service's configuration; with `hold_after`, it stops
    /// driving a saga right after that step commits and says so on stderr.
    async fn start(app: &TestApp, hold_after: Option<&str>) -> Self {
        let config = &app.config;
        let nats = &config.service.nats;
        let mut command = Command::new(env!("CARGO_BIN_EXE_order-service"));
        command
            .arg("--nats-url")
            .arg(&nats.nats_url)
            .arg("--database-url")
            .arg(config.postgres.database_url.as_deref().expect("a database"))
            .arg("--admin-addr")
            .arg("127.0.0.1:0")
            .arg("--shipping-rates")
            .arg(&config.shipping_rates)
            .arg("--tax-rates")
            .arg(&config.tax_rates)
            .args(["--saga-poll-ms", "50", "--saga-lease-ms", LEASE_MS])
            .args(["--checkout-wait-ms", "200"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(seed) = &nats.nats_nkey_file {
            command.arg("--nats-nkey-file").arg(seed);
        }
        if let Some(step) = hold_after {
            command.arg("--saga-hold-after").arg(step);
        }
        let mut child = command.spawn().expect("starting order-service");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let _ = tx.send(line);
            }
        });
        testkit::wait_until_answering(&app.nats, "order").await;
        Self { child, lines }
    }

    /// Waits for the line saying the saga holds after its step; fails after 20 s.
    async fn held(&mut self, step: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining, self.lines.recv()).await {
                Ok(Some(line)) if line.contains("holding after") => {
                    assert!(line.ends_with(step), "held at the wrong step: {line}");
                    return;
                }
                Ok(Some(_)) => {}
                Ok(None) => panic!("order-service exited before holding after {step}"),
                Err(_) => panic!("order-service did not hold after {step} within 20 s"),
            }
        }
    }

    /// SIGKILL: no shutdown, no lease handed back.
    async fn kill(mut self) {
        self.child.start_kill().expect("killing order-service");
        self.child.wait().await.expect("reaping order-service");
    }
}

/// The order once its saga ended, asking until a process answers (one may be starting while
/// another was just killed); fails after 20 s.
async fn settled(app: &TestApp, customer: &Customer, id: &str) -> api::order::Order {
    let started = Instant::now();
    loop {
        match app.get_order(&customer.ctx, id).await {
            Ok(order) if order.status != "pending" => return order,
            Ok(_) => {}
            Err(error) if error.code() == rpc::ErrorCode::Unavailable => {}
            Err(error) => panic!("reading order {id}: {error}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "order {id} never settled"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Starts a checkout through whichever order process answers, and returns its order id
/// (the saga may still be running: the answer is then 202).
async fn start_checkout(app: &TestApp, customer: &Customer, key: &str) -> String {
    let answer = app
        .checkout_with(customer, &app.checkout_request(customer, key))
        .await
        .expect("checking out");
    answer.order.expect("the order").id
}

const ACTIONS: [&str; 12] = [
    "open",
    "snapshot_address",
    "price_cart",
    "record_order",
    "reserve_stock",
    "reserve_voucher",
    "authorize_payment",
    "commit_voucher",
    "commit_stock",
    "capture_payment",
    "mark_paid",
    "clear_cart",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_killed_after_any_step_is_finished_by_the_next_process() {
    let mut app = TestApp::spawn().await;
    // The service under test runs as processes from here on.
    app.order.stop_service().await;
    let seller = app.seller().await;
    let lamp = app.product(&seller, "Lamp", 2500, 100).await;
    let mut sold = 0;
    for (i, step) in ACTIONS.iter().enumerate() {
        let customer = app.customer().await;
        app.add_to_cart(&customer, &lamp, 2).await;
        let code = format!("CRASH{i}");
        app.voucher(&code, 100, 1).await;
        app.apply_voucher(&customer, &code).await;

        let mut doomed = OrderProcess::start(&app, Some(&format!("checkout:{step}"))).await;
        let order_id = start_checkout(&app, &customer, &format!("crash-{step}")).await;
        doomed.held(step).await;
        doomed.kill().await;
        let survivor = OrderProcess::start(&app, None).await;
        let order = settled(&app, &customer, &order_id).await;
        survivor.kill().await;

        assert_eq!(
            order.status, "paid",
            "killed after {step}: {:?}",
            order.failure
        );
        sold += 2;
        assert_eq!(
            app.provider_calls(&order_id, "capture").await,
            1,
            "killed after {step}: one capture"
        );
        assert_eq!(app.provider_calls(&order_id, "authorize").await, 1);
        let lamps = app.availability(&lamp).await;
        assert_eq!(
            (lamps.stock, lamps.reserved),
            (100 - sold, 0),
            "killed after {step}: stock sold once, none held"
        );
        assert_eq!(app.voucher_state(&code).await.used_count, 1, "after {step}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_killed_while_compensating_still_gives_everything_back() {
    let mut app = TestApp::spawn().await;
    app.order.stop_service().await;
    let seller = app.seller().await;
    let lamp = app.product(&seller, "Lamp", 2500, 50).await;
    for (i, step) in ["reserve_voucher", "reserve_stock", "open"]
        .iter()
        .enumerate()
    {
        let customer = app.customer_with(VISA_DECLINED, "US").await;
        app.add_to_cart(&customer, &lamp, 3).await;
        let code = format!("UNDO{i}");
        app.voucher(&code, 100, 1).await;
        app.apply_voucher(&customer, &code).await;

        let hold = format!("checkout:{step}:compensate");
        let mut doomed = OrderProcess::start(&app, Some(&hold)).await;
        let order_id = start_checkout(&app, &customer, &format!("undo-{step}")).await;
        doomed.held(step).await;
        doomed.kill().await;
        let survivor = OrderProcess::start(&app, None).await;
        let order = settled(&app, &customer, &order_id).await;
        survivor.kill().await;

        assert_eq!(order.status, "failed", "killed compensating {step}");
        assert_eq!(order.failure.as_ref().unwrap().code, "payment_declined");
        assert_eq!(app.provider_calls(&order_id, "capture").await, 0);
        let lamps = app.availability(&lamp).await;
        assert_eq!((lamps.stock, lamps.reserved), (50, 0), "after {step}");
        assert_eq!(app.voucher_state(&code).await.used_count, 0);
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_replica_takes_over_a_dead_ones_sagas_once_its_lease_expires() {
    let mut app = TestApp::spawn().await;
    app.order.stop_service().await;
    let seller = app.seller().await;
    let lamp = app.product(&seller, "Lamp", 2500, 10).await;
    let customer = app.customer_with(VISA_OK, "US").await;
    app.add_to_cart(&customer, &lamp, 1).await;

    let mut first = OrderProcess::start(&app, Some("checkout:authorize_payment")).await;
    let order_id = start_checkout(&app, &customer, "takeover").await;
    first.held("authorize_payment").await;
    // The second replica is up and polling before the first dies: it takes the saga over
    // from its runner, not from a start-up.
    let second = OrderProcess::start(&app, None).await;
    let killed = Instant::now();
    first.kill().await;
    let order = settled(&app, &customer, &order_id).await;
    let took = killed.elapsed();
    second.kill().await;

    assert_eq!(order.status, "paid");
    assert_eq!(app.provider_calls(&order_id, "capture").await, 1);
    assert!(took < Duration::from_secs(10), "taken over after {took:?}");
    app.stop().await;
}
