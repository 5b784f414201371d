//! A saga's definition: its ordered steps, and their type-erased form the engine drives.

use std::future::Future;

use std::sync::Arc;

use serde_json::Value;

use crate::step::{BoxFuture, LocalStep, Outcome, RemoteFn, SagaData, StepContext, StepError};

/// A saga: a name and ordered steps, each an action with an optional compensation.
///
/// Built once at start-up and handed to
/// [`Orchestrator::register`](crate::Orchestrator::register). The builder methods panic on
/// mistakes a service cannot recover from at run time (a compensation before any step, a
/// step name used twice, a bound for an unknown step).
///
/// Steps may mix kinds: a remote action can have a local compensation and the other way
/// round. A definition may change between releases only compatibly: steps appended, none
/// renamed or reordered, data still readable by the new type. An instance whose step no
/// longer matches the definition ends [`State::Failed`](crate::State::Failed).
pub struct Definition<D> {
    name: &'static str,
    steps: Vec<StepDefinition<D>>,
}

struct StepDefinition<D> {
    name: &'static str,
    action: Handler<D>,
    compensation: Option<Handler<D>>,
    max_attempts: Option<u32>,
}

enum Handler<D> {
    Remote(RemoteFn<D>),
    Local(Arc<dyn LocalStep<D>>),
}

impl<D: SagaData> Definition<D> {
    /// A saga with no steps yet: `Definition::new("checkout")`.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            steps: Vec::new(),
        }
    }

    /// Appends an action that calls other services. Closures of the shape
    /// `move |ctx, data| async move { .. }` fit.
    pub fn remote<A, Fut>(self, step: &'static str, action: A) -> Self
    where
        A: Fn(StepContext, D) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Outcome<D>, StepError>> + Send + 'static,
    {
        self.push(step, Handler::Remote(boxed_remote(action)))
    }

    /// Appends an action that writes the service's own tables in the saga's transaction.
    pub fn local(self, step: &'static str, action: impl LocalStep<D>) -> Self {
        self.push(step, Handler::Local(Arc::new(action)))
    }

    /// Gives the step added last a compensation that calls other services.
    pub fn compensate_remote<C, Fut>(mut self, compensation: C) -> Self
    where
        C: Fn(StepContext, D) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Outcome<D>, StepError>> + Send + 'static,
    {
        self.set_compensation(Handler::Remote(boxed_remote(compensation)));
        self
    }

    /// Gives the step added last a compensation that writes the service's own tables.
    pub fn compensate_local(mut self, compensation: impl LocalStep<D>) -> Self {
        self.set_compensation(Handler::Local(Arc::new(compensation)));
        self
    }

    /// Overrides the retry bound ([`Config::max_attempts`](crate::Config::max_attempts)) of
    /// one step, for its action and its compensation.
    pub fn max_attempts(mut self, step: &'static str, attempts: u32) -> Self {
        assert!(
            attempts >= 1,
            "saga {}: max_attempts must be at least 1",
            self.name
        );
        let name = self.name;
        let found = self
            .steps
            .iter_mut()
            .find(|candidate| candidate.name == step)
            .unwrap_or_else(|| panic!("saga {name}: max_attempts for unknown step {step:?}"));
        found.max_attempts = Some(attempts);
        self
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn step_names(&self) -> Vec<&'static str> {
        self.steps.iter().map(|step| step.name).collect()
    }

    fn push(mut self, step: &'static str, action: Handler<D>) -> Self {
        assert!(
            self.steps.iter().all(|existing| existing.name != step),
            "saga {}: step {step:?} is defined twice",
            self.name
        );
        self.steps.push(StepDefinition {
            name: step,
            action,
            compensation: None,
            max_attempts: None,
        });
        self
    }

    fn set_compensation(&mut self, compensation: Handler<D>) {
        let name = self.name;
        let last = self
            .steps
            .last_mut()
            .unwrap_or_else(|| panic!("saga {name}: a compensation needs a step before it"));
        assert!(
            last.compensation.is_none(),
            "saga {name}: step {:?} already has a compensation",
            last.name
        );
        last.compensation = Some(compensation);
    }

    pub(crate) fn erase(self) -> ErasedDefinition {
        assert!(
            !self.steps.is_empty(),
            "saga {}: it has no steps",
            self.name
        );
        ErasedDefinition {
            name: self.name,
            steps: self
                .steps
                .into_iter()
                .map(|step| ErasedStep {
                    name: step.name,
                    max_attempts: step.max_attempts,
                    action: erase_handler(step.action),
                    compensation: step.compensation.map(erase_handler),
                })
                .collect(),
        }
    }
}

