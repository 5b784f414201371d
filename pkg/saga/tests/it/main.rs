//! Integration tests of the saga crate: toy sagas on a fresh PostgreSQL database per test,
//! real orchestrators (and runners) on it.

mod flows;
mod local;
mod operations;
mod replicas;
mod traces;
mod waits;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use saga::{
    Config, Definition, Orchestrator, Outcome, Phase, State, StepContext, StepError, Summary,
};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use telemetry::propagation::TraceHeaders;
use testkit::TestDatabase;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The data of every toy saga: the steps that ran, in order, as they ran.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Toy {
    pub trail: Vec<String>,
}

/// What a toy step does when it runs.
#[derive(Clone, Debug)]
pub enum Behaviour {
    Ok,
    Transient(&'static str),
    Refuse(&'static str),
    /// Never answers (a replica that hangs or dies mid-step).
    Block,
    /// Answers after a while.
    Sleep(Duration),
    /// A durable timer of that length, ended early by the named signal.
    Wait(Duration, Option<&'static str>),
}

/// One run of a toy step, as the step saw it.
#[derive(Clone, Debug)]
pub struct Call {
    /// `b` or `b:compensate`.
    pub label: String,
    pub instance: Uuid,
    pub key: String,
    pub attempt: u32,
    pub signal: Option<serde_json::Value>,
    pub woken_by_deadline: bool,
    pub refusal: Option<String>,
}

/// Scripted behaviour of toy steps, and a record of every call: the fake services they call.
#[derive(Default)]
pub struct Script {
    queued: Mutex<HashMap<String, VecDeque<Behaviour>>>,
    always: Mutex<HashMap<String, Behaviour>>,
    calls: Mutex<Vec<Call>>,
    in_flight: Mutex<HashSet<(Uuid, String)>>,
    overlaps: Mutex<u32>,
}

impl Script {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The next runs of `label` behave like this, in order; afterwards `always`, else Ok.
    pub fn then(&self, label: &str, behaviours: impl IntoIterator<Item = Behaviour>) {
        self.queued
            .lock()
            .unwrap()
            .entry(label.to_owned())
            .or_default()
            .extend(behaviours);
    }

    pub fn always(&self, label: &str, behaviour: Behaviour) {
        self.always
            .lock()
            .unwrap()
            .insert(label.to_owned(), behaviour);
    }

    pub fn heal(&self, label: &str) {
        self.always.lock().unwrap().remove(label);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// The labels called for `instance`, in order.
    pub fn labels(&self, instance: Uuid) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|call| call.instance == instance)
            .map(|call| call.label)
            .collect()
    }

    pub fn calls_of(&self, instance: Uuid, label: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|call| call.instance == instance && call.label == label)
            .collect()
    }

    /// Times a step started while another run of the same step of the same instance was
    /// still in flight.
    pub fn overlaps(&self) -> u32 {
        *self.overlaps.lock().unwrap()
    }

    fn next(&self, label: &str) -> Behaviour {
        if let Some(behaviour) = self
            .queued
            .lock()
            .unwrap()
            .get_mut(label)
            .and_then(VecDeque::pop_front)
        {
            return behaviour;
        }
        self.always
            .lock()
            .unwrap()
            .get(label)
            .cloned()
            .unwrap_or(Behaviour::Ok)
    }

    pub async fn run(&self, ctx: StepContext, mut data: Toy) -> Result<Outcome<Toy>, StepError> {
        let label = match ctx.phase() {
            Phase::Action => ctx.step().to_owned(),
            Phase::Compensation => format!("{}:compensate", ctx.step()),
        };
        self.calls.lock().unwrap().push(Call {
            label: label.clone(),
            instance: ctx.instance_id(),
            key: ctx.idempotency_key(),
            attempt: ctx.attempt(),
            signal: ctx.signal().cloned(),
            woken_by_deadline: ctx.woken_by_deadline(),
            refusal: ctx.refusal().map(|(code, _)| code.to_owned()),
        });
        let slot = (ctx.instance_id(), label.clone());
        if !self.in_flight.lock().unwrap().insert(slot.clone()) {
            *self.overlaps.lock().unwrap() += 1;
        }
        let _leaving = InFlight { script: self, slot };
        match self.next(&label) {
            Behaviour::Ok => {}
            Behaviour::Transient(message) => return Err(StepError::transient(message)),
            Behaviour::Refuse(code) => {
                return Err(StepError::refused(
                    code,
                    serde_json::json!({ "step": label }),
                ));
            }
            Behaviour::Block => std::future::pending::<()>().await,
            Behaviour::Sleep(duration) => tokio::time::sleep(duration).await,
            Behaviour::Wait(duration, signal) => {
                return Ok(Outcome::Wait {
                    data,
                    until: Utc::now() + duration,
                    signal: signal.map(str::to_owned),
                });
            }
        }
        data.trail.push(label);
        Ok(Outcome::Done(data))
    }
}

struct InFlight<'a> {
    script: &'a Script,
    slot: (Uuid, String),
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.script.in_flight.lock().unwrap().remove(&self.slot);
    }
}

