//! Local steps: their writes commit with the saga's progress or not at all.

use saga::{BoxFuture, Definition, LocalStep, Phase, State, StepContext, StepError, StepOutcome};
use sqlx::PgConnection;

use crate::*;

/// Writes a row for the instance. Attempt 1 writes a second row that breaks a deferred
/// constraint, so the commit that would record the step fails; attempt 2 writes and then
/// fails; attempt 3 succeeds.
struct WriteRow;

impl LocalStep<Toy> for WriteRow {
    fn run<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        ctx: &'c StepContext,
        data: &'c mut Toy,
    ) -> BoxFuture<'c, Result<(), StepError>> {
        Box::pin(async move {
            let insert = "INSERT INTO toy_rows (instance_id, attempt, k) VALUES ($1, $2, $3)";
            let key = format!("{}", ctx.instance_id());
            sqlx::query(insert)
                .bind(ctx.instance_id())
                .bind(ctx.attempt() as i32)
                .bind(&key)
                .execute(&mut *conn)
                .await
                .map_err(StepError::transient)?;
            match ctx.attempt() {
                1 => {
                    sqlx::query(insert)
                        .bind(ctx.instance_id())
                        .bind(ctx.attempt() as i32)
                        .bind(&key)
                        .execute(&mut *conn)
                        .await
                        .map_err(StepError::transient)?;
                }
                2 => return Err(StepError::transient("second thoughts")),
                _ => {}
            }
            data.trail.push("write".to_owned());
            Ok(())
        })
    }
}

/// Deletes the instance's rows: the compensation of `WriteRow`.
struct DeleteRows;

impl LocalStep<Toy> for DeleteRows {
    fn run<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        ctx: &'c StepContext,
        data: &'c mut Toy,
    ) -> BoxFuture<'c, Result<(), StepError>> {
        Box::pin(async move {
            sqlx::query("DELETE FROM toy_rows WHERE instance_id = $1")
                .bind(ctx.instance_id())
                .execute(&mut *conn)
                .await
                .map_err(StepError::transient)?;
            data.trail.push("write:compensate".to_owned());
            Ok(())
        })
    }
}

async fn create_table(env: &TestEnv) {
    sqlx::raw_sql(
        "CREATE TABLE toy_rows (
             instance_id uuid NOT NULL,
             attempt int NOT NULL,
             k text NOT NULL,
             CONSTRAINT toy_rows_k_key UNIQUE (k) DEFERRABLE INITIALLY DEFERRED
         )",
    )
    .execute(&env.pool)
    .await
    .unwrap();
}

async fn rows(env: &TestEnv, id: uuid::Uuid) -> Vec<i32> {
    sqlx::query_scalar("SELECT attempt FROM toy_rows WHERE instance_id = $1 ORDER BY attempt")
        .bind(id)
        .fetch_all(&env.pool)
        .await
        .unwrap()
}

fn saga(script: &Arc<Script>) -> Definition<Toy> {
    let after = script.clone();
    Definition::new("local")
        .local("write", WriteRow)
        .compensate_local(DeleteRows)
        .max_attempts("write", 5)
        .remote("after", move |ctx, data| {
            let script = after.clone();
            async move { script.run(ctx, data).await }
        })
}

#[tokio::test]
async fn local_writes_are_visible_if_and_only_if_the_step_is_recorded_done() {
    let env = TestEnv::start().await;
    create_table(&env).await;
    let script = Script::new();
    let orchestrator = env.orchestrator(config(), vec![saga(&script)]);
    let id = env.start_saga(&orchestrator, "local").await;

    let summary = finished(&orchestrator, id).await;
    assert_eq!(summary.state, State::Completed);
    assert_eq!(
        rows(&env, id).await,
        vec![3],
        "the failed commit and the failed attempt left nothing behind"
    );
    let data: Toy = serde_json::from_value(summary.data).unwrap();
    assert_eq!(
        data.trail,
        strings(&["write", "after"]),
        "the local step's data change is kept"
    );
    let detail = orchestrator.get(id).await.unwrap().unwrap();
    let write = &detail.steps[0];
    assert_eq!(
        (write.step.as_str(), write.attempts, write.outcome),
        ("write", 3, StepOutcome::Done)
    );
    assert_eq!(write.last_error.as_deref(), Some("second thoughts"));
}

#[tokio::test]
async fn a_local_compensation_commits_with_the_saga() {
    let env = TestEnv::start().await;
    create_table(&env).await;
    let script = Script::new();
    script.always("after", Behaviour::Refuse("declined"));
    let orchestrator = env.orchestrator(config(), vec![saga(&script)]);
    let id = env.start_saga(&orchestrator, "local").await;

    let summary = finished(&orchestrator, id).await;
    assert_eq!(summary.state, State::Compensated);
    assert!(
        rows(&env, id).await.is_empty(),
        "the compensation deleted the row"
    );
    let data: Toy = serde_json::from_value(summary.data).unwrap();
    assert_eq!(data.trail, strings(&["write", "write:compensate"]));
    let detail = orchestrator.get(id).await.unwrap().unwrap();
    assert!(detail.steps.iter().any(|step| step.step == "write"
        && step.phase == Phase::Compensation
        && step.outcome == StepOutcome::Done));
}