fn boxed_remote<D, A, Fut>(action: A) -> RemoteFn<D>
where
    A: Fn(StepContext, D) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Outcome<D>, StepError>> + Send + 'static,
{
    Arc::new(move |ctx, data| -> BoxFuture<'static, _> { Box::pin(action(ctx, data)) })
}

/// Why an erased step could not give an answer of its own.
#[derive(Debug)]
pub(crate) enum StepFailure {
    Step(StepError),
    /// The instance's data does not fit the saga's type (or no longer serialises).
    Data(String),
}

impl From<StepError> for StepFailure {
    fn from(error: StepError) -> Self {
        Self::Step(error)
    }
}

pub(crate) type ErasedRemote = Arc<
    dyn Fn(StepContext, Value) -> BoxFuture<'static, Result<Outcome<Value>, StepFailure>>
        + Send
        + Sync,
>;

pub(crate) trait ErasedLocal: Send + Sync {
    fn run<'c>(
        &'c self,
        conn: &'c mut sqlx::PgConnection,
        ctx: &'c StepContext,
        data: &'c mut Value,
    ) -> BoxFuture<'c, Result<(), StepFailure>>;
}

struct LocalAdapter<D>(Arc<dyn LocalStep<D>>);

impl<D: SagaData> ErasedLocal for LocalAdapter<D> {
    fn run<'c>(
        &'c self,
        conn: &'c mut sqlx::PgConnection,
        ctx: &'c StepContext,
        data: &'c mut Value,
    ) -> BoxFuture<'c, Result<(), StepFailure>> {
        Box::pin(async move {
            let mut typed: D = serde_json::from_value(data.clone())
                .map_err(|error| StepFailure::Data(error.to_string()))?;
            self.0.run(conn, ctx, &mut typed).await?;
            *data = serde_json::to_value(&typed)
                .map_err(|error| StepFailure::Data(error.to_string()))?;
            Ok(())
        })
    }
}

#[derive(Clone)]
pub(crate) enum ErasedHandler {
    Remote(ErasedRemote),
    Local(Arc<dyn ErasedLocal>),
}

fn erase_handler<D: SagaData>(handler: Handler<D>) -> ErasedHandler {
    match handler {
        Handler::Remote(action) => ErasedHandler::Remote(Arc::new(move |ctx, data| {
            let action = action.clone();
            Box::pin(async move {
                let typed: D = serde_json::from_value(data)
                    .map_err(|error| StepFailure::Data(error.to_string()))?;
                let outcome = action(ctx, typed).await?;
                outcome
                    .try_map(|data| serde_json::to_value(&data))
                    .map_err(|error| StepFailure::Data(error.to_string()))
            })
        })),
        Handler::Local(step) => ErasedHandler::Local(Arc::new(LocalAdapter(step))),
    }
}

pub(crate) struct ErasedDefinition {
    pub(crate) name: &'static str,
    pub(crate) steps: Vec<ErasedStep>,
}

pub(crate) struct ErasedStep {
    pub(crate) name: &'static str,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) action: ErasedHandler,
    pub(crate) compensation: Option<ErasedHandler>,
}

impl ErasedStep {
    pub(crate) fn handler(&self, phase: crate::Phase) -> Option<&ErasedHandler> {
        match phase {
            crate::Phase::Action => Some(&self.action),
            crate::Phase::Compensation => self.compensation.as_ref(),
        }
    }

    pub(crate) fn action_is_remote(&self) -> bool {
        matches!(self.action, ErasedHandler::Remote(_))
    }
}

impl ErasedDefinition {
    /// The step to compensate first when compensation starts at `from` (inclusive) going
    /// down: the highest index at or below it that has a compensation.
    pub(crate) fn compensable_at_or_below(&self, from: Option<usize>) -> Option<usize> {
        let from = from?;
        (0..=from.min(self.steps.len().checked_sub(1)?))
            .rev()
            .find(|&index| self.steps[index].compensation.is_some())
    }
}
