//! The orchestrator: creating instances, driving them under a lease, the runner that finds
//! due and orphaned ones, and the operations an operator uses.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::Utc;
use futures::FutureExt as _;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use telemetry::propagation::TraceHeaders;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::definition::{Definition, ErasedDefinition, ErasedHandler, StepFailure};
use crate::model::{
    Detail, Error, InstanceRow, ListFilter, Page, State, StepOutcome, StepRow, Summary,
};
use crate::step::{Outcome, Phase, SagaData, StepContext, StepError};
use crate::transition::{self, Policy, StepWrite, Transition, Wake};

/// How an orchestrator drives its instances.
#[derive(Clone, Debug)]
pub struct Config {
    /// This replica's id (`order-<hostname>-<pid>-<random>`), written as the lease owner.
    /// Two orchestrators on one database must have different owners.
    pub owner: String,
    /// A claim expires after this unless renewed (the holder renews it every third of it).
    pub lease: Duration,
    /// How often the runner looks for due and orphaned instances.
    pub poll_interval: Duration,
    /// Attempts of an action before it counts as refused with `retries_exhausted`; attempts
    /// of a compensation before the instance shows as stuck.
    pub max_attempts: u32,
    /// The backoff ceiling of the first retry, doubled per attempt, with full jitter.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Instances the runner drives at once in this replica.
    pub concurrency: usize,
    /// Test and operations fault point: after committing this step as done
    /// (`"<saga>:<step>"` or `"<saga>:<step>:compensate"`), print one line
    /// `saga <instance id> holding after <step>` to stderr and stop driving the instance
    /// (sleep until shutdown), so that a test can kill the process at that instant. `None`
    /// in production.
    pub hold_after: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            owner: format!("saga-{}-{}", std::process::id(), Uuid::new_v4().simple()),
            lease: Duration::from_secs(15),
            poll_interval: Duration::from_millis(250),
            max_attempts: 5,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            concurrency: 64,
            hold_after: None,
        }
    }
}

/// A delay up to this long (a retry's backoff, a short timer) is waited out by the holder
/// keeping its lease; a longer one hands the instance back to the table for the runner.
const HOLD_LIMIT: Duration = Duration::from_secs(1);
/// How often `wait` looks at the row, for instances another replica finishes.
const WAIT_POLL: Duration = Duration::from_millis(250);

/// How many ended instances a slow waiter may fall behind by before it reads its own again.
const FINISHED_BACKLOG: usize = 1024;
/// How often the runner refreshes the in-flight gauges at most.
const GAUGE_INTERVAL: Duration = Duration::from_secs(1);
/// How long `run` waits, after its token fired, for the instances it drives to stop.
const STOP_GRACE: Duration = Duration::from_secs(10);

const NON_TERMINAL: &str = "('running', 'waiting', 'compensating', 'stuck')";

/// Creates, drives and operates saga instances in one service's database. Cheap to clone.
#[derive(Clone)]
pub struct Orchestrator {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    config: Config,
    definitions: RwLock<HashMap<&'static str, Arc<ErasedDefinition>>>,
    /// Instances a task of this orchestrator drives right now: one task per instance.
    active: Mutex<HashSet<Uuid>>,
    /// The id of each instance this process drives, when it reaches a terminal state: a
    /// waiter reads its instance again only when its own id comes.
    finished: tokio::sync::broadcast::Sender<Uuid>,
    /// Stops every driving task (when `run` ends).
    shutdown: CancellationToken,
}

/// The in-process claim of one instance; dropping it lets another task drive it.
struct Active {
    inner: Arc<Inner>,
    id: Uuid,
}

impl Drop for Active {
    fn drop(&mut self) {
        self.inner
            .active
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&self.id);
    }
}

enum Next {
    Continue,
    Stop { release: bool },
}

/// How long this holder's lease surely lasts, by the local clock: measured from before the
/// statement that extended it, so it never overestimates the database's `lease_until`.
struct Lease {
    length: Duration,
    valid_until: Instant,
}

impl Lease {
    fn extended_from(&mut self, sent: Instant) {
        self.valid_until = sent + self.length;
    }

    /// When the holder gives up rather than risk running past its lease.
    fn deadline(&self) -> Instant {
        self.valid_until - self.length / 10
    }
}