/// A toy saga of remote steps run by `script`: `(name, has a compensation)`.
pub fn toy(
    name: &'static str,
    steps: &[(&'static str, bool)],
    script: &Arc<Script>,
) -> Definition<Toy> {
    let mut definition = Definition::new(name);
    for &(step, compensated) in steps {
        let for_action = script.clone();
        definition = definition.remote(step, move |ctx, data| {
            let script = for_action.clone();
            async move { script.run(ctx, data).await }
        });
        if compensated {
            let for_compensation = script.clone();
            definition = definition.compensate_remote(move |ctx, data| {
                let script = for_compensation.clone();
                async move { script.run(ctx, data).await }
            });
        }
    }
    definition
}

/// Short intervals and a unique owner, so tests do not wait on defaults.
pub fn config() -> Config {
    Config {
        owner: format!("test-{}", Uuid::new_v4().simple()),
        lease: Duration::from_secs(2),
        poll_interval: Duration::from_millis(50),
        max_attempts: 3,
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(40),
        concurrency: 64,
        hold_after: None,
    }
}

pub struct TestEnv {
    pub pool: PgPool,
    pub database: TestDatabase,
}

impl TestEnv {
    pub async fn start() -> Self {
        let database = testkit::fresh_database().await.expect("a database");
        let pool = PgPool::connect(database.url()).await.expect("connecting");
        saga::migrate(&pool).await.expect("migrating");
        saga::migrate(&pool)
            .await
            .expect("migrating twice changes nothing");
        Self { pool, database }
    }

    pub fn orchestrator(&self, config: Config, definitions: Vec<Definition<Toy>>) -> Orchestrator {
        let mut orchestrator = Orchestrator::new(self.pool.clone(), config);
        for definition in definitions {
            orchestrator.register(definition);
        }
        orchestrator
    }

    /// Creates an instance in its own transaction, commits and drives it.
    pub async fn start_saga(&self, orchestrator: &Orchestrator, saga: &str) -> Uuid {
        let id = self.create(orchestrator, saga).await;
        orchestrator.drive(id);
        id
    }

    /// Creates an instance in its own transaction and commits, without driving it.
    pub async fn create(&self, orchestrator: &Orchestrator, saga: &str) -> Uuid {
        self.create_in_trace(orchestrator, saga, &TraceHeaders::default())
            .await
    }

    /// [`TestEnv::create`] by a request whose incoming trace headers are `trace`.
    pub async fn create_in_trace(
        &self,
        orchestrator: &Orchestrator,
        saga: &str,
        trace: &TraceHeaders,
    ) -> Uuid {
        let id = Uuid::now_v7();
        let mut tx = self.pool.begin().await.unwrap();
        orchestrator
            .create(&mut tx, saga, id, &Toy::default(), trace)
            .await
            .expect("creating the instance");
        tx.commit().await.unwrap();
        id
    }
}

/// An orchestrator's runner, as a service's background task.
pub struct Runner {
    cancel: CancellationToken,
    handle: JoinHandle<anyhow::Result<()>>,
}

impl Runner {
    pub fn start(orchestrator: &Orchestrator) -> Self {
        let cancel = CancellationToken::new();
        let handle = tokio::spawn(orchestrator.clone().run(cancel.clone()));
        Self { cancel, handle }
    }

    pub async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.handle)
            .await
            .expect("the runner stops when cancelled")
            .expect("the runner did not panic")
            .expect("the runner ended cleanly");
    }
}

/// Waits for a terminal state and returns the summary; fails the test on a timeout.
pub async fn finished(orchestrator: &Orchestrator, id: Uuid) -> Summary {
    let summary = orchestrator
        .wait(id, Duration::from_secs(20))
        .await
        .expect("reading the instance");
    assert!(
        summary.state.is_terminal(),
        "instance {id} did not finish: {summary:#?}"
    );
    summary
}

/// Polls until the instance is in `state`; fails the test after 20 s.
pub async fn reaches(orchestrator: &Orchestrator, id: Uuid, state: State) -> Summary {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let detail = orchestrator
            .get(id)
            .await
            .unwrap()
            .expect("the instance exists");
        if detail.summary.state == state {
            return detail.summary;
        }
        assert!(
            Instant::now() < deadline,
            "instance {id} never became {state}: {detail:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls until `check` holds; fails the test after 20 s.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}
