//! Durable timers, signals and aborts.

use std::time::Duration;

use saga::{ListFilter, Phase, State, StepOutcome};

use crate::*;

const HOUR: Duration = Duration::from_secs(3600);

fn payment_saga(script: &Arc<Script>) -> saga::Definition<Toy> {
    toy(
        "payment",
        &[("a", true), ("pay", true), ("c", false)],
        script,
    )
}

#[tokio::test]
async fn a_wait_ends_on_its_signal_also_after_a_restart() {
    let env = TestEnv::start().await;
    let script = Script::new();
    script.then("pay", [Behaviour::Wait(HOUR, Some("paid"))]);
    let first = env.orchestrator(config(), vec![payment_saga(&script)]);
    let runner = Runner::start(&first);
    let id = env.start_saga(&first, "payment").await;
    let waiting = reaches(&first, id, State::Waiting).await;
    assert_eq!(waiting.current_step.as_deref(), Some("pay"));
    // A signal of another name changes nothing.
    first
        .signal(id, "refunded", serde_json::json!({}))
        .await
        .unwrap();
    runner.stop().await;
    drop(first);

    // A fresh orchestrator, as after a restart of the service.
    let second = env.orchestrator(config(), vec![payment_saga(&script)]);
    let runner = Runner::start(&second);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        second.get(id).await.unwrap().unwrap().summary.state,
        State::Waiting
    );
    second
        .signal(
            id,
            "paid",
            serde_json::json!({ "amount_minor_units": 1250 }),
        )
        .await
        .unwrap();
    let summary = finished(&second, id).await;
    assert_eq!(summary.state, State::Completed);

    let pays = script.calls_of(id, "pay");
    assert_eq!(pays.len(), 2);
    assert_eq!(pays[0].signal, None);
    assert_eq!(
        pays[1].signal,
        Some(serde_json::json!({ "amount_minor_units": 1250 }))
    );
    assert!(!pays[1].woken_by_deadline);
    assert_eq!(
        pays[1].attempt, 1,
        "a wait is progress, not a failed attempt"
    );
    assert_eq!(script.labels(id), strings(&["a", "pay", "pay", "c"]));
    let detail = second.get(id).await.unwrap().unwrap();
    let pay = detail.steps.iter().find(|step| step.step == "pay").unwrap();
    assert_eq!((pay.attempts, pay.outcome), (2, StepOutcome::Done));
    let consumed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM saga_signals WHERE instance_id = $1 AND consumed_at IS NOT NULL",
    )
    .bind(id)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(consumed, 1, "only the signal waited for is consumed");
    runner.stop().await;
}

#[tokio::test]
async fn a_wait_ends_at_its_deadline_also_after_a_restart() {
    let env = TestEnv::start().await;
    let script = Script::new();
    script.then(
        "pay",
        [Behaviour::Wait(Duration::from_millis(1500), Some("paid"))],
    );
    let first = env.orchestrator(config(), vec![payment_saga(&script)]);
    let runner = Runner::start(&first);
    let id = env.start_saga(&first, "payment").await;
    reaches(&first, id, State::Waiting).await;
    runner.stop().await;
    drop(first);

    let second = env.orchestrator(config(), vec![payment_saga(&script)]);
    let runner = Runner::start(&second);
    let summary = finished(&second, id).await;
    assert_eq!(summary.state, State::Completed);
    let pays = script.calls_of(id, "pay");
    assert_eq!(pays.len(), 2);
    assert!(pays[1].woken_by_deadline);
    assert_eq!(pays[1].signal, None);
    runner.stop().await;
}

