//! `cargo xtask dlq list|redrive`: the dead letters consumers gave up on.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use events::dead_letter::{self, Selection};

#[derive(Args, Debug)]
pub struct DlqArgs {
    #[command(subcommand)]
    pub command: DlqCommand,
    /// NATS, as the operator: the dev stack's operator key unless `--nats-nkey-file` says
    /// otherwise.
    #[command(flatten)]
    pub nats: config::NatsArgs,
}

#[derive(Subcommand, Debug)]
pub enum DlqCommand {
    /// List dead letters: sequence, consumer, reason, deliveries, original subject, event.
    List {
        /// Only those of this durable consumer (as `list` prints it).
        #[arg(long)]
        consumer: Option<String>,
    },
    /// Put dead letters back on their original subjects so their consumer receives them
    /// again, and remove them from the dead-letter stream.
    Redrive {
        /// The durable consumer whose dead letters to redrive.
        #[arg(long)]
        consumer: String,
        /// Every dead letter of the consumer.
        #[arg(long, conflicts_with = "seq", required_unless_present = "seq")]
        all: bool,
        /// One dead letter, by its sequence in the dead-letter stream.
        #[arg(long)]
        seq: Option<u64>,
    },
}

pub fn run(args: DlqArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let client = crate::layout::Layout::discover()
            .operator_nats(args.nats)
            .connect("operator", "xtask-dlq")
            .await?;
        let jetstream = async_nats::jetstream::new(client);
        match args.command {
            DlqCommand::List { consumer } => {
                let letters = dead_letter::list(&jetstream, consumer.as_deref()).await?;
                if letters.is_empty() {
                    println!("no dead letters");
                }
                for letter in letters {
                    println!(
                        "{seq:>6}  {consumer}  {reason}  deliveries={deliveries}  {subject} ({stream} #{original})  {event_type} {event_id}  stored {at}\n        {payload}",
                        seq = letter.sequence,
                        consumer = letter.consumer,
                        reason = letter.reason,
                        deliveries = letter.deliveries,
                        subject = letter.original_subject,
                        stream = letter.original_stream,
                        original = letter.original_sequence,
                        event_type = letter.event_type,
                        event_id = letter.event_id,
                        at = letter.stored.to_rfc3339(),
                        payload = String::from_utf8_lossy(&letter.payload),
                    );
                }
            }
            DlqCommand::Redrive { consumer, all, seq } => {
                let selection = match (all, seq) {
                    (_, Some(seq)) => Selection::Sequence(seq),
                    _ => Selection::All,
                };
                let done = dead_letter::redrive(&jetstream, &consumer, selection).await?;
                println!(
                    "redrove {} dead letter(s) of {consumer}; {} left",
                    done.redriven, done.remaining
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::headers;

    /// `list` and `redrive` against a real server: a dead letter goes back to its consumer's
    /// redrive subject and leaves the dead-letter stream.
    #[test]
    fn dead_letters_are_listed_and_redriven() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let event = &api::product::events::INVENTORY_EXPIRED;
        let durable = events::names::durable_name("audit", event).unwrap();
        let server = runtime.block_on(async {
            let server = testkit::NatsServer::start().await.unwrap();
            let jetstream = async_nats::jetstream::new(server.connect().await);
            events::streams::ensure(&jetstream, event.domain, &Default::default())
                .await
                .unwrap();
            events::streams::ensure_dead_letters(&jetstream, &Default::default())
                .await
                .unwrap();
            let mut letter = async_nats::HeaderMap::new();
            letter.insert(headers::EVENT_ID, "0190aaaa-0000-7000-8000-000000000001");
            letter.insert(headers::DEAD_LETTER_CONSUMER, durable.as_str());
            letter.insert(headers::DEAD_LETTER_REASON, "max_deliveries");
            letter.insert(
                headers::DEAD_LETTER_SUBJECT,
                events::names::subject(event, "r1").unwrap().as_str(),
            );
            jetstream
                .publish_with_headers(
                    events::names::dead_letter_subject(&durable).unwrap(),
                    letter,
                    r#"{"reservation_id":"r1"}"#.into(),
                )
                .await
                .unwrap()
                .await
                .unwrap();
            server
        });
        let args = |command| DlqArgs {
            command,
            nats: server.args_for("operator"),
        };
        assert_eq!(
            run(args(DlqCommand::List { consumer: None })).unwrap(),
            ExitCode::SUCCESS
        );
        assert!(
            run(args(DlqCommand::Redrive {
                consumer: durable.clone(),
                all: false,
                seq: Some(99),
            }))
            .is_err(),
            "an unknown sequence is an error"
        );
        assert_eq!(
            run(args(DlqCommand::Redrive {
                consumer: durable.clone(),
                all: true,
                seq: None,
            }))
            .unwrap(),
            ExitCode::SUCCESS
        );
        runtime.block_on(async {
            let jetstream = async_nats::jetstream::new(server.connect().await);
            assert!(
                dead_letter::list(&jetstream, Some(&durable))
                    .await
                    .unwrap()
                    .is_empty()
            );
            let stream = jetstream
                .get_stream(events::names::stream_of(event))
                .await
                .unwrap();
            let message = stream.get_raw_message(1).await.unwrap();
            assert_eq!(message.payload.as_ref(), br#"{"reservation_id":"r1"}"#);
            // To the consumer that gave it up, and to no other.
            assert_eq!(
                message.subject.as_str(),
                events::names::redrive_subject(event.domain, &durable).unwrap()
            );
            assert!(message.headers.get(headers::DEAD_LETTER_REASON).is_none());
        });
    }
}
