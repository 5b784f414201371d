//! The decisions of the engine, apart from the SQL that records them: what an instance becomes
//! after a step answers, and how long a retry waits.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng as _;
use serde_json::Value;

use crate::definition::{ErasedDefinition, StepFailure};
use crate::model::{InstanceRow, State, StepOutcome};
use crate::step::{Outcome, Phase, StepError};

/// The refusal code of an action whose transient failures outlasted its retry bound.
pub const RETRIES_EXHAUSTED: &str = "retries_exhausted";
/// The refusal code of an operator's abort.
pub const ABORTED: &str = "aborted";

/// When an instance is due next.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Wake {
    Now,
    After(Duration),
    At(DateTime<Utc>),
}

/// An instance's new state, written in one statement.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Transition {
    pub state: State,
    pub phase: Phase,
    pub step_index: i32,
    pub current_step: Option<String>,
    /// The new data, when a step changed it.
    pub data: Option<Value>,
    pub attempts: i32,
    pub step_waited: bool,
    pub last_error: Option<String>,
    /// Set the refusal being compensated (kept as it is when `None`).
    pub refusal: Option<(String, Value)>,
    /// A pending abort has been applied.
    pub clear_abort: bool,
    pub wake: Wake,
    pub wait_signal: Option<String>,
}

/// What the step's record becomes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StepWrite {
    pub outcome: StepOutcome,
    pub last_error: Option<String>,
    /// The step has finished for good (done, refused, exhausted).
    pub finished: bool,
    /// A retry was scheduled.
    pub retry: bool,
}

/// The retry policy an instance runs under.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Policy {
    /// The upper bound of the delay before attempt `failed + 1`: base doubled per failed
    /// attempt, capped.
    pub fn ceiling(&self, failed: u32) -> Duration {
        let doublings = failed.saturating_sub(1).min(30);
        self.backoff_base
            .saturating_mul(1u32 << doublings)
            .min(self.backoff_max)
    }

    /// Full jitter: anywhere between zero and the ceiling, so that instances failing together
    /// do not retry together.
    pub fn backoff(&self, failed: u32) -> Duration {
        let ceiling = self.ceiling(failed);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::thread_rng().gen_range(0..=millis))
    }
}

/// Where compensation starts after the action at `index` failed: the failing step itself
/// when it may have taken effect (`include_failing`), else the one before it.
fn compensation_from(index: usize, include_failing: bool) -> Option<usize> {
    if include_failing {
        Some(index)
    } else {
        index.checked_sub(1)
    }
}

/// The instance turns to compensating, starting at `from` (inclusive) going down; with
/// nothing to compensate it is compensated at once.
pub(crate) fn begin_compensation(
    definition: &ErasedDefinition,
    from: Option<usize>,
    refusal: (String, Value),
) -> Transition {
    let next = definition.compensable_at_or_below(from);
    compensating_at(definition, next, Some(refusal))
}

fn compensating_at(
    definition: &ErasedDefinition,
    next: Option<usize>,
    refusal: Option<(String, Value)>,
) -> Transition {
    let (state, step_index, current_step) = match next {
        Some(index) => (
            State::Compensating,
            index_i32(index),
            Some(definition.steps[index].name.to_owned()),
        ),
        None => (State::Compensated, -1, None),
    };
    Transition {
        state,
        phase: Phase::Compensation,
        step_index,
        current_step,
        data: None,
        attempts: 0,
        step_waited: false,
        last_error: None,
        refusal,
        clear_abort: true,
        wake: Wake::Now,
        wait_signal: None,
    }
}

/// An operator's abort of an instance going forward at step `index`: the step itself is
/// compensated too when it is a remote step that has started (its effect is unknown).
pub(crate) fn abort(
    definition: &ErasedDefinition,
    row: &InstanceRow,
    index: usize,
    reason: &str,
) -> Transition {
    let started = definition
        .steps
        .get(index)
        .is_some_and(|step| step.action_is_remote())
        && (row.attempts > 0 || row.step_waited);
    begin_compensation(
        definition,
        compensation_from(index, started),
        (ABORTED.to_owned(), serde_json::json!({ "reason": reason })),
    )
}

/// The engine could not drive the instance: it stops where it stands, not compensated.
pub(crate) fn failed(row: &InstanceRow, error: String) -> Transition {
    Transition {
        state: State::Failed,
        phase: row.phase(),
        step_index: row.step_index,
        current_step: row.current_step.clone(),
        data: None,
        attempts: row.attempts,
        step_waited: row.step_waited,
        last_error: Some(error),
        refusal: None,
        clear_abort: false,
        wake: Wake::Now,
        wait_signal: row.wait_signal.clone(),
    }
}

