//! Forward runs, refusals, retries and compensations.

use saga::{Phase, State, StepOutcome};

use crate::*;

#[tokio::test]
async fn the_happy_path_runs_every_step_once_in_order() {
    let env = TestEnv::start().await;
    let script = Script::new();
    let orchestrator = env.orchestrator(
        config(),
        vec![toy(
            "checkout",
            &[("a", true), ("b", true), ("c", false)],
            &script,
        )],
    );
    let id = env.start_saga(&orchestrator, "checkout").await;

    let summary = finished(&orchestrator, id).await;
    assert_eq!(summary.state, State::Completed);
    assert_eq!(summary.current_step, None);
    assert!(summary.finished_at.is_some());
    assert_eq!(
        summary.lease_owner, None,
        "a finished instance holds no lease"
    );
    assert_eq!(script.labels(id), strings(&["a", "b", "c"]));
    let data: Toy = serde_json::from_value(summary.data).unwrap();
    assert_eq!(
        data.trail,
        strings(&["a", "b", "c"]),
        "each step got the data the one before left"
    );
    let keys: Vec<String> = script.calls().into_iter().map(|call| call.key).collect();
    assert_eq!(
        keys,
        vec![format!("{id}:a"), format!("{id}:b"), format!("{id}:c")]
    );

    let detail = orchestrator.get(id).await.unwrap().unwrap();
    let steps: Vec<(&str, Phase, StepOutcome, u32)> = detail
        .steps
        .iter()
        .map(|step| (step.step.as_str(), step.phase, step.outcome, step.attempts))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("a", Phase::Action, StepOutcome::Done, 1),
            ("b", Phase::Action, StepOutcome::Done, 1),
            ("c", Phase::Action, StepOutcome::Done, 1),
        ]
    );
    assert!(detail.steps.iter().all(|step| step.duration_ms.is_some()));
}

#[tokio::test]
async fn a_refusal_compensates_the_completed_steps_in_reverse_order_once() {
    let env = TestEnv::start().await;
    let script = Script::new();
    script.always("c", Behaviour::Refuse("out_of_stock"));
    let orchestrator = env.orchestrator(
        config(),
        vec![toy(
            "checkout",
            &[("a", true), ("b", true), ("c", true)],
            &script,
        )],
    );
    let id = env.start_saga(&orchestrator, "checkout").await;

    let summary = finished(&orchestrator, id).await;
    assert_eq!(summary.state, State::Compensated);
    assert_eq!(summary.refusal_code.as_deref(), Some("out_of_stock"));
    assert_eq!(
        summary.refusal_detail,
        Some(serde_json::json!({ "step": "c" }))
    );
    assert_eq!(
        script.labels(id),
        strings(&["a", "b", "c", "b:compensate", "a:compensate"]),
        "the refused step had no effect and is not compensated"
    );
    let compensations = script.calls_of(id, "b:compensate");
    assert_eq!(compensations[0].key, format!("{id}:b:compensate"));
    assert_eq!(compensations[0].refusal.as_deref(), Some("out_of_stock"));
    let data: Toy = serde_json::from_value(summary.data).unwrap();
    assert_eq!(
        data.trail,
        strings(&["a", "b", "b:compensate", "a:compensate"])
    );
}

#[tokio::test]
async fn steps_without_a_compensation_are_skipped_when_compensating() {
    let env = TestEnv::start().await;
    let script = Script::new();
    script.always("d", Behaviour::Refuse("declined"));
    let orchestrator = env.orchestrator(
        config(),
        vec![toy(
            "checkout",
            &[("a", true), ("b", false), ("c", true), ("d", false)],
            &script,
        )],
    );
    let id = env.start_saga(&orchestrator, "checkout").await;

    let summary = finished(&orchestrator, id).await;
    assert_eq!(summary.state, State::Compensated);
    assert_eq!(
        script.labels(id),
        strings(&["a", "b", "c", "d", "c:compensate", "a:compensate"])
    );
}

#[tokio::test]
async fn a_refusal_at_the_first_step_is_compensated_with_nothing_to_undo() {
    let env = TestEnv::start().await;
    let script = Script::new();
    script.always("a", Behaviour::Refuse("invalid"));
    let orchestrator = env.orchestrator(
        config(),
        vec![toy("checkout", &[("a", true), ("b", true)], &script)],
    );
    let id = env.start_saga(&orchestrator, "checkout").await;

    let summary = finished(&orchestrator, id).await;
    assert_eq!(summary.state, State::Compensated);
    assert_eq!(summary.refusal_code.as_deref(), Some("invalid"));
    assert_eq!(script.labels(id), strings(&["a"]));
}

