//! What a step is given and what it answers.

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use telemetry::propagation::TraceHeaders;
use uuid::Uuid;

/// A boxed, sendable future: what steps return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Data a saga carries: serialised as JSONB in the instance row.
pub trait SagaData:
    Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static
{
}

impl<T: Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static> SagaData for T {}

/// Why a step did not finish.
#[derive(Clone, Debug, PartialEq)]
pub enum StepError {
    /// Timeout, unavailable, a broken connection: retried with backoff and jitter up to the
    /// step's bound. Once exhausted an action counts as a refusal with code
    /// `"retries_exhausted"` (detail: the last error message); a compensation keeps being
    /// retried (the instance shows [`State::Stuck`](crate::State::Stuck)).
    Transient(String),
    /// A business refusal (out of stock, declined): no retry; the saga compensates.
    Refused {
        code: String,
        detail: serde_json::Value,
    },
}

impl StepError {
    pub fn transient(error: impl Display) -> Self {
        Self::Transient(error.to_string())
    }

    pub fn refused(code: impl Into<String>, detail: serde_json::Value) -> Self {
        Self::Refused {
            code: code.into(),
            detail,
        }
    }
}

impl Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transient(message) => write!(f, "{message}"),
            Self::Refused { code, detail } => write!(f, "refused: {code} {detail}"),
        }
    }
}

/// What a step that ran to its end answers.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome<D> {
    /// The step is done; `D` is the data as the step left it.
    Done(D),
    /// A durable timer: run this same step again at `until`, or earlier when a signal named
    /// `signal` arrives for the instance ([`Orchestrator::signal`](crate::Orchestrator::signal)).
    /// It survives restarts. When the step runs again, [`StepContext::signal`] holds the
    /// signal's payload if it came, and [`StepContext::woken_by_deadline`] is true if the time
    /// passed instead.
    Wait {
        data: D,
        until: DateTime<Utc>,
        signal: Option<String>,
    },
}

impl<D> Outcome<D> {
    pub(crate) fn try_map<E, T>(self, f: impl FnOnce(D) -> Result<T, E>) -> Result<Outcome<T>, E> {
        Ok(match self {
            Self::Done(data) => Outcome::Done(f(data)?),
            Self::Wait {
                data,
                until,
                signal,
            } => Outcome::Wait {
                data: f(data)?,
                until,
                signal,
            },
        })
    }
}

/// Whether a step runs forward or undoes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Action,
    Compensation,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Action => "action",
            Self::Compensation => "compensation",
        }
    }
}

impl Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Phase {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "action" => Ok(Self::Action),
            "compensation" => Ok(Self::Compensation),
            other => Err(format!("unknown saga phase {other:?}")),
        }
    }
}

/// What a step knows about the run it is part of.
#[derive(Clone, Debug)]
pub struct StepContext {
    pub(crate) instance_id: Uuid,
    pub(crate) saga: Arc<str>,
    pub(crate) step: &'static str,
    pub(crate) phase: Phase,
    pub(crate) attempt: u32,
    pub(crate) refusal: Option<(String, serde_json::Value)>,
    pub(crate) signal: Option<serde_json::Value>,
    pub(crate) woken_by_deadline: bool,
    pub(crate) trace: TraceHeaders,
}

impl StepContext {
    pub fn instance_id(&self) -> Uuid {
        self.instance_id
    }

    pub fn saga(&self) -> &str {
        &self.saga
    }

    pub fn step(&self) -> &str {
        self.step
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// 1 on the first attempt, counting up on retries; back to 1 after a wait.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// `"<instance id>:<step>"` for actions and `"<instance id>:<step>:compensate"` for
    /// compensations: the idempotency key a step passes to the service it calls, so that a
    /// retried step (or one run again after a crash) has one effect.
    pub fn idempotency_key(&self) -> String {
        match self.phase {
            Phase::Action => format!("{}:{}", self.instance_id, self.step),
            Phase::Compensation => format!("{}:{}:compensate", self.instance_id, self.step),
        }
    }

    /// While compensating: the refusal that started it (code, detail).
    pub fn refusal(&self) -> Option<(&str, &serde_json::Value)> {
        self.refusal
            .as_ref()
            .map(|(code, detail)| (code.as_str(), detail))
    }

    /// After a wait: the payload of the signal that ended it, if one did.
    pub fn signal(&self) -> Option<&serde_json::Value> {
        self.signal.as_ref()
    }

    /// After a wait: true when the wait ended because its time passed (no signal came).
    pub fn woken_by_deadline(&self) -> bool {
        self.woken_by_deadline
    }

    /// The trace context kept with the instance when it was created
    /// ([`Orchestrator::create`](crate::Orchestrator::create)): the request that started the
    /// saga. The step's span is its child. Empty when that request had none.
    pub fn trace(&self) -> TraceHeaders {
        self.trace.clone()
    }

    /// The trace context the step's calls and events carry:
    /// `telemetry::propagation::current(&ctx.trace())`, that is the current span's (the
    /// step's, or one inside it) when spans are exported, else the instance's
    /// [`trace`](Self::trace), so the trace id survives without an exporter. Call it inside
    /// the step (the runtime runs the step in its span), and pass it where a trace is asked
    /// for: `rpc::Context::with_trace`, `events::Outbox::append`. The saga's data carries no
    /// trace of its own: this is the one copy, whichever replica runs the step and whenever.
    pub fn current_trace(&self) -> TraceHeaders {
        telemetry::propagation::current(&self.trace)
    }
}

/// A step that calls other services: owned context and data in, data out, so it is easy to
/// write as a closure. See [`Definition::remote`](crate::Definition::remote).
pub type RemoteFn<D> =
    Arc<dyn Fn(StepContext, D) -> BoxFuture<'static, Result<Outcome<D>, StepError>> + Send + Sync>;

/// A step that writes the service's own tables.
///
/// It runs inside the very transaction that records the step as done (and the instance's new
/// state), so its writes (an order's status, an outbox event appended with
/// `events::Outbox::append`) commit together with the saga's progress or not at all. An error
/// rolls all of it back. It must not commit or roll back `conn` itself.
pub trait LocalStep<D>: Send + Sync + 'static {
    fn run<'c>(
        &'c self,
        conn: &'c mut sqlx::PgConnection,
        ctx: &'c StepContext,
        data: &'c mut D,
    ) -> BoxFuture<'c, Result<(), StepError>>;
}

impl<D: 'static> LocalStep<D> for Box<dyn LocalStep<D>> {
    fn run<'c>(
        &'c self,
        conn: &'c mut sqlx::PgConnection,
        ctx: &'c StepContext,
        data: &'c mut D,
    ) -> BoxFuture<'c, Result<(), StepError>> {
        (**self).run(conn, ctx, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(trace: TraceHeaders) -> StepContext {
        StepContext {
            instance_id: Uuid::nil(),
            saga: Arc::from("checkout"),
            step: "reserve_stock",
            phase: Phase::Action,
            attempt: 1,
            refusal: None,
            signal: None,
            woken_by_deadline: false,
            trace,
        }
    }

    #[test]
    fn without_an_exported_span_a_step_sends_the_instances_trace() {
        let kept = TraceHeaders {
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            tracestate: Some("vendor=1".into()),
        };
        let ctx = context(kept.clone());
        assert_eq!(ctx.trace(), kept);
        assert_eq!(ctx.current_trace(), kept);
        assert_eq!(
            context(TraceHeaders::default()).current_trace(),
            TraceHeaders::default()
        );
    }
}
