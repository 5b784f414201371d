//! Several replicas on one database: leases, takeover, no step run twice at once.

use std::collections::HashSet;
use std::time::Duration;

use saga::State;

use crate::*;

fn short_lease() -> saga::Config {
    saga::Config {
        lease: Duration::from_secs(1),
        ..config()
    }
}

#[tokio::test]
async fn a_dead_replicas_instance_is_taken_over_once_its_lease_expires() {
    let env = TestEnv::start().await;
    let steps = [("a", true), ("b", true), ("c", true)];

    // Replica A runs in a runtime of its own, which the test kills mid-step, as a crash
    // would: no lease is handed back, no outcome recorded.
    let script_a = Script::new();
    script_a.always("b", Behaviour::Block);
    let replica_a = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (created_tx, created_rx) = tokio::sync::oneshot::channel();
    {
        let url = env.database.url().to_owned();
        let script = script_a.clone();
        replica_a.spawn(async move {
            let pool = PgPool::connect(&url).await.unwrap();
            let mut orchestrator = saga::Orchestrator::new(pool.clone(), short_lease());
            orchestrator.register(toy("checkout", &steps, &script));
            let id = uuid::Uuid::now_v7();
            let mut tx = pool.begin().await.unwrap();
            orchestrator
                .create(
                    &mut tx,
                    "checkout",
                    id,
                    &Toy::default(),
                    &TraceHeaders::default(),
                )
                .await
                .unwrap();
            tx.commit().await.unwrap();
            orchestrator.drive(id);
            created_tx.send(id).unwrap();
            orchestrator.run(CancellationToken::new()).await
        });
    }
    let id = created_rx.await.unwrap();
    eventually("A runs b", || !script_a.calls_of(id, "b").is_empty()).await;
    replica_a.shutdown_background();
    let died = Instant::now();

    let script_b = Script::new();
    let replica_b = env.orchestrator(short_lease(), vec![toy("checkout", &steps, &script_b)]);
    let runner = Runner::start(&replica_b);
    let summary = finished(&replica_b, id).await;
    assert_eq!(summary.state, State::Completed);
    assert!(
        died.elapsed() < Duration::from_secs(5),
        "taken over within lease + poll interval (and some slack): {:?}",
        died.elapsed()
    );
    assert_eq!(script_a.labels(id), strings(&["a", "b"]));
    assert_eq!(
        script_b.labels(id),
        strings(&["b", "c"]),
        "B resumed where A's last commit left it"
    );
    let b_keys: HashSet<String> = script_a
        .calls_of(id, "b")
        .into_iter()
        .chain(script_b.calls_of(id, "b"))
        .map(|call| call.key)
        .collect();
    assert_eq!(
        b_keys,
        HashSet::from([format!("{id}:b")]),
        "one effect: one idempotency key"
    );
    let detail = replica_b.get(id).await.unwrap().unwrap();
    let b = detail.steps.iter().find(|step| step.step == "b").unwrap();
    assert_eq!(b.attempts, 2, "the attempt cut short by the crash counts");
    runner.stop().await;
}

#[tokio::test]
async fn two_replicas_never_run_a_step_twice_at_once_and_finish_every_instance() {
    let env = TestEnv::start().await;
    let script = Script::new();
    let steps = [("a", true), ("b", true), ("c", false)];
    for label in ["a", "b", "c"] {
        script.always(label, Behaviour::Sleep(Duration::from_millis(15)));
    }
    let one = env.orchestrator(short_lease(), vec![toy("checkout", &steps, &script)]);
    let two = env.orchestrator(short_lease(), vec![toy("checkout", &steps, &script)]);
    let runners = [Runner::start(&one), Runner::start(&two)];

    let mut ids = Vec::new();
    for index in 0..50 {
        let creator = if index % 2 == 0 { &one } else { &two };
        let id = env.create(creator, "checkout").await;
        // Both try to drive every instance; only the holder of the lease may.
        one.drive(id);
        two.drive(id);
        ids.push(id);
    }
    for &id in &ids {
        // Waiting on the replica that did not create it too: it sees the other finish.
        let summary = finished(&one, id).await;
        assert_eq!(summary.state, State::Completed, "{summary:?}");
    }
    assert_eq!(script.overlaps(), 0, "a step ran twice at the same time");
    for &id in &ids {
        assert_eq!(
            script.labels(id),
            strings(&["a", "b", "c"]),
            "instance {id}"
        );
    }
    for runner in runners {
        runner.stop().await;
    }
    let held: i64 =
        sqlx::query_scalar("SELECT count(*) FROM saga_instances WHERE lease_owner IS NOT NULL")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(held, 0, "no lease is left behind");
}
