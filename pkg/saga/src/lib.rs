//! Durable sagas: multi-service workflows (checkout, cancellation and refund) written once as
//! ordered steps, driven to an end across crashes, restarts and replicas, recorded in the
//! service's own PostgreSQL database.
//!
//! # The model
//!
//! A [`Definition`] is a name and ordered steps. Each step is an action and, optionally, a
//! compensation that undoes it. A step is either *remote* (it calls other services; a closure
//! taking a [`StepContext`] and the data, returning the data) or *local* (a [`LocalStep`]
//! that writes the service's own tables inside the transaction that records the step as
//! done). An *instance* is one run of a definition: a row in `saga_instances` carrying the
//! saga's data as JSONB, created with [`Orchestrator::create`] in the caller's transaction.
//!
//! A step answers [`Outcome::Done`] with the data as it left it, [`Outcome::Wait`] for a
//! durable timer (it runs again at the deadline, or earlier when a named
//! [`signal`](Orchestrator::signal) arrives), or an error: [`StepError::Transient`] is
//! retried with exponential backoff and full jitter up to the step's bound
//! ([`Config::max_attempts`], [`Definition::max_attempts`]); [`StepError::Refused`] is a
//! business answer and starts compensation at once.
//!
//! After a refusal the completed steps are compensated in reverse order (steps without a
//! compensation are skipped) and the instance ends [`State::Compensated`], with the refusal's
//! code and detail on it. An action whose retries ran out counts as refused with the code
//! `retries_exhausted`; an operator's [`abort`](Orchestrator::abort) as refused with
//! `aborted`. In those two cases (and for a refusal after a wait) the failing remote step may
//! have taken effect, so it is compensated too: **a compensation must be safe to run when
//! its action never took effect.** A compensation is retried until it succeeds; past its
//! bound the instance shows [`State::Stuck`] (and counts in `saga_failed_total`) while
//! retries go on with capped backoff, until it succeeds or an operator retries or aborts.
//!
//! A compensation that refuses is treated like one that failed transiently: undoing must not
//! be refused, so it is retried. A compensation may wait ([`Outcome::Wait`]), for a refund's
//! confirmation say. Local steps neither wait nor call other services.
//!
//! [`State`] lists where an instance can stand: running, waiting, compensating and stuck are
//! in flight; completed, compensated and failed are terminal. Failed means the engine could
//! not drive the instance at all (its data no longer reads as the saga's type, or its step
//! left the definition); steps themselves never end there.
//!
//! # Guarantees
//!
//! - Every change of an instance (a step done, refused or failed, a wait, a phase change, a
//!   terminal state) is one committed transaction before the next step runs. A local step's
//!   writes are in that very transaction: they are visible if and only if the step is
//!   recorded as done.
//! - A crash at any instant resumes from the last committed state. A remote step whose
//!   outcome was not committed runs again, with the same
//!   [`idempotency key`](StepContext::idempotency_key): the services a step calls must be
//!   idempotent on it, then every step has exactly one effect. Steps run at least once.
//! - Only the holder of an instance's lease drives it, and it stops a step in flight before
//!   its lease could expire; every write of the holder is conditional on still holding it.
//!   So two replicas never run the same step at the same time, and the instances of a dead
//!   replica are taken over once their lease expires (within lease + poll interval).
//! - Timers and signals are rows: they survive restarts.
//!
//! # The tables
//!
//! [`migrate`] creates them, idempotently, at every start-up (see `sql/schema.sql`):
//! `saga_instances` (one row per instance: state, phase, step, data, refusal, attempts,
//! `wake_at`, the lease, the trace context of the request that created it), `saga_steps` (one
//! row per step and phase an instance started: attempts, outcome, last error, start and end)
//! and `saga_signals` (signals, consumed in the transaction that records the outcome of the
//! step that waited for them).
//!
//! # How a service uses it
//!
//! At start-up, `saga::migrate(&pool)`; build the definitions and register them; run
//! [`Orchestrator::run`] as a background task (`host.background("sagas", |cancel|
//! tokio::spawn(..))`). A handler creates the instance in the transaction that creates its
//! aggregate, commits, calls [`Orchestrator::drive`] and, to answer synchronously,
//! [`Orchestrator::wait`]. Operators use [`list`](Orchestrator::list),
//! [`get`](Orchestrator::get), [`retry`](Orchestrator::retry) and
//! [`abort`](Orchestrator::abort).
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use saga::{BoxFuture, Config, Definition, LocalStep, Orchestrator, Outcome, StepContext, StepError};
//! use serde::{Deserialize, Serialize};
//! use uuid::Uuid;
//!
//! #[derive(Clone, Serialize, Deserialize)]
//! struct Checkout {
//!     order_id: Uuid,
//!     reservation: Option<String>,
//! }
//!
//! #[derive(Clone)]
//! struct Inventory;
//!
//! impl Inventory {
//!     async fn reserve(&self, ctx: StepContext, mut data: Checkout) -> Result<Outcome<Checkout>, StepError> {
//!         // Call the inventory service with ctx.idempotency_key(), in the trace
//!         // ctx.current_trace() ...
//!         data.reservation = Some(ctx.idempotency_key());
//!         Ok(Outcome::Done(data))
//!     }
//!
//!     async fn release(&self, _ctx: StepContext, data: Checkout) -> Result<Outcome<Checkout>, StepError> {
//!         Ok(Outcome::Done(data))
//!     }
//! }
//!
//! /// Marks the order confirmed in the transaction that records the step.
//! struct ConfirmOrder;
//!
//! impl LocalStep<Checkout> for ConfirmOrder {
//!     fn run<'c>(
//!         &'c self,
//!         conn: &'c mut sqlx::PgConnection,
//!         _ctx: &'c StepContext,
//!         data: &'c mut Checkout,
//!     ) -> BoxFuture<'c, Result<(), StepError>> {
//!         Box::pin(async move {
//!             sqlx::query("UPDATE orders SET status = 'confirmed' WHERE id = $1")
//!                 .bind(data.order_id)
//!                 .execute(&mut *conn)
//!                 .await
//!                 .map_err(StepError::transient)?;
//!             Ok(())
//!         })
//!     }
//! }
//!
//! # async fn example(pool: sqlx::PgPool) -> anyhow::Result<()> {
//! saga::migrate(&pool).await?;
//! let inventory = Inventory;
//! let checkout = Definition::<Checkout>::new("checkout")
//!     .remote("reserve_stock", {
//!         let inventory = inventory.clone();
//!         move |ctx, data| {
//!             let inventory = inventory.clone();
//!             async move { inventory.reserve(ctx, data).await }
//!         }
//!     })
//!     .compensate_remote(move |ctx, data| {
//!         let inventory = inventory.clone();
//!         async move { inventory.release(ctx, data).await }
//!     })
//!     .max_attempts("reserve_stock", 3)
//!     .local("confirm_order", ConfirmOrder);
//!
//! let mut orchestrator = Orchestrator::new(pool.clone(), Config::default());
//! orchestrator.register(checkout);
//! let cancel = tokio_util::sync::CancellationToken::new();
//! tokio::spawn(orchestrator.clone().run(cancel.clone()));
//!
//! let id = Uuid::now_v7();
//! let mut tx = pool.begin().await?;
//! // ... insert the order in `tx` ...
//! let data = Checkout { order_id: id, reservation: None };
//! // The request's incoming trace headers, kept when spans are not exported.
//! let trace = telemetry::propagation::TraceHeaders::default();
//! orchestrator.create(&mut tx, "checkout", id, &data, &trace).await?;
//! tx.commit().await?;
//! orchestrator.drive(id);
//! let summary = orchestrator.wait(id, Duration::from_secs(10)).await?;
//! println!("{} ended {}", summary.id, summary.state);
//! # Ok(())
//! # }
//! ```
//!
//! # Traces
//!
//! [`Orchestrator::create`] keeps the trace context of the request creating the instance
//! with it (the current span's, else the incoming headers it is given). Each step runs in a
//! `saga_step` span, a child of that context, whichever replica runs it and whenever. A step
//! reads the kept context with [`StepContext::trace`] and gives its calls and events
//! [`StepContext::current_trace`] (the step's span when spans are exported, else the kept
//! context), so they are children of the step. The saga's data carries no trace.
//!
//! # Metrics
//!
//! Counters `saga_started_total{saga}`, `saga_completed_total{saga}`,
//! `saga_compensated_total{saga}`, `saga_failed_total{saga}` (an instance turning stuck or
//! failed), `saga_step_retries_total{saga,step}`; the histogram
//! `saga_step_duration_seconds{saga,step,phase}`; gauges `saga_in_flight{saga}`,
//! `saga_stuck{saga}` and `saga_oldest_in_flight_seconds{saga}`, refreshed by the runner.
//! The runner registers the counters at zero when it starts, so they read 0 before the
//! first instance.
//!
//! This crate must never know about a particular service or saga: those come in as
//! definitions. It never runs a step without holding the instance's lease, and never moves
//! an instance on without committing where it stands.

mod definition;
mod model;
mod orchestrator;
mod step;
mod transition;

pub use definition::Definition;
pub use model::{Detail, Error, ListFilter, Page, State, StepOutcome, StepRecord, Summary};
pub use orchestrator::{Config, Orchestrator};
pub use step::{BoxFuture, LocalStep, Outcome, Phase, RemoteFn, SagaData, StepContext, StepError};
pub use transition::{ABORTED, RETRIES_EXHAUSTED};

use sqlx::PgPool;

/// The schema of the saga tables.
const SCHEMA: &str = include_str!("../sql/schema.sql");

/// A transaction-level advisory lock key serialising [`migrate`] across replicas: "empsagam".
const MIGRATE_LOCK_KEY: i64 = 0x656d_7073_6167_616d;

/// Creates the saga tables if they do not exist.
///
/// Plain idempotent DDL rather than a second sqlx `Migrator`: sqlx keeps one version table per
/// database, so a second migrator would see the service's migrations as unknown (and the
/// service's would see these). The advisory lock keeps two replicas starting at once from
/// racing on the catalog.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATE_LOCK_KEY)
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(SCHEMA).execute(&mut *tx).await?;
    tx.commit().await
}
