//! What operators see: listings and details.

use std::collections::HashSet;

use saga::{Error, ListFilter, State};

use crate::*;

#[tokio::test]
async fn list_filters_by_state_and_saga_and_pages_newest_first() {
    let env = TestEnv::start().await;
    let script = Script::new();
    script.always("refuse", Behaviour::Refuse("declined"));
    let orchestrator = env.orchestrator(
        config(),
        vec![
            toy("checkout", &[("a", false)], &script),
            toy("refund", &[("a", true), ("refuse", false)], &script),
        ],
    );
    let mut created = Vec::new();
    for index in 0..8 {
        let saga = if index < 5 { "checkout" } else { "refund" };
        created.push(env.start_saga(&orchestrator, saga).await);
    }
    for &id in &created {
        finished(&orchestrator, id).await;
    }

    let completed = orchestrator
        .list(&ListFilter {
            state: Some(State::Completed),
            ..Default::default()
        })
        .await
        .unwrap();
    let expected: Vec<_> = created[..5].iter().rev().copied().collect();
    assert_eq!(
        completed
            .items
            .iter()
            .map(|item| item.id)
            .collect::<Vec<_>>(),
        expected
    );
    assert_eq!(completed.next_cursor, None);

    let refunds = orchestrator
        .list(&ListFilter {
            saga: Some("refund".to_owned()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(refunds.items.len(), 3);
    assert!(
        refunds
            .items
            .iter()
            .all(|item| item.state == State::Compensated && item.saga == "refund")
    );
    let none = orchestrator
        .list(&ListFilter {
            saga: Some("refund".to_owned()),
            state: Some(State::Completed),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(none.items.is_empty());

    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = orchestrator
            .list(&ListFilter {
                cursor: cursor.clone(),
                limit: 3,
                ..Default::default()
            })
            .await
            .unwrap();
        pages += 1;
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|item| item.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created.iter().rev().copied().collect::<Vec<_>>());
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 8);

    for bad in [
        ListFilter {
            limit: 101,
            ..Default::default()
        },
        ListFilter {
            cursor: Some("nonsense".to_owned()),
            ..Default::default()
        },
    ] {
        assert!(matches!(
            orchestrator.list(&bad).await,
            Err(Error::InvalidArgument(_))
        ));
    }
}

#[tokio::test]
async fn get_shows_every_step_with_its_attempts_and_errors() {
    let env = TestEnv::start().await;
    let script = Script::new();
    script.then("a", [Behaviour::Transient("connection reset")]);
    script.always("b", Behaviour::Refuse("out_of_stock"));
    let orchestrator = env.orchestrator(
        config(),
        vec![toy("checkout", &[("a", true), ("b", true)], &script)],
    );
    let id = env.start_saga(&orchestrator, "checkout").await;
    finished(&orchestrator, id).await;

    let detail = orchestrator.get(id).await.unwrap().unwrap();
    let steps: Vec<_> = detail
        .steps
        .iter()
        .map(|step| {
            (
                step.step.as_str(),
                step.phase,
                step.attempts,
                step.outcome,
                step.last_error.as_deref(),
            )
        })
        .collect();
    use saga::{Phase::*, StepOutcome::*};
    assert_eq!(
        steps,
        vec![
            ("a", Action, 2, Done, Some("connection reset")),
            ("b", Action, 1, Refused, Some("out_of_stock")),
            ("a", Compensation, 1, Done, None),
        ]
    );
    assert!(detail.steps.iter().all(|step| step.finished_at.is_some()));
    assert_eq!(detail.summary.state, State::Compensated);
    assert!(
        orchestrator
            .get(uuid::Uuid::now_v7())
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        orchestrator
            .wait(uuid::Uuid::now_v7(), std::time::Duration::from_millis(10))
            .await,
        Err(Error::NotFound)
    ));
}