impl Orchestrator {
    pub fn new(pool: PgPool, config: Config) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                config,
                definitions: RwLock::new(HashMap::new()),
                active: Mutex::new(HashSet::new()),
                finished: tokio::sync::broadcast::channel(FINISHED_BACKLOG).0,
                shutdown: CancellationToken::new(),
            }),
        }
    }

    /// Adds a saga this orchestrator drives. Panics when a saga of that name is registered
    /// already or the definition has no steps.
    pub fn register<D: SagaData>(&mut self, definition: Definition<D>) {
        let erased = definition.erase();
        let mut definitions = self
            .inner
            .definitions
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        assert!(
            !definitions.contains_key(erased.name),
            "saga {} is registered twice",
            erased.name
        );
        definitions.insert(erased.name, Arc::new(erased));
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Creates an instance of `saga` in the caller's transaction (so that, say, an order row
    /// and its saga are created atomically), claimed by this replica. Nothing runs until
    /// [`Orchestrator::drive`] or the runner picks it up; should this replica die first, the
    /// runner of another takes it once the claim expires.
    ///
    /// The instance keeps the current span's trace context, or `trace` when spans are not
    /// exported (pass the request's incoming headers, `rpc::Context::trace`): its steps' spans
    /// are children of it, and [`StepContext::trace`] hands it to the steps, so the saga's
    /// data need not carry a copy.
    pub async fn create<D: SagaData>(
        &self,
        conn: &mut PgConnection,
        saga: &str,
        id: Uuid,
        data: &D,
        trace: &TraceHeaders,
    ) -> Result<(), Error> {
        let definition = self
            .inner
            .definition(saga)
            .ok_or_else(|| Error::UnknownSaga(saga.to_owned()))?;
        let data = serde_json::to_value(data)?;
        // The steps run later, from a poll or another replica: they join the trace of the
        // request creating the instance through the context kept with it.
        let trace = telemetry::propagation::current(trace);
        let inserted = sqlx::query(
            "INSERT INTO saga_instances
                 (id, saga, state, phase, step_index, current_step, data, lease_owner, lease_until,
                  traceparent, tracestate)
             VALUES ($1, $2, 'running', 'action', 0, $3, $4, $5,
                     now() + $6 * interval '1 millisecond', $7, $8)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(definition.name)
        .bind(definition.steps[0].name)
        .bind(data)
        .bind(&self.inner.config.owner)
        .bind(millis(self.inner.config.lease))
        .bind(&trace.traceparent)
        .bind(&trace.tracestate)
        .execute(&mut *conn)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(Error::IllegalState(format!(
                "saga instance {id} exists already"
            )));
        }
        metrics::counter!("saga_started_total", "saga" => definition.name).increment(1);
        Ok(())
    }

    /// Drives the instance now, in a task of this process, if no one else holds it: after
    /// the caller committed [`Orchestrator::create`], or to hurry one along. Returns at once;
    /// does nothing once [`Orchestrator::run`] has ended. [`Config::concurrency`] bounds the
    /// runner only, not these.
    pub fn drive(&self, id: Uuid) {
        if self.inner.shutdown.is_cancelled() {
            return;
        }
        let Some(active) = self.inner.activate(id) else {
            return;
        };
        tokio::spawn(async move {
            let inner = active.inner.clone();
            let sent = Instant::now();
            match inner.claim(id).await {
                Ok(true) => inner.drive(id, sent).await,
                Ok(false) => {}
                Err(error) => tracing::warn!(%id, %error, "claiming a saga instance failed"),
            }
            drop(active);
        });
    }

    /// Waits until the instance reaches a terminal state or `timeout` passes, then returns
    /// its summary as it stands.
    pub async fn wait(&self, id: Uuid, timeout: Duration) -> Result<Summary, Error> {
        let deadline = Instant::now() + timeout;
        let mut finished = self.inner.finished.subscribe();
        loop {
            let summary = self.summary(id).await?;
            if summary.state.is_terminal() || Instant::now() >= deadline {
                return Ok(summary);
            }
            // Woken when this instance ends here (another replica's end is seen by the poll),
            // not by every other instance that ends.
            let until = (Instant::now() + WAIT_POLL).min(deadline);
            loop {
                tokio::select! {
                    ended = finished.recv() => match ended {
                        Ok(ended) if ended != id => continue,
                        // Ours, or too many ended to tell: read it again.
                        _ => break,
                    },
                    _ = tokio::time::sleep_until(until) => break,
                }
            }
        }
    }

    /// Stores a durable signal for the instance and wakes it if it waits for one of that
    /// name (on whichever replica picks it up). A signal that comes before the step waits
    /// for it is kept and ends that wait at once.
    pub async fn signal(&self, id: Uuid, name: &str, payload: Value) -> Result<(), Error> {
        let mut tx = self.inner.pool.begin().await?;
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM saga_instances WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let state = state.ok_or(Error::NotFound)?;
        if state.parse::<State>().is_ok_and(State::is_terminal) {
            return Err(Error::IllegalState(format!(
                "saga instance {id} is {state}; it takes no signals"
            )));
        }
        sqlx::query("INSERT INTO saga_signals (instance_id, name, payload) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(name)
            .bind(payload)
            .execute(&mut *tx)
            .await?;
        let woken = sqlx::query(
            "UPDATE saga_instances SET wake_at = now(), updated_at = now()
             WHERE id = $1 AND state = 'waiting' AND wait_signal = $2",
        )
        .bind(id)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if woken.rows_affected() > 0 {
            self.drive(id);
        }
        Ok(())
    }

    /// The background runner: every poll interval it claims due instances (running, waiting,
    /// compensating or stuck, `wake_at` passed, no live lease) with `FOR UPDATE SKIP LOCKED`
    /// and drives them, up to [`Config::concurrency`] at once; it refreshes the in-flight
    /// gauges. A dead replica's instances are taken over once their lease expires.
    ///
    /// When `cancel` fires (or this future is dropped) every instance this orchestrator
    /// drives stops at once: a step in flight is abandoned and runs again later, and the
    /// leases are handed back so another replica takes over without waiting for them to
    /// expire. The orchestrator drives nothing after `run` returned.
    pub async fn run(self, cancel: CancellationToken) -> anyhow::Result<()> {
        let inner = self.inner;
        let stop_drivers = inner.shutdown.clone().drop_guard();
        let mut gauges_at = Instant::now();
        inner.register_counters();
        inner.refresh_gauges().await;
        loop {
            let free = inner
                .config
                .concurrency
                .saturating_sub(inner.active_count());
            if free > 0 {
                match inner.claim_due(free).await {
                    Ok(claimed) => {
                        for (id, sent) in claimed {
                            if let Some(active) = inner.activate(id) {
                                tokio::spawn(async move {
                                    let inner = active.inner.clone();
                                    inner.drive(id, sent).await;
                                    drop(active);
                                });
                            }
                        }
                    }
                    Err(error) => tracing::warn!(%error, "claiming due saga instances failed"),
                }
            }
            if gauges_at.elapsed() >= GAUGE_INTERVAL {
                gauges_at = Instant::now();
                inner.refresh_gauges().await;
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(inner.config.poll_interval) => {}
            }
        }
        drop(stop_drivers);
        let deadline = Instant::now() + STOP_GRACE;
        while inner.active_count() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Instances by state and/or saga, newest first, a page at a time.
    pub async fn list(&self, filter: &ListFilter) -> Result<Page<Summary>, Error> {
        let limit = match filter.limit {
            0 => 20,
            limit @ 1..=100 => limit,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "limit must be within 1..=100, not {other}"
                )));
            }
        };
        let after = filter.cursor.as_deref().map(decode_cursor).transpose()?;
        let rows: Vec<InstanceRow> = sqlx::query_as(
            "SELECT * FROM saga_instances
             WHERE ($1::text IS NULL OR state = $1)
               AND ($2::text IS NULL OR saga = $2)
               AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
             ORDER BY created_at DESC, id DESC
             LIMIT $5",
        )
        .bind(filter.state.map(State::as_str))
        .bind(filter.saga.as_deref())
        .bind(after.map(|(created_at, _)| created_at))
        .bind(after.map(|(_, id)| id))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.inner.pool)
        .await?;
        let more = rows.len() > limit as usize;
        let items: Vec<Summary> = rows
            .iter()
            .take(limit as usize)
            .map(InstanceRow::summary)
            .collect();
        let next_cursor = match (more, items.last()) {
            (true, Some(last)) => Some(encode_cursor(last)),
            _ => None,
        };
        Ok(Page { items, next_cursor })
    }

    /// The instance and every step it has started.
    pub async fn get(&self, id: Uuid) -> Result<Option<Detail>, Error> {
        let Some(row) = self.inner.load(id).await? else {
            return Ok(None);
        };
        let steps: Vec<StepRow> = sqlx::query_as(
            "SELECT name, step_index, phase, attempts, outcome, last_error, started_at, finished_at
             FROM saga_steps WHERE instance_id = $1
             ORDER BY started_at, phase, step_index DESC",
        )
        .bind(id)
        .fetch_all(&self.inner.pool)
        .await?;
        Ok(Some(Detail {
            summary: row.summary(),
            steps: steps.into_iter().map(StepRow::record).collect(),
        }))
    }

    /// Makes a stuck instance (a compensation failing) or a failed one due now with its
    /// attempts reset: for after the cause is fixed.
    pub async fn retry(&self, id: Uuid) -> Result<Summary, Error> {
        let row: Option<InstanceRow> = sqlx::query_as(
            "UPDATE saga_instances SET
                 state = CASE WHEN phase = 'action' THEN 'running' ELSE 'compensating' END,
                 attempts = 0, last_error = NULL, wake_at = now(), finished_at = NULL,
                 updated_at = now()
             WHERE id = $1 AND state IN ('stuck', 'failed')
             RETURNING *",
        )
        .bind(id)
        .fetch_optional(&self.inner.pool)
        .await?;
        match row {
            Some(row) => {
                self.drive(id);
                Ok(row.summary())
            }
            None => {
                let summary = self.summary(id).await?;
                Err(Error::IllegalState(format!(
                    "saga instance {id} is {}; only stuck and failed instances are retried",
                    summary.state
                )))
            }
        }
    }

    /// Stops an instance going forward: it compensates its completed steps with the refusal
    /// code `aborted` (detail `{"reason": reason}`). An instance that is waiting or between
    /// steps turns at once; one with a step in flight turns as soon as that step's outcome
    /// is recorded (the summary returned still shows it running). Aborting a compensating or
    /// terminal instance is an error; aborting twice is not.
    pub async fn abort(&self, id: Uuid, reason: &str) -> Result<Summary, Error> {
        let mut tx = self.inner.pool.begin().await?;
        let row: Option<InstanceRow> =
            sqlx::query_as("SELECT * FROM saga_instances WHERE id = $1 FOR UPDATE")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let row = row.ok_or(Error::NotFound)?;
        let state = row.state();
        if row.phase() != Phase::Action || state.is_terminal() {
            return Err(Error::IllegalState(format!(
                "saga instance {id} is {state}; only a running or waiting instance can be aborted"
            )));
        }
        let held =
            row.lease_owner.is_some() && row.lease_until.is_some_and(|until| until > Utc::now());
        let definition = self.inner.definition(&row.saga);
        let index = usize::try_from(row.step_index).ok();
        match (held, definition, index) {
            (false, Some(definition), Some(index)) => {
                let turned = transition::abort(&definition, &row, index, reason);
                write_transition(&mut tx, id, None, self.inner.config.lease, &turned, true).await?;
            }
            _ => {
                // The holder (or a replica that knows this saga) applies it at its next turn.
                sqlx::query(
                    "UPDATE saga_instances SET abort_reason = $2, wake_at = now(), updated_at = now()
                     WHERE id = $1",
                )
                .bind(id)
                .bind(reason)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        self.drive(id);
        self.summary(id).await
    }

    async fn summary(&self, id: Uuid) -> Result<Summary, Error> {
        self.inner
            .load(id)
            .await?
            .map(|row| row.summary())
            .ok_or(Error::NotFound)
    }
}

impl Inner {
    fn definition(&self, saga: &str) -> Option<Arc<ErasedDefinition>> {
        self.definitions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(saga)
            .cloned()
    }

    fn saga_names(&self) -> Vec<String> {
        self.definitions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .keys()
            .map(|name| (*name).to_owned())
            .collect()
    }

    fn active_count(&self) -> usize {
        self.active
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    fn active_ids(&self) -> Vec<Uuid> {
        self.active
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .copied()
            .collect()
    }

    /// Marks `id` as driven by a task of this process, unless one drives it already.
    fn activate(self: &Arc<Self>, id: Uuid) -> Option<Active> {
        let inserted = self
            .active
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(id);
        inserted.then(|| Active {
            inner: self.clone(),
            id,
        })
    }

    fn policy(&self, definition: &ErasedDefinition, index: usize) -> Policy {
        Policy {
            max_attempts: definition
                .steps
                .get(index)
                .and_then(|step| step.max_attempts)
                .unwrap_or(self.config.max_attempts)
                .max(1),
            backoff_base: self.config.backoff_base,
            backoff_max: self.config.backoff_max,
        }
    }

    async fn load(&self, id: Uuid) -> Result<Option<InstanceRow>, sqlx::Error> {
        sqlx::query_as("SELECT * FROM saga_instances WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
    }

    /// Takes the lease of one instance if no one else holds a live one.
    async fn claim(&self, id: Uuid) -> Result<bool, sqlx::Error> {
        let claimed = sqlx::query(&format!(
            "UPDATE saga_instances
             SET lease_owner = $2, lease_until = now() + $3 * interval '1 millisecond'
             WHERE id = $1 AND state IN {NON_TERMINAL}
               AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until < now())"
        ))
        .bind(id)
        .bind(&self.config.owner)
        .bind(millis(self.config.lease))
        .execute(&self.pool)
        .await?;
        Ok(claimed.rows_affected() == 1)
    }

    /// Takes the leases of up to `limit` due instances of the sagas registered here, skipping
    /// those this process drives already.
    async fn claim_due(&self, limit: usize) -> Result<Vec<(Uuid, Instant)>, sqlx::Error> {
        let sent = Instant::now();
        let ids: Vec<Uuid> = sqlx::query_scalar(&format!(
            "UPDATE saga_instances
             SET lease_owner = $1, lease_until = now() + $2 * interval '1 millisecond'
             WHERE id IN (
                 SELECT id FROM saga_instances
                 WHERE state IN {NON_TERMINAL} AND wake_at <= now()
                   AND (lease_owner IS NULL OR lease_until < now())
                   AND saga = ANY($3) AND NOT (id = ANY($4))
                 ORDER BY wake_at
                 LIMIT $5
                 FOR UPDATE SKIP LOCKED)
             RETURNING id"
        ))
        .bind(&self.config.owner)
        .bind(millis(self.config.lease))
        .bind(self.saga_names())
        .bind(self.active_ids())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().map(|id| (id, sent)).collect())
    }

    /// Hands the lease back, so that the runner (of any replica) picks the instance up when
    /// it is due, without waiting for the lease to expire.
    async fn release(&self, id: Uuid) {
        let released = sqlx::query(
            "UPDATE saga_instances SET lease_owner = NULL, lease_until = NULL
             WHERE id = $1 AND lease_owner = $2",
        )
        .bind(id)
        .bind(&self.config.owner)
        .execute(&self.pool)
        .await;
        if let Err(error) = released {
            tracing::warn!(%id, %error, "releasing a saga lease failed; it expires instead");
        }
    }

    /// Registers every counter of every registered saga at zero, so that dashboards and alert
    /// rules see 0 rather than no data until the first instance completes, compensates, fails
    /// or retries a step.
    fn register_counters(&self) {
        let definitions: Vec<Arc<ErasedDefinition>> = self
            .definitions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .values()
            .cloned()
            .collect();
        for definition in definitions {
            let saga = definition.name;
            for counter in [
                "saga_started_total",
                "saga_completed_total",
                "saga_compensated_total",
                "saga_failed_total",
            ] {
                metrics::counter!(counter, "saga" => saga).increment(0);
            }
            for step in &definition.steps {
                metrics::counter!("saga_step_retries_total", "saga" => saga, "step" => step.name)
                    .increment(0);
            }
        }
    }

    async fn refresh_gauges(&self) {
        // Per saga: in flight, stuck, the oldest's age in seconds.
        type Row = (String, i64, i64, Option<f64>);
        let rows: Result<Vec<Row>, _> = sqlx::query_as(&format!(
            "SELECT saga, count(*), count(*) FILTER (WHERE state = 'stuck'),
                    extract(epoch FROM now() - min(created_at))::float8
             FROM saga_instances WHERE state IN {NON_TERMINAL}
             GROUP BY saga"
        ))
        .fetch_all(&self.pool)
        .await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(error) => {
                tracing::warn!(%error, "reading the saga gauges failed");
                return;
            }
        };
        for saga in self.saga_names() {
            let (count, stuck, oldest) = rows
                .iter()
                .find(|(name, _, _, _)| *name == saga)
                .map(|(_, count, stuck, oldest)| {
                    (*count as f64, *stuck as f64, oldest.unwrap_or(0.0))
                })
                .unwrap_or((0.0, 0.0, 0.0));
            metrics::gauge!("saga_in_flight", "saga" => saga.clone()).set(count);
            metrics::gauge!("saga_stuck", "saga" => saga.clone()).set(stuck);
            metrics::gauge!("saga_oldest_in_flight_seconds", "saga" => saga).set(oldest);
        }
    }

    /// Drives a claimed instance step after step until it finishes, waits long, or this
    /// replica loses its lease or shuts down.
    async fn drive(self: &Arc<Self>, id: Uuid, claimed: Instant) {
        let mut lease = Lease {
            length: self.config.lease,
            valid_until: claimed + self.config.lease,
        };
        loop {
            match self.advance(id, &mut lease).await {
                Ok(Next::Continue) => {}
                Ok(Next::Stop { release }) => {
                    if release {
                        self.release(id).await;
                    }
                    return;
                }
                Err(error) => {
                    tracing::warn!(%id, %error, "driving a saga instance failed; it is picked up again");
                    self.release(id).await;
                    return;
                }
            }
        }
    }

    /// One turn: look at the instance, then run its due step and record the outcome (or
    /// wait a little, or apply an abort).
    async fn advance(&self, id: Uuid, lease: &mut Lease) -> Result<Next, sqlx::Error> {
        if self.shutdown.is_cancelled() {
            return Ok(Next::Stop { release: true });
        }
        let Some(row) = self.load(id).await? else {
            return Ok(Next::Stop { release: false });
        };
        if row.lease_owner.as_deref() != Some(self.config.owner.as_str()) {
            return Ok(Next::Stop { release: false });
        }
        let state = row.state();
        if state.is_terminal() {
            return Ok(Next::Stop { release: true });
        }
        let Some(definition) = self.definition(&row.saga) else {
            return Ok(Next::Stop { release: true });
        };
        let phase = row.phase();
        let found = usize::try_from(row.step_index).ok().and_then(|index| {
            definition
                .steps
                .get(index)
                .filter(|step| row.current_step.as_deref() == Some(step.name))
                .map(|step| (index, step))
        });
        let Some((index, step)) = found else {
            let error = format!(
                "step {} ({:?}) is not in the definition of saga {} any more",
                row.step_index, row.current_step, row.saga
            );
            return self
                .commit_plain(&row, transition::failed(&row, error))
                .await;
        };
        if phase == Phase::Action
            && let Some(reason) = &row.abort_reason
        {
            let turned = transition::abort(&definition, &row, index, reason);
            return self.commit_plain(&row, turned).await;
        }
        let Some(handler) = step.handler(phase) else {
            let error = format!("step {} has no compensation in this definition", step.name);
            return self
                .commit_plain(&row, transition::failed(&row, error))
                .await;
        };

        let now = Utc::now();
        if row.wake_at > now {
            let delay = (row.wake_at - now).to_std().unwrap_or_default();
            if delay > HOLD_LIMIT {
                return Ok(Next::Stop { release: true });
            }
            return Ok(
                match self.guarded(id, lease, tokio::time::sleep(delay)).await {
                    Some(()) => Next::Continue,
                    None => Next::Stop { release: true },
                },
            );
        }

        let signal: Option<(i64, Value)> = match &row.wait_signal {
            Some(name) => {
                sqlx::query_as(
                    "SELECT id, payload FROM saga_signals
                     WHERE instance_id = $1 AND name = $2 AND consumed_at IS NULL
                     ORDER BY id LIMIT 1",
                )
                .bind(id)
                .bind(name)
                .fetch_optional(&self.pool)
                .await?
            }
            None => None,
        };
        let ctx = StepContext {
            instance_id: id,
            saga: Arc::from(definition.name),
            step: step.name,
            phase,
            attempt: u32::try_from(row.attempts).unwrap_or(0) + 1,
            refusal: match phase {
                Phase::Action => None,
                Phase::Compensation => row
                    .refusal_code
                    .clone()
                    .map(|code| (code, row.refusal_detail.clone().unwrap_or(Value::Null))),
            },
            woken_by_deadline: row.step_waited && signal.is_none(),
            signal: signal.as_ref().map(|(_, payload)| payload.clone()),
            trace: TraceHeaders {
                traceparent: row.traceparent.clone(),
                tracestate: row.tracestate.clone(),
            },
        };
        let signal_id = signal.map(|(signal_id, _)| signal_id);
        // `<saga> <step>` (`checkout reserve_stock`; `compensate <saga> <step>` when undoing),
        // a child of the request that created the instance: see docs/ARCHITECTURE.md, "Traces".
        // INFO under the request target: exported whatever the log filter (see the telemetry
        // crate's logging policy), and in the logs at the usual `info`.
        let span = tracing::info_span!(
            target: telemetry::REQUEST_TARGET,
            "saga_step",
            otel.name = %step_span_name(definition.name, step.name, phase),
            otel.kind = "internal",
            saga = definition.name,
            step = step.name,
            phase = phase.as_str(),
            instance_id = %id,
            attempt = ctx.attempt,
        );
        telemetry::propagation::set_parent(&span, &ctx.trace);
        let turn = Turn {
            row: &row,
            definition: &definition,
            index,
            phase,
            signal_id,
            started_at: Utc::now(),
        };

        match handler {
            ErasedHandler::Remote(action) => {
                let sent = Instant::now();
                if !self.begin_attempt(&turn).await? {
                    return Ok(Next::Stop { release: false });
                }
                lease.extended_from(sent);
                let clock = Instant::now();
                let running = AssertUnwindSafe(action(ctx, row.data.clone()))
                    .catch_unwind()
                    .instrument(span);
                let Some(result) = self.guarded(id, lease, running).await else {
                    return Ok(Next::Stop { release: true });
                };
                observe_duration(&turn, clock);
                let result = result.unwrap_or_else(|panic| Err(panicked(panic)));
                let mut tx = self.pool.begin().await?;
                let sent = Instant::now();
                let Some(settled) = self.settle(&mut tx, &turn, result, false).await? else {
                    return Ok(Next::Stop { release: false });
                };
                tx.commit().await?;
                lease.extended_from(sent);
                Ok(self.after_commit(&turn, &settled).await)
            }
            ErasedHandler::Local(action) => {
                let mut tx = self.pool.begin().await?;
                let sent = Instant::now();
                // Locks the row for the step's transaction, so that no one else can claim
                // the instance while the step runs.
                let locked = sqlx::query(
                    "UPDATE saga_instances SET lease_until = now() + $3 * interval '1 millisecond'
                     WHERE id = $1 AND lease_owner = $2",
                )
                .bind(id)
                .bind(&self.config.owner)
                .bind(millis(self.config.lease))
                .execute(&mut *tx)
                .await?;
                if locked.rows_affected() != 1 {
                    return Ok(Next::Stop { release: false });
                }
                lease.extended_from(sent);
                let clock = Instant::now();
                let mut data = row.data.clone();
                let result = {
                    let running = AssertUnwindSafe(action.run(&mut tx, &ctx, &mut data))
                        .catch_unwind()
                        .instrument(span);
                    tokio::select! {
                        result = running => result.unwrap_or_else(|panic| Err(panicked(panic))),
                        _ = self.shutdown.cancelled() => return Ok(Next::Stop { release: true }),
                    }
                };
                observe_duration(&turn, clock);
                let failure = match result {
                    Ok(()) => {
                        let sent = Instant::now();
                        let Some(settled) = self
                            .settle(&mut tx, &turn, Ok(Outcome::Done(data)), true)
                            .await?
                        else {
                            return Ok(Next::Stop { release: false });
                        };
                        match tx.commit().await {
                            Ok(()) => {
                                lease.extended_from(sent);
                                return Ok(self.after_commit(&turn, &settled).await);
                            }
                            // The step's writes are gone with the transaction: an attempt
                            // that failed like any other.
                            Err(error) => StepFailure::Step(StepError::transient(format!(
                                "committing the step failed: {error}"
                            ))),
                        }
                    }
                    Err(failure) => {
                        tx.rollback().await?;
                        failure
                    }
                };
                let mut tx = self.pool.begin().await?;
                let sent = Instant::now();
                let Some(settled) = self.settle(&mut tx, &turn, Err(failure), true).await? else {
                    return Ok(Next::Stop { release: false });
                };
                tx.commit().await?;
                lease.extended_from(sent);
                Ok(self.after_commit(&turn, &settled).await)
            }
        }
    }

    /// Records that an attempt of a remote step starts, before it runs: an attempt cut short
    /// by a crash still counts towards the step's bound, and operators see it in flight.
    async fn begin_attempt(&self, turn: &Turn<'_>) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE saga_instances SET
                 attempts = attempts + 1,
                 state = CASE WHEN phase = 'action' THEN 'running'
                              WHEN state = 'stuck' THEN 'stuck' ELSE 'compensating' END,
                 lease_until = now() + $3 * interval '1 millisecond',
                 updated_at = now()
             WHERE id = $1 AND lease_owner = $2",
        )
        .bind(turn.row.id)
        .bind(&self.config.owner)
        .bind(millis(self.config.lease))
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Ok(false);
        }
        write_step(
            &mut tx,
            turn,
            &StepWrite {
                outcome: StepOutcome::Pending,
                last_error: None,
                finished: false,
                retry: false,
            },
            true,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Writes the outcome of a step and the instance's next state through `conn` (in the
    /// transaction of a local step, if it was one). `None` when this replica no longer
    /// holds the instance (nothing is written then).
    async fn settle(
        &self,
        conn: &mut PgConnection,
        turn: &Turn<'_>,
        result: Result<Outcome<Value>, StepFailure>,
        count_attempt: bool,
    ) -> Result<Option<(Transition, StepWrite)>, sqlx::Error> {
        let policy = self.policy(turn.definition, turn.index);
        let (next, step_write) = transition::after_step(
            turn.definition,
            turn.row,
            turn.index,
            turn.phase,
            &policy,
            result,
        );
        if let Some(signal_id) = turn.signal_id
            && step_write.outcome != StepOutcome::FailedAttempt
        {
            sqlx::query("UPDATE saga_signals SET consumed_at = now() WHERE id = $1")
                .bind(signal_id)
                .execute(&mut *conn)
                .await?;
        }
        let written = write_transition(
            conn,
            turn.row.id,
            Some(&self.config.owner),
            self.config.lease,
            &next,
            false,
        )
        .await?;
        if !written {
            return Ok(None);
        }
        write_step(conn, turn, &step_write, count_attempt).await?;
        Ok(Some((next, step_write)))
    }

    /// Applies a transition that runs no step (an abort, a failure) in its own transaction.
    async fn commit_plain(&self, row: &InstanceRow, next: Transition) -> Result<Next, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let written = write_transition(
            &mut tx,
            row.id,
            Some(&self.config.owner),
            self.config.lease,
            &next,
            false,
        )
        .await?;
        tx.commit().await?;
        if !written {
            return Ok(Next::Stop { release: false });
        }
        self.count_state_change(row, &next);
        Ok(Next::Continue)
    }

    fn count_state_change(&self, row: &InstanceRow, next: &Transition) {
        let saga = row.saga.clone();
        match next.state {
            State::Completed => {
                metrics::counter!("saga_completed_total", "saga" => saga).increment(1)
            }
            State::Compensated => {
                metrics::counter!("saga_compensated_total", "saga" => saga).increment(1)
            }
            State::Failed => metrics::counter!("saga_failed_total", "saga" => saga).increment(1),
            State::Stuck if row.state() != State::Stuck => {
                tracing::error!(
                    instance_id = %row.id,
                    saga = %row.saga,
                    step = ?row.current_step,
                    error = ?next.last_error,
                    "a saga compensation keeps failing; the instance is stuck"
                );
                metrics::counter!("saga_failed_total", "saga" => saga).increment(1)
            }
            _ => {}
        }
        if next.state.is_terminal() {
            // Nobody waiting is no error.
            let _ = self.finished.send(row.id);
        }
    }

    async fn after_commit(
        &self,
        turn: &Turn<'_>,
        (next, step_write): &(Transition, StepWrite),
    ) -> Next {
        self.count_state_change(turn.row, next);
        let step = turn.definition.steps[turn.index].name;
        if step_write.retry {
            metrics::counter!(
                "saga_step_retries_total",
                "saga" => turn.definition.name,
                "step" => step,
            )
            .increment(1);
        }
        if step_write.outcome == StepOutcome::Done
            && let Some(hold) = &self.config.hold_after
        {
            let label = match turn.phase {
                Phase::Action => format!("{}:{step}", turn.definition.name),
                Phase::Compensation => format!("{}:{step}:compensate", turn.definition.name),
            };
            if *hold == label {
                eprintln!("saga {} holding after {step}", turn.row.id);
                self.shutdown.cancelled().await;
                return Next::Stop { release: false };
            }
        }
        Next::Continue
    }

    /// Runs `work` while keeping the lease alive; `None` (and `work` dropped) when the lease
    /// is lost or about to expire, or the orchestrator shuts down.
    async fn guarded<F: std::future::Future>(
        &self,
        id: Uuid,
        lease: &mut Lease,
        work: F,
    ) -> Option<F::Output> {
        tokio::pin!(work);
        let period = self.config.lease / 3;
        let mut renew_at = lease.valid_until - self.config.lease + period;
        loop {
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return None,
                output = &mut work => return Some(output),
                _ = tokio::time::sleep_until(renew_at) => {
                    let sent = Instant::now();
                    let left = lease.deadline().saturating_duration_since(sent);
                    if left.is_zero() {
                        tracing::warn!(%id, "saga lease not renewed in time; giving the instance up");
                        return None;
                    }
                    let renewed = tokio::time::timeout(
                        left,
                        sqlx::query(
                            "UPDATE saga_instances SET lease_until = now() + $3 * interval '1 millisecond'
                             WHERE id = $1 AND lease_owner = $2",
                        )
                        .bind(id)
                        .bind(&self.config.owner)
                        .bind(millis(self.config.lease))
                        .execute(&self.pool),
                    )
                    .await;
                    match renewed {
                        Ok(Ok(done)) if done.rows_affected() == 1 => {
                            lease.extended_from(sent);
                            renew_at = sent + period;
                        }
                        Ok(Ok(_)) => return None,
                        Ok(Err(error)) => {
                            tracing::warn!(%id, %error, "renewing a saga lease failed");
                            renew_at = Instant::now() + Duration::from_millis(100).min(period);
                        }
                        Err(_) => return None,
                    }
                }
            }
        }
    }
}