/// What the instance at step `index` in `phase` becomes after the step answered `result`.
pub(crate) fn after_step(
    definition: &ErasedDefinition,
    row: &InstanceRow,
    index: usize,
    phase: Phase,
    policy: &Policy,
    result: Result<Outcome<Value>, StepFailure>,
) -> (Transition, StepWrite) {
    let step = &definition.steps[index];
    let attempt = u32::try_from(row.attempts).unwrap_or(0) + 1;
    let same = |state: State| Transition {
        state,
        phase,
        step_index: row.step_index,
        current_step: row.current_step.clone(),
        data: None,
        attempts: index_i32(attempt as usize),
        step_waited: row.step_waited,
        last_error: None,
        refusal: None,
        clear_abort: false,
        wake: Wake::Now,
        wait_signal: None,
    };
    let written = |outcome: StepOutcome, last_error: Option<String>, finished: bool| StepWrite {
        outcome,
        last_error,
        finished,
        retry: false,
    };
    match (phase, result) {
        (_, Err(StepFailure::Data(error))) => {
            let error = format!("the saga's data does not fit its type: {error}");
            (
                failed(row, error.clone()),
                written(StepOutcome::FailedAttempt, Some(error), false),
            )
        }
        (
            _,
            Ok(Outcome::Wait {
                data,
                until,
                signal,
            }),
        ) => (
            Transition {
                data: Some(data),
                attempts: 0,
                step_waited: true,
                wake: Wake::At(until),
                wait_signal: signal,
                ..same(State::Waiting)
            },
            written(StepOutcome::Waiting, None, false),
        ),
        (Phase::Action, Ok(Outcome::Done(data))) => {
            let next = index + 1;
            let transition = match definition.steps.get(next) {
                Some(next_step) => Transition {
                    state: State::Running,
                    phase: Phase::Action,
                    step_index: index_i32(next),
                    current_step: Some(next_step.name.to_owned()),
                    data: Some(data),
                    attempts: 0,
                    step_waited: false,
                    last_error: None,
                    refusal: None,
                    clear_abort: false,
                    wake: Wake::Now,
                    wait_signal: None,
                },
                None => Transition {
                    state: State::Completed,
                    phase: Phase::Action,
                    step_index: index_i32(next),
                    current_step: None,
                    data: Some(data),
                    attempts: 0,
                    step_waited: false,
                    last_error: None,
                    refusal: None,
                    clear_abort: true,
                    wake: Wake::Now,
                    wait_signal: None,
                },
            };
            (transition, written(StepOutcome::Done, None, true))
        }
        (Phase::Compensation, Ok(Outcome::Done(data))) => {
            let next = definition.compensable_at_or_below(index.checked_sub(1));
            let mut transition = compensating_at(definition, next, None);
            transition.data = Some(data);
            (transition, written(StepOutcome::Done, None, true))
        }
        (Phase::Action, Err(StepFailure::Step(StepError::Refused { code, detail }))) => {
            // A plain refusal had no effect; one after a wait ends a step that had already
            // done part of its work.
            let include = step.action_is_remote() && row.step_waited;
            (
                begin_compensation(
                    definition,
                    compensation_from(index, include),
                    (code.clone(), detail),
                ),
                written(StepOutcome::Refused, Some(code), true),
            )
        }
        (Phase::Action, Err(StepFailure::Step(StepError::Transient(error)))) => {
            if attempt < policy.max_attempts {
                (
                    Transition {
                        last_error: Some(error.clone()),
                        wake: Wake::After(policy.backoff(attempt)),
                        ..same(State::Running)
                    },
                    StepWrite {
                        retry: true,
                        ..written(StepOutcome::FailedAttempt, Some(error), false)
                    },
                )
            } else {
                // The last attempt may have taken effect on the other side: a remote step is
                // compensated too.
                let mut transition = begin_compensation(
                    definition,
                    compensation_from(index, step.action_is_remote()),
                    (RETRIES_EXHAUSTED.to_owned(), Value::String(error.clone())),
                );
                transition.last_error = Some(error.clone());
                (
                    transition,
                    written(StepOutcome::Exhausted, Some(error), true),
                )
            }
        }
        (Phase::Compensation, Err(StepFailure::Step(error))) => {
            let error = error.to_string();
            let state = if attempt >= policy.max_attempts {
                State::Stuck
            } else {
                State::Compensating
            };
            (
                Transition {
                    last_error: Some(error.clone()),
                    wake: Wake::After(policy.backoff(attempt)),
                    ..same(state)
                },
                StepWrite {
                    retry: true,
                    ..written(StepOutcome::FailedAttempt, Some(error), false)
                },
            )
        }
    }
}

fn index_i32(index: usize) -> i32 {
    i32::try_from(index).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_ceiling_doubles_and_is_capped() {
        let policy = Policy {
            max_attempts: 5,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_millis(1000),
        };
        assert_eq!(policy.ceiling(1), Duration::from_millis(100));
        assert_eq!(policy.ceiling(2), Duration::from_millis(200));
        assert_eq!(policy.ceiling(4), Duration::from_millis(800));
        assert_eq!(policy.ceiling(5), Duration::from_millis(1000));
        assert_eq!(policy.ceiling(500), Duration::from_millis(1000));
        for failed in 1..10 {
            assert!(policy.backoff(failed) <= policy.ceiling(failed));
        }
    }

    #[test]
    fn compensation_starts_below_a_plain_refusal_and_at_an_uncertain_step() {
        assert_eq!(compensation_from(2, false), Some(1));
        assert_eq!(compensation_from(2, true), Some(2));
        assert_eq!(compensation_from(0, false), None);
    }
}