#[tokio::test]
async fn a_signal_that_comes_before_the_wait_ends_it_at_once() {
    let env = TestEnv::start().await;
    let script = Script::new();
    script.then("a", [Behaviour::Sleep(Duration::from_millis(300))]);
    script.then("pay", [Behaviour::Wait(HOUR, Some("paid"))]);
    let orchestrator = env.orchestrator(config(), vec![payment_saga(&script)]);
    let runner = Runner::start(&orchestrator);
    let id = env.start_saga(&orchestrator, "payment").await;
    orchestrator
        .signal(id, "paid", serde_json::json!("early"))
        .await
        .unwrap();

    let summary = finished(&orchestrator, id).await;
    assert_eq!(summary.state, State::Completed);
    assert_eq!(
        script.calls_of(id, "pay")[1].signal,
        Some(serde_json::json!("early"))
    );
    runner.stop().await;
}

#[tokio::test]
async fn aborting_a_waiting_instance_compensates_it() {
    let env = TestEnv::start().await;
    let script = Script::new();
    script.then("pay", [Behaviour::Wait(HOUR, Some("paid"))]);
    let orchestrator = env.orchestrator(config(), vec![payment_saga(&script)]);
    let runner = Runner::start(&orchestrator);
    let id = env.start_saga(&orchestrator, "payment").await;
    reaches(&orchestrator, id, State::Waiting).await;

    let aborted = orchestrator.abort(id, "customer cancelled").await.unwrap();
    assert!(
        matches!(aborted.state, State::Compensating | State::Compensated),
        "a waiting instance turns at once: {aborted:?}"
    );
    assert_eq!(aborted.refusal_code.as_deref(), Some(saga::ABORTED));
    let summary = finished(&orchestrator, id).await;
    assert_eq!(summary.state, State::Compensated);
    assert_eq!(
        summary.refusal_detail,
        Some(serde_json::json!({ "reason": "customer cancelled" }))
    );
    assert_eq!(
        script.labels(id),
        strings(&["a", "pay", "pay:compensate", "a:compensate"]),
        "the waiting step had started, so it is compensated too"
    );
    assert_eq!(
        script.calls_of(id, "a:compensate")[0].refusal.as_deref(),
        Some("aborted")
    );
    assert!(matches!(
        orchestrator.abort(id, "again").await,
        Err(saga::Error::IllegalState(_))
    ));
    assert!(matches!(
        orchestrator.signal(id, "paid", serde_json::json!({})).await,
        Err(saga::Error::IllegalState(_))
    ));
    assert!(matches!(
        orchestrator.abort(uuid::Uuid::now_v7(), "nobody").await,
        Err(saga::Error::NotFound)
    ));
    let compensated = orchestrator
        .list(&ListFilter {
            state: Some(State::Compensated),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(compensated.items.len(), 1);
    runner.stop().await;
}

#[tokio::test]
async fn aborting_an_instance_with_a_step_in_flight_turns_it_when_the_step_is_recorded() {
    let env = TestEnv::start().await;
    let script = Script::new();
    script.then("pay", [Behaviour::Sleep(Duration::from_millis(500))]);
    let orchestrator = env.orchestrator(config(), vec![payment_saga(&script)]);
    let runner = Runner::start(&orchestrator);
    let id = env.start_saga(&orchestrator, "payment").await;
    eventually("pay starts", || !script.calls_of(id, "pay").is_empty()).await;

    let aborted = orchestrator.abort(id, "operator").await.unwrap();
    assert_eq!(
        aborted.state,
        State::Running,
        "the step in flight finishes first"
    );
    let summary = finished(&orchestrator, id).await;
    assert_eq!(summary.state, State::Compensated);
    assert_eq!(summary.refusal_code.as_deref(), Some("aborted"));
    assert_eq!(
        script.labels(id),
        strings(&["a", "pay", "pay:compensate", "a:compensate"]),
        "pay finished, c never ran"
    );
    let detail = orchestrator.get(id).await.unwrap().unwrap();
    assert!(
        detail
            .steps
            .iter()
            .all(|step| step.phase == Phase::Action || step.outcome == StepOutcome::Done)
    );
    runner.stop().await;
}