/// The step a turn runs, and what it was started from.
struct Turn<'a> {
    row: &'a InstanceRow,
    definition: &'a ErasedDefinition,
    index: usize,
    phase: Phase,
    signal_id: Option<i64>,
    started_at: chrono::DateTime<Utc>,
}

/// The span name of a step: `checkout reserve_stock`, `compensate checkout reserve_stock`.
fn step_span_name(saga: &str, step: &str, phase: Phase) -> String {
    match phase {
        Phase::Action => format!("{saga} {step}"),
        Phase::Compensation => format!("compensate {saga} {step}"),
    }
}

fn observe_duration(turn: &Turn<'_>, clock: Instant) {
    metrics::histogram!(
        "saga_step_duration_seconds",
        "saga" => turn.definition.name,
        "step" => turn.definition.steps[turn.index].name,
        "phase" => turn.phase.as_str(),
    )
    .record(clock.elapsed().as_secs_f64());
}

fn panicked(panic: Box<dyn std::any::Any + Send>) -> StepFailure {
    let message = panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned());
    StepFailure::Step(StepError::Transient(format!(
        "the step panicked: {message}"
    )))
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Writes `next` to the instance: only while `owner` holds it (any holder with `None`, for
/// an operator's change under the row lock). `release` hands the lease back too.
async fn write_transition(
    conn: &mut PgConnection,
    id: Uuid,
    owner: Option<&str>,
    lease: Duration,
    next: &Transition,
    release: bool,
) -> Result<bool, sqlx::Error> {
    let (wake_at, wake_ms) = match &next.wake {
        Wake::Now => (None, 0),
        Wake::After(delay) => (None, millis(*delay)),
        Wake::At(at) => (Some(*at), 0),
    };
    let finished = next.state.is_terminal();
    let (refusal_code, refusal_detail) = match &next.refusal {
        Some((code, detail)) => (Some(code.as_str()), Some(detail)),
        None => (None, None),
    };
    let updated = sqlx::query(
        "UPDATE saga_instances SET
             state = $3, phase = $4, step_index = $5, current_step = $6,
             data = COALESCE($7, data), attempts = $8, step_waited = $9, last_error = $10,
             refusal_code = CASE WHEN $11 THEN $12 ELSE refusal_code END,
             refusal_detail = CASE WHEN $11 THEN $13 ELSE refusal_detail END,
             abort_reason = CASE WHEN $14 OR $15 THEN NULL ELSE abort_reason END,
             wait_signal = $16,
             wake_at = CASE
                 WHEN $16::text IS NOT NULL AND EXISTS (
                     SELECT 1 FROM saga_signals s
                     WHERE s.instance_id = $1 AND s.name = $16 AND s.consumed_at IS NULL)
                     THEN now()
                 WHEN abort_reason IS NOT NULL AND NOT ($14 OR $15) THEN now()
                 ELSE COALESCE($17, now() + $18 * interval '1 millisecond')
             END,
             lease_owner = CASE WHEN $15 OR $19 THEN NULL ELSE lease_owner END,
             lease_until = CASE WHEN $15 OR $19 THEN NULL
                                ELSE now() + $20 * interval '1 millisecond' END,
             updated_at = now(),
             finished_at = CASE WHEN $15 THEN now() END
         WHERE id = $1 AND ($2::text IS NULL OR lease_owner = $2)",
    )
    .bind(id)
    .bind(owner)
    .bind(next.state.as_str())
    .bind(next.phase.as_str())
    .bind(next.step_index)
    .bind(next.current_step.as_deref())
    .bind(next.data.as_ref())
    .bind(next.attempts)
    .bind(next.step_waited)
    .bind(next.last_error.as_deref())
    .bind(next.refusal.is_some())
    .bind(refusal_code)
    .bind(refusal_detail)
    .bind(next.clear_abort)
    .bind(finished)
    .bind(next.wait_signal.as_deref())
    .bind(wake_at)
    .bind(wake_ms)
    .bind(release)
    .bind(millis(lease))
    .execute(&mut *conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

async fn write_step(
    conn: &mut PgConnection,
    turn: &Turn<'_>,
    step: &StepWrite,
    count_attempt: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO saga_steps
             (instance_id, step_index, phase, name, attempts, outcome, last_error, started_at,
              finished_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $9 THEN now() END)
         ON CONFLICT (instance_id, step_index, phase) DO UPDATE SET
             name = EXCLUDED.name,
             attempts = saga_steps.attempts + $5,
             outcome = EXCLUDED.outcome,
             last_error = COALESCE(EXCLUDED.last_error, saga_steps.last_error),
             finished_at = EXCLUDED.finished_at",
    )
    .bind(turn.row.id)
    .bind(i32::try_from(turn.index).unwrap_or(i32::MAX))
    .bind(turn.phase.as_str())
    .bind(turn.definition.steps[turn.index].name)
    .bind(i32::from(count_attempt))
    .bind(step.outcome.as_str())
    .bind(step.last_error.as_deref())
    .bind(turn.started_at)
    .bind(step.finished)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// `<microseconds since the epoch>.<id>` of the last item of a page: opaque to callers.
fn encode_cursor(last: &Summary) -> String {
    format!(
        "{}.{}",
        last.created_at.timestamp_micros(),
        last.id.simple()
    )
}

fn decode_cursor(cursor: &str) -> Result<(chrono::DateTime<Utc>, Uuid), Error> {
    let invalid = || Error::InvalidArgument(format!("invalid cursor {cursor:?}"));
    let (micros, id) = cursor.split_once('.').ok_or_else(invalid)?;
    let micros: i64 = micros.parse().map_err(|_| invalid())?;
    let created_at = chrono::DateTime::from_timestamp_micros(micros).ok_or_else(invalid)?;
    let id = Uuid::parse_str(id).map_err(|_| invalid())?;
    Ok((created_at, id))
}
