//! `cargo xtask saga list|show|retry|abort`: the order service's saga instances, seen and
//! operated as an admin.
//!
//! It calls the order service's admin methods over NATS with the typed client, as the operator
//! (the dev stack's operator key unless told otherwise), on behalf of the dev admin: the
//! principal travels in the request's headers, as the gateway would set it after verifying an
//! admin's token. It holds no saga logic: every rule (what may be retried or aborted) is the
//! service's.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use api::order::{
    AbortSagaRequest, GetSagaRequest, ListSagasRequest, ListSagasResponse, OrderClient,
    RetrySagaRequest, Saga, SagaStep,
};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};

use crate::dev_keys::Role;

#[derive(Args, Debug)]
pub struct SagaArgs {
    #[command(subcommand)]
    pub command: SagaCommand,
    /// Print the service's reply as JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// NATS, as the operator: the dev stack's operator key unless `--nats-nkey-file` says
    /// otherwise.
    #[command(flatten)]
    pub nats: config::NatsArgs,
}

#[derive(Subcommand, Debug)]
pub enum SagaCommand {
    /// List saga instances, newest first: id, saga, state, current step, attempts, age, last
    /// error.
    List {
        /// Only those in this state.
        #[arg(long, value_enum)]
        state: Option<SagaState>,
        /// Only those of this saga ("checkout", "cancellation").
        #[arg(long)]
        saga: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
    },
    /// One saga instance with every step: phase, outcome, attempts, timings, errors.
    Show { id: uuid::Uuid },
    /// Run a stuck or failed saga's current step again now, with its attempts reset.
    Retry { id: uuid::Uuid },
    /// Stop a running saga: it compensates what it did.
    Abort {
        id: uuid::Uuid,
        /// Why, kept with the saga.
        #[arg(long)]
        reason: String,
    },
}

/// The states the order service lists sagas by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SagaState {
    Running,
    Waiting,
    Compensating,
    Completed,
    Compensated,
    Stuck,
    Failed,
}

impl SagaState {
    fn as_str(self) -> &'static str {
        match self {
            SagaState::Running => "running",
            SagaState::Waiting => "waiting",
            SagaState::Compensating => "compensating",
            SagaState::Completed => "completed",
            SagaState::Compensated => "compensated",
            SagaState::Stuck => "stuck",
            SagaState::Failed => "failed",
        }
    }
}

/// The service's page size limit.
const MAX_PAGE_SIZE: u32 = 100;
/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// How much of an error a table shows; `show` prints them whole below its table.
const ERROR_WIDTH: usize = 60;

pub fn run(args: SagaArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let nats = crate::layout::Layout::discover()
            .operator_nats(args.nats)
            .connect("operator", "xtask-saga")
            .await?;
        let client = OrderClient::new(rpc::Client::new(nats).with_default_timeout(CALL_TIMEOUT));
        let json = args.json;
        match args.command {
            SagaCommand::List { state, saga, limit } => {
                let listed = list(&client, state, saga.unwrap_or_default(), limit).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&listed)?);
                } else {
                    print!("{}", list_table(&listed, Utc::now()));
                }
            }
            SagaCommand::Show { id } => {
                let request = GetSagaRequest { id: id.to_string() };
                let saga = answer(client.get_saga(&admin(), &request).await)?;
                print_saga(&saga, json, None)?;
            }
            SagaCommand::Retry { id } => {
                let request = RetrySagaRequest { id: id.to_string() };
                let saga = answer(client.retry_saga(&admin(), &request).await)?;
                print_saga(&saga, json, Some("retried"))?;
            }
            SagaCommand::Abort { id, reason } => {
                let request = AbortSagaRequest {
                    id: id.to_string(),
                    reason,
                };
                let saga = answer(client.abort_saga(&admin(), &request).await)?;
                print_saga(&saga, json, Some("aborted"))?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Up to `limit` sagas, page after page; `next_cursor` is set when more were left.
async fn list(
    client: &OrderClient,
    state: Option<SagaState>,
    saga: String,
    limit: u32,
) -> anyhow::Result<ListSagasResponse> {
    let mut listed = ListSagasResponse::default();
    loop {
        let left = limit as usize - listed.sagas.len();
        let request = ListSagasRequest {
            state: state.map(SagaState::as_str).unwrap_or_default().to_owned(),
            saga: saga.clone(),
            page_size: left.min(MAX_PAGE_SIZE as usize) as i32,
            cursor: std::mem::take(&mut listed.next_cursor),
        };
        let page = answer(client.list_sagas(&admin(), &request).await)?;
        // An empty page ends the listing even with a cursor, so a confused cursor cannot
        // loop for ever.
        let empty = page.sagas.is_empty();
        listed.sagas.extend(page.sagas);
        listed.next_cursor = page.next_cursor;
        if empty || listed.next_cursor.is_empty() || listed.sagas.len() >= limit as usize {
            listed.sagas.truncate(limit as usize);
            return Ok(listed);
        }
    }
}

/// A call on behalf of the dev admin, as the gateway makes it for an admin's token.
fn admin() -> rpc::Context {
    rpc::Context::background()
        .with_principal(rpc::Principal {
            user_id: Role::Admin.dev_subject().to_string(),
            roles: vec![rpc::roles::ADMIN.to_owned()],
        })
        .with_timeout(CALL_TIMEOUT)
}

/// The service's answer, with a hint when nobody answered.
fn answer<T>(result: Result<T, rpc::Error>) -> anyhow::Result<T> {
    result.map_err(|error| match error.code() {
        rpc::ErrorCode::Unavailable | rpc::ErrorCode::DeadlineExceeded => anyhow::anyhow!(
            "the order service did not answer ({error}): is it running? `make up` starts it"
        ),
        _ => anyhow::Error::new(error).context("the order service refused"),
    })
}

fn print_saga(saga: &Saga, json: bool, done: Option<&str>) -> anyhow::Result<()> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(saga).context("writing the saga as JSON")?
        );
        return Ok(());
    }
    if let Some(done) = done {
        println!("==> {done} {} saga {}", saga.saga, saga.id);
        println!();
    }
    print!("{}", saga_summary(saga, Utc::now()));
    Ok(())
}

