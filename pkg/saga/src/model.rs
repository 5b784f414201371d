//! What operations see of an instance: states, summaries, step records, errors.

use std::fmt::Display;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::step::Phase;

/// Where an instance stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Going forward: a step is due, in flight, or waiting out a retry's backoff.
    Running,
    /// A step asked for a durable timer; it runs again at its deadline or on its signal.
    Waiting,
    /// Undoing the completed steps after a refusal, in reverse order.
    Compensating,
    /// Terminal: every step is done.
    Completed,
    /// Terminal: a refusal was compensated (the refusal code says why).
    Compensated,
    /// A compensation has failed more than its step's retry bound. It is still retried, with
    /// backoff capped at [`Config::backoff_max`](crate::Config::backoff_max), until it
    /// succeeds or an operator retries or aborts: an alert, not an end.
    Stuck,
    /// Terminal, not compensated: the engine could not drive the instance at all (its data no
    /// longer reads as the saga's type, or its step is not in the definition any more). Fix
    /// the code, then [`Orchestrator::retry`](crate::Orchestrator::retry) it. Steps never
    /// end here: their failures become refusals, which are compensated.
    Failed,
}

impl State {
    pub const ALL: [State; 7] = [
        State::Running,
        State::Waiting,
        State::Compensating,
        State::Completed,
        State::Compensated,
        State::Stuck,
        State::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Waiting => "waiting",
            Self::Compensating => "compensating",
            Self::Completed => "completed",
            Self::Compensated => "compensated",
            Self::Stuck => "stuck",
            Self::Failed => "failed",
        }
    }

    /// Completed, Compensated and Failed: nothing runs any more (until an operator's retry
    /// of a Failed one).
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Compensated | Self::Failed)
    }
}

impl Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for State {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| format!("unknown saga state {text:?}"))
    }
}

/// How a step's latest attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// An attempt started and has not reported back (in flight, or cut short by a crash and
    /// due to run again).
    Pending,
    /// The last attempt failed transiently; another is due after a backoff.
    FailedAttempt,
    /// The step asked for a durable timer.
    Waiting,
    Done,
    /// The step refused (a business answer); the saga compensates.
    Refused,
    /// The action failed transiently more often than its bound; the saga compensates with
    /// `retries_exhausted`.
    Exhausted,
}

impl StepOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::FailedAttempt => "failed_attempt",
            Self::Waiting => "waiting",
            Self::Done => "done",
            Self::Refused => "refused",
            Self::Exhausted => "exhausted",
        }
    }
}

impl FromStr for StepOutcome {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [
            Self::Pending,
            Self::FailedAttempt,
            Self::Waiting,
            Self::Done,
            Self::Refused,
            Self::Exhausted,
        ]
        .into_iter()
        .find(|outcome| outcome.as_str() == text)
        .ok_or_else(|| format!("unknown saga step outcome {text:?}"))
    }
}

/// An instance as it stands.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub id: Uuid,
    pub saga: String,
    pub state: State,
    pub phase: Phase,
    /// The step due, in flight or waiting; `None` once terminal.
    pub current_step: Option<String>,
    /// Attempts of the current step since it last made progress.
    pub attempts: u32,
    pub last_error: Option<String>,
    pub refusal_code: Option<String>,
    pub refusal_detail: Option<Value>,
    /// When it is due next (a backoff or a durable timer).
    pub wake_at: DateTime<Utc>,
    /// The replica holding it, while one does.
    pub lease_owner: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub data: Value,
}

/// An instance and every step it has started, in the order they first ran.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Detail {
    pub summary: Summary,
    pub steps: Vec<StepRecord>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepRecord {
    pub step: String,
    pub index: u32,
    pub phase: Phase,
    /// Every attempt the step has had, across waits.
    pub attempts: u32,
    pub outcome: StepOutcome,
    pub last_error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
}

/// Which instances [`Orchestrator::list`](crate::Orchestrator::list) returns.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    pub state: Option<State>,
    pub saga: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1..=100; 0 means the default, 20.
    pub limit: u32,
}

/// One page of a listing, newest first.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass it as [`ListFilter::cursor`] for the next page; `None` on the last one.
    pub next_cursor: Option<String>,
}

/// What an orchestrator operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no such saga instance")]
    NotFound,
    /// The instance is not in a state the operation applies to.
    #[error("{0}")]
    IllegalState(String),
    /// A bad cursor or limit in a listing.
    #[error("{0}")]
    InvalidArgument(String),
    /// `create` for a saga no definition was registered for.
    #[error("no saga named {0:?} is registered")]
    UnknownSaga(String),
    #[error("saga storage: {0}")]
    Database(#[from] sqlx::Error),
    #[error("saga data: {0}")]
    Data(#[from] serde_json::Error),
}

/// A row of `saga_instances`.
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct InstanceRow {
    pub id: Uuid,
    pub saga: String,
    pub state: String,
    pub phase: String,
    pub step_index: i32,
    pub current_step: Option<String>,
    pub data: Value,
    pub attempts: i32,
    pub step_waited: bool,
    pub last_error: Option<String>,
    pub refusal_code: Option<String>,
    pub refusal_detail: Option<Value>,
    pub abort_reason: Option<String>,
    pub wake_at: DateTime<Utc>,
    pub wait_signal: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The W3C trace context of the request that created the instance.
    pub traceparent: Option<String>,
    pub tracestate: Option<String>,
}

impl InstanceRow {
    pub fn state(&self) -> State {
        self.state.parse().unwrap_or(State::Failed)
    }

    pub fn phase(&self) -> Phase {
        self.phase.parse().unwrap_or(Phase::Action)
    }

    pub fn summary(&self) -> Summary {
        Summary {
            id: self.id,
            saga: self.saga.clone(),
            state: self.state(),
            phase: self.phase(),
            current_step: self.current_step.clone(),
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            last_error: self.last_error.clone(),
            refusal_code: self.refusal_code.clone(),
            refusal_detail: self.refusal_detail.clone(),
            wake_at: self.wake_at,
            lease_owner: self.lease_owner.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            finished_at: self.finished_at,
            data: self.data.clone(),
        }
    }
}

/// A row of `saga_steps`.
#[derive(Clone, Debug, sqlx::FromRow)]
pub(crate) struct StepRow {
    pub name: String,
    pub step_index: i32,
    pub phase: String,
    pub attempts: i32,
    pub outcome: String,
    pub last_error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl StepRow {
    pub fn record(self) -> StepRecord {
        StepRecord {
            step: self.name,
            index: u32::try_from(self.step_index).unwrap_or(0),
            phase: self.phase.parse().unwrap_or(Phase::Action),
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            outcome: self.outcome.parse().unwrap_or(StepOutcome::Pending),
            last_error: self.last_error,
            duration_ms: self
                .finished_at
                .map(|finished| (finished - self.started_at).num_milliseconds()),
            started_at: self.started_at,
            finished_at: self.finished_at,
        }
    }
}