#[tokio::test]
async fn transient_errors_are_retried_with_the_same_key_until_the_step_succeeds() {
    let env = TestEnv::start().await;
    let script = Script::new();
    script.then(
        "b",
        [
            Behaviour::Transient("timeout 1"),
            Behaviour::Transient("timeout 2"),
        ],
    );
    let orchestrator = env.orchestrator(
        config(),
        vec![toy("checkout", &[("a", true), ("b", true)], &script)],
    );
    let id = env.start_saga(&orchestrator, "checkout").await;

    let summary = finished(&orchestrator, id).await;
    assert_eq!(summary.state, State::Completed);
    let runs = script.calls_of(id, "b");
    assert_eq!(
        runs.iter().map(|call| call.attempt).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(runs.iter().all(|call| call.key == format!("{id}:b")));

    let detail = orchestrator.get(id).await.unwrap().unwrap();
    let b = detail.steps.iter().find(|step| step.step == "b").unwrap();
    assert_eq!(b.attempts, 3);
    assert_eq!(b.outcome, StepOutcome::Done);
    assert_eq!(
        b.last_error.as_deref(),
        Some("timeout 2"),
        "the last failure stays visible"
    );
}

#[tokio::test]
async fn exhausted_retries_compensate_with_retries_exhausted_including_the_uncertain_step() {
    let env = TestEnv::start().await;
    let script = Script::new();
    script.always("b", Behaviour::Transient("unavailable"));
    let orchestrator = env.orchestrator(
        config(),
        vec![
            toy(
                "checkout",
                &[("a", true), ("b", true), ("c", true)],
                &script,
            )
            .max_attempts("b", 4),
        ],
    );
    let id = env.start_saga(&orchestrator, "checkout").await;

    let summary = finished(&orchestrator, id).await;
    assert_eq!(summary.state, State::Compensated);
    assert_eq!(
        summary.refusal_code.as_deref(),
        Some(saga::RETRIES_EXHAUSTED)
    );
    assert_eq!(
        summary.refusal_detail,
        Some(serde_json::json!("unavailable"))
    );
    assert_eq!(
        script.labels(id),
        strings(&["a", "b", "b", "b", "b", "b:compensate", "a:compensate"]),
        "the step bound is 4, and b may have taken effect: it is compensated too"
    );
    let detail = orchestrator.get(id).await.unwrap().unwrap();
    let b = detail
        .steps
        .iter()
        .find(|step| step.step == "b" && step.phase == Phase::Action)
        .unwrap();
    assert_eq!((b.attempts, b.outcome), (4, StepOutcome::Exhausted));
    assert_eq!(b.last_error.as_deref(), Some("unavailable"));
}

#[tokio::test]
async fn a_failing_compensation_gets_stuck_and_an_operator_retry_finishes_it() {
    let env = TestEnv::start().await;
    let script = Script::new();
    script.always("c", Behaviour::Refuse("declined"));
    script.always("b:compensate", Behaviour::Transient("inventory down"));
    let orchestrator = env.orchestrator(
        config(),
        vec![toy(
            "checkout",
            &[("a", true), ("b", true), ("c", false)],
            &script,
        )],
    );
    let runner = Runner::start(&orchestrator);
    let id = env.start_saga(&orchestrator, "checkout").await;

    let stuck = reaches(&orchestrator, id, State::Stuck).await;
    assert_eq!(stuck.current_step.as_deref(), Some("b"));
    assert_eq!(stuck.last_error.as_deref(), Some("inventory down"));
    let listed = orchestrator
        .list(&saga::ListFilter {
            state: Some(State::Stuck),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        listed.items.iter().map(|item| item.id).collect::<Vec<_>>(),
        vec![id]
    );
    // Still retried while stuck.
    let tries = script.calls_of(id, "b:compensate").len();
    eventually("stuck compensations keep being retried", || {
        script.calls_of(id, "b:compensate").len() > tries
    })
    .await;
    assert!(
        script.calls_of(id, "a:compensate").is_empty(),
        "a waits for b"
    );

    assert!(matches!(
        orchestrator.abort(id, "give up").await,
        Err(saga::Error::IllegalState(_))
    ));
    // An operator's retry resets the attempts and makes it due at once (deterministic while
    // the fault lasts: the instance stays stuck until the retry).
    let retried = orchestrator.retry(id).await.unwrap();
    assert_eq!(
        (retried.state, retried.attempts),
        (State::Compensating, 0),
        "{retried:?}"
    );
    assert!(retried.last_error.is_none());
    // Once the fault is fixed, it finishes.
    script.heal("b:compensate");
    let summary = finished(&orchestrator, id).await;
    assert_eq!(summary.state, State::Compensated);
    assert_eq!(summary.refusal_code.as_deref(), Some("declined"));
    assert_eq!(script.calls_of(id, "a:compensate").len(), 1);
    assert!(matches!(
        orchestrator.retry(id).await,
        Err(saga::Error::IllegalState(_))
    ));
    runner.stop().await;
}

#[tokio::test]
async fn an_instance_whose_data_does_not_fit_fails_without_compensating() {
    let env = TestEnv::start().await;
    let script = Script::new();
    let orchestrator = env.orchestrator(config(), vec![toy("checkout", &[("a", true)], &script)]);
    let id = uuid::Uuid::now_v7();
    let mut tx = env.pool.begin().await.unwrap();
    orchestrator
        .create(
            &mut tx,
            "checkout",
            id,
            &serde_json::json!({ "trail": 7 }),
            &TraceHeaders::default(),
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    orchestrator.drive(id);

    let summary = finished(&orchestrator, id).await;
    assert_eq!(summary.state, State::Failed);
    assert!(summary.last_error.unwrap().contains("does not fit"));
    assert!(script.calls().is_empty());
    assert!(matches!(
        orchestrator
            .create(
                &mut env.pool.acquire().await.unwrap(),
                "refund",
                uuid::Uuid::now_v7(),
                &Toy::default(),
                &TraceHeaders::default(),
            )
            .await,
        Err(saga::Error::UnknownSaga(_))
    ));
}