/// The `list` table, with a line saying when there were more than shown.
fn list_table(listed: &ListSagasResponse, now: DateTime<Utc>) -> String {
    if listed.sagas.is_empty() {
        return "no sagas\n".to_owned();
    }
    let rows = listed
        .sagas
        .iter()
        .map(|saga| {
            vec![
                saga.id.clone(),
                saga.saga.clone(),
                saga.state.clone(),
                or_dash(&saga.current_step),
                saga.attempts.to_string(),
                at(saga.created_at.as_ref()).map_or_else(|| "-".to_owned(), |at| age(now - at)),
                or_dash(&truncate(&saga.last_error, ERROR_WIDTH)),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "ID",
            "SAGA",
            "STATE",
            "STEP",
            "ATTEMPTS",
            "AGE",
            "LAST ERROR",
        ],
        rows,
    );
    if !listed.next_cursor.is_empty() {
        out.push_str(&format!(
            "(more than {}: raise --limit or narrow with --state/--saga)\n",
            listed.sagas.len()
        ));
    }
    out
}

/// `show`'s (and `retry`'s, `abort`'s) view of one saga: its fields, then its steps, then each
/// step's error in full.
fn saga_summary(saga: &Saga, now: DateTime<Utc>) -> String {
    let when = |timestamp| match at(timestamp) {
        Some(at) => format!("{} ({} ago)", clock(at), age(now - at)),
        None => "-".to_owned(),
    };
    let mut out = String::new();
    let mut line = |label: &str, value: String| out.push_str(&format!("{label:<11} {value}\n"));
    line("saga", format!("{} {}", saga.saga, saga.id));
    let state = if saga.current_step.is_empty() {
        saga.state.clone()
    } else {
        format!(
            "{} (step {}, attempt {})",
            saga.state, saga.current_step, saga.attempts
        )
    };
    line("state", state);
    line("created", when(saga.created_at.as_ref()));
    line("updated", when(saga.updated_at.as_ref()));
    line("finished", when(saga.finished_at.as_ref()));
    if !saga.last_error.is_empty() {
        line("last error", saga.last_error.clone());
    }
    if !saga.refusal_code.is_empty() || !saga.refusal_detail.is_empty() {
        line(
            "refusal",
            [saga.refusal_code.as_str(), saga.refusal_detail.as_str()]
                .into_iter()
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join(": "),
        );
    }
    if saga.steps.is_empty() {
        return out;
    }
    out.push('\n');
    let rows = saga
        .steps
        .iter()
        .map(|step| {
            vec![
                step.name.clone(),
                step.phase.clone(),
                step.outcome.clone(),
                step.attempts.to_string(),
                at(step.started_at.as_ref()).map_or_else(|| "-".to_owned(), clock),
                at(step.finished_at.as_ref()).map_or_else(|| "-".to_owned(), clock),
                step_duration(step),
                or_dash(&truncate(&step.last_error, ERROR_WIDTH)),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "STEP",
            "PHASE",
            "OUTCOME",
            "ATTEMPTS",
            "STARTED",
            "FINISHED",
            "DURATION",
            "LAST ERROR",
        ],
        rows,
    ));
    let long_errors: Vec<&SagaStep> = saga
        .steps
        .iter()
        .filter(|step| step.last_error.chars().count() > ERROR_WIDTH)
        .collect();
    if !long_errors.is_empty() {
        out.push_str("\nerrors in full:\n");
        for step in long_errors {
            out.push_str(&format!(
                "  {} ({}): {}\n",
                step.name, step.phase, step.last_error
            ));
        }
    }
    out
}

/// Left-aligned columns two spaces apart; the last one is not padded.
fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|header| header.len()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let headers = headers.iter().map(|header| header.to_string()).collect();
    let mut out = String::new();
    for row in std::iter::once(headers).chain(rows) {
        let last = row.len().saturating_sub(1);
        let mut line = String::new();
        for (index, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if index == last {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn at(timestamp: Option<&api::Timestamp>) -> Option<DateTime<Utc>> {
    let timestamp = timestamp?;
    DateTime::from_timestamp(timestamp.seconds, u32::try_from(timestamp.nanos).ok()?)
}

fn clock(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// How long ago, in the largest unit that fits: `42 s`, `5 min`, `3 h`, `2 d`.
fn age(elapsed: chrono::TimeDelta) -> String {
    let seconds = elapsed.num_seconds().max(0);
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min", seconds / 60),
        3600..86400 => format!("{} h", seconds / 3600),
        _ => format!("{} d", seconds / 86400),
    }
}

/// A step's duration, `-` until it has run.
fn step_duration(step: &SagaStep) -> String {
    match step.duration_ms {
        ..=0 if step.finished_at.is_none() => "-".to_owned(),
        ..1000 => format!("{} ms", step.duration_ms.max(0)),
        ms => format!("{:.1} s", ms as f64 / 1000.0),
    }
}

fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.to_owned()
    }
}

/// At most `width` characters of the first line, with `…` when cut.
fn truncate(text: &str, width: usize) -> String {
    let first_line = text.lines().next().unwrap_or_default();
    if first_line.chars().count() <= width && first_line.len() == text.trim_end().len() {
        return first_line.to_owned();
    }
    let kept: String = first_line.chars().take(width.saturating_sub(1)).collect();
    format!("{kept}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timestamp(text: &str) -> Option<api::Timestamp> {
        api::timestamp(text.parse().unwrap())
    }

    fn stuck_checkout() -> Saga {
        Saga {
            id: "0190aaaa-0000-7000-8000-000000000001".into(),
            saga: "checkout".into(),
            state: "stuck".into(),
            current_step: "authorise_payment".into(),
            attempts: 5,
            last_error: "payment.authorise_payment: unavailable: no service is answering on payment.authorise_payment".into(),
            created_at: timestamp("2025-03-01T10:00:00Z"),
            updated_at: timestamp("2025-03-01T10:04:30Z"),
            ..Default::default()
        }
    }

    #[test]
    fn the_list_is_a_table_with_ages_and_cut_errors() {
        let now = "2025-03-01T10:05:00Z".parse().unwrap();
        let listed = ListSagasResponse {
            sagas: vec![
                stuck_checkout(),
                Saga {
                    id: "0190aaaa-0000-7000-8000-000000000002".into(),
                    saga: "cancellation".into(),
                    state: "completed".into(),
                    attempts: 0,
                    created_at: timestamp("2025-02-27T09:00:00Z"),
                    finished_at: timestamp("2025-02-27T09:00:01Z"),
                    ..Default::default()
                },
            ],
            next_cursor: String::new(),
        };
        assert_eq!(
            list_table(&listed, now),
            "\
ID                                    SAGA          STATE      STEP               ATTEMPTS  AGE    LAST ERROR
0190aaaa-0000-7000-8000-000000000001  checkout      stuck      authorise_payment  5         5 min  payment.authorise_payment: unavailable: no service is answe…
0190aaaa-0000-7000-8000-000000000002  cancellation  completed  -                  0         2 d    -
"
        );
        let more = ListSagasResponse {
            next_cursor: "c2".into(),
            ..listed
        };
        assert!(
            list_table(&more, now)
                .ends_with("(more than 2: raise --limit or narrow with --state/--saga)\n")
        );
        assert_eq!(list_table(&ListSagasResponse::default(), now), "no sagas\n");
    }

    #[test]
    fn a_saga_is_shown_with_its_steps_and_their_errors_in_full() {
        let now = "2025-03-01T10:05:00Z".parse().unwrap();
        let long_error = "payment.authorise_payment: unavailable: no service is answering on payment.authorise_payment";
        let saga = Saga {
            refusal_code: "failed_precondition".into(),
            refusal_detail: r#"{"reason":"card_declined"}"#.into(),
            steps: vec![
                SagaStep {
                    name: "reserve_stock".into(),
                    phase: "action".into(),
                    attempts: 1,
                    outcome: "done".into(),
                    started_at: timestamp("2025-03-01T10:00:00Z"),
                    finished_at: timestamp("2025-03-01T10:00:00.250Z"),
                    duration_ms: 250,
                    ..Default::default()
                },
                SagaStep {
                    name: "authorise_payment".into(),
                    phase: "action".into(),
                    attempts: 5,
                    outcome: "failed".into(),
                    last_error: long_error.into(),
                    started_at: timestamp("2025-03-01T10:00:01Z"),
                    finished_at: timestamp("2025-03-01T10:04:30Z"),
                    duration_ms: 269_000,
                },
                SagaStep {
                    name: "commit".into(),
                    phase: "action".into(),
                    outcome: "pending".into(),
                    ..Default::default()
                },
            ],
            ..stuck_checkout()
        };
        assert_eq!(
            saga_summary(&saga, now),
            format!(
                "\
saga        checkout 0190aaaa-0000-7000-8000-000000000001
state       stuck (step authorise_payment, attempt 5)
created     2025-03-01 10:00:00 (5 min ago)
updated     2025-03-01 10:04:30 (30 s ago)
finished    -
last error  {long_error}
refusal     failed_precondition: {{\"reason\":\"card_declined\"}}

STEP               PHASE   OUTCOME  ATTEMPTS  STARTED              FINISHED             DURATION  LAST ERROR
reserve_stock      action  done     1         2025-03-01 10:00:00  2025-03-01 10:00:00  250 ms    -
authorise_payment  action  failed   5         2025-03-01 10:00:01  2025-03-01 10:04:30  269.0 s   payment.authorise_payment: unavailable: no service is answe…
commit             action  pending  0         -                    -                    -         -

errors in full:
  authorise_payment (action): {long_error}
"
            )
        );
        // One that ended has no current step, and a steps-less reply no step table.
        let ended = Saga {
            state: "completed".into(),
            current_step: String::new(),
            last_error: String::new(),
            finished_at: timestamp("2025-03-01T10:04:59Z"),
            ..stuck_checkout()
        };
        let summary = saga_summary(&ended, now);
        assert!(summary.contains("state       completed\n"), "{summary}");
        assert!(
            summary.ends_with("finished    2025-03-01 10:04:59 (1 s ago)\n"),
            "{summary}"
        );
    }

    #[test]
    fn errors_are_cut_to_their_first_line() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("exactly ten", 11), "exactly ten");
        assert_eq!(truncate("a longer message", 8), "a longe…");
        assert_eq!(truncate("first\nsecond", 20), "first…");
        assert_eq!(truncate("", 5), "");
    }

    #[test]
    fn the_json_is_the_services_own() {
        let json = serde_json::to_value(stuck_checkout()).unwrap();
        assert_eq!(json["current_step"], "authorise_payment");
        assert_eq!(json["created_at"], "2025-03-01T10:00:00+00:00");
    }

    #[test]
    fn an_absent_service_is_named_with_a_hint() {
        let error = answer::<()>(Err(rpc::Error::unavailable(
            "no service is answering on order.list_sagas",
        )))
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "the order service did not answer (unavailable: no service is answering on order.list_sagas): is it running? `make up` starts it"
        );
        let refused = answer::<()>(Err(rpc::Error::not_found("no such saga"))).unwrap_err();
        assert_eq!(
            format!("{refused:#}"),
            "the order service refused: not_found: no such saga"
        );
    }
}
