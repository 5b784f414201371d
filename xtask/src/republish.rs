//! `cargo xtask events republish`: re-publishes a service's kept outbox rows.
//!
//! After a broker lost messages it had acknowledged (a crash before they reached disk), the
//! outbox rows, kept for the relay's retention after publishing, are the source of truth.
//! Each row goes out again with its original `Nats-Msg-Id`, so messages the stream still has
//! inside its duplicate window are dropped, and the others are stored again.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

#[derive(Args, Debug)]
pub struct EventsArgs {
    #[command(subcommand)]
    pub command: EventsCommand,
}

#[derive(Subcommand, Debug)]
pub enum EventsCommand {
    /// Re-publish the events a service kept in its outbox since a time (safe to repeat).
    Republish(RepublishArgs),
}

#[derive(Args, Debug)]
pub struct RepublishArgs {
    /// The service whose outbox to read: its database is named after it on the dev stack.
    #[arg(long)]
    pub service: String,
    /// From when: an RFC 3339 time (2024-05-01T12:00:00Z) or a duration back from now
    /// (30m, 2h, 1d).
    #[arg(long, value_parser = parse_since)]
    pub since: DateTime<Utc>,
    /// The service's database; postgres://postgres@127.0.0.1:5432/<service> by default.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// NATS, as the operator: the dev stack's operator key unless `--nats-nkey-file` says
    /// otherwise.
    #[command(flatten)]
    pub nats: config::NatsArgs,
}

pub fn run(args: EventsArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        EventsCommand::Republish(args) => republish(args),
    }
}

fn republish(args: RepublishArgs) -> anyhow::Result<ExitCode> {
    let database_url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("postgres://postgres@127.0.0.1:5432/{}", args.service));
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let pool = sqlx::PgPool::connect(&database_url)
            .await
            .with_context(|| format!("connecting to the database of {}", args.service))?;
        let client = crate::layout::Layout::discover()
            .operator_nats(args.nats.clone())
            .connect("operator", "xtask-events")
            .await?;
        let jetstream = async_nats::jetstream::new(client);
        let sent = events::outbox::republish_since(&pool, &jetstream, args.since).await?;
        println!(
            "re-published {sent} event(s) of {} kept since {}",
            args.service,
            args.since.to_rfc3339()
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// An RFC 3339 time, or a duration back from now: `<n>s`, `<n>m`, `<n>h` or `<n>d`.
fn parse_since(value: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(value) {
        return Ok(at.with_timezone(&Utc));
    }
    let (number, unit) = value.split_at(value.len().saturating_sub(1));
    let Ok(number) = number.parse::<i64>() else {
        bail!("{value:?} is neither an RFC 3339 time nor a duration like 30m, 2h or 1d");
    };
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => bail!("{value:?}: the unit must be s, m, h or d"),
    };
    Ok(Utc::now() - chrono::Duration::seconds(number.saturating_mul(seconds)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_time_or_a_duration_back_from_now() {
        assert_eq!(
            parse_since("2024-05-01T12:00:00Z").unwrap().to_rfc3339(),
            "2024-05-01T12:00:00+00:00"
        );
        let two_hours_ago = Utc::now() - chrono::Duration::hours(2);
        let parsed = parse_since("2h").unwrap();
        assert!((parsed - two_hours_ago).num_seconds().abs() <= 2);
        assert!(parse_since("yesterday").is_err());
        assert!(parse_since("5w").is_err());
    }

    /// The command against real servers: a row the relay published, lost by the broker, is
    /// stored again, with its original id.
    #[test]
    fn republish_sends_kept_rows_again() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let (server, database, id) = runtime.block_on(async {
            let server = testkit::NatsServer::start().await.unwrap();
            let database = testkit::fresh_database().await.unwrap();
            let pool = sqlx::PgPool::connect(database.url()).await.unwrap();
            let jetstream = async_nats::jetstream::new(server.connect().await);
            events::prepare_producer(&pool, &jetstream, api::product::SERVICE_NAME)
                .await
                .unwrap();
            let mut tx = pool.begin().await.unwrap();
            let event = api::product::InventoryExpired {
                reservation_id: "r1".into(),
            };
            let id = events::Outbox::append(&mut tx, &Default::default(), "r1", &event)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            sqlx::query("UPDATE events_outbox SET published_at = now()")
                .execute(&pool)
                .await
                .unwrap();
            (server, database, id)
        });
        let code = run(EventsArgs {
            command: EventsCommand::Republish(RepublishArgs {
                service: "product".into(),
                since: parse_since("1h").unwrap(),
                database_url: Some(database.url().to_owned()),
                nats: server.args_for("operator"),
            }),
        })
        .unwrap();
        assert_eq!(code, ExitCode::SUCCESS);
        runtime.block_on(async {
            let jetstream = async_nats::jetstream::new(server.connect().await);
            let stream = jetstream
                .get_stream(events::names::stream_of(
                    &api::product::events::INVENTORY_EXPIRED,
                ))
                .await
                .unwrap();
            let message = stream.get_raw_message(1).await.unwrap();
            assert_eq!(
                message
                    .headers
                    .get(events::headers::MSG_ID)
                    .unwrap()
                    .as_str(),
                id.to_string()
            );
            assert_eq!(stream.get_info().await.unwrap().state.messages, 1);
        });
    }
}
