//! Private servers for tests: a nats-server with JetStream, a Redis server and a PostgreSQL
//! cluster, each on a random port of 127.0.0.1 with its data in a private temporary directory.
//!
//! - [`NatsServer::start`] and [`RedisServer::start`] start one server per call; the server is
//!   killed and its directory removed when the value is dropped.
//! - [`fresh_database`] returns a new, empty database on a PostgreSQL cluster private to the test
//!   process. The cluster starts on first use and stops when the process exits.
//!
//! Every server runs beside a small shell watchdog that holds the read end of a pipe whose
//! write end only this process holds. When the process exits for any reason (a panic, a
//! SIGKILL, the test harness ending) the kernel closes the pipe, the watchdog reads end of file,
//! stops the server and removes its directory. So a run leaves no processes and no temporary
//! directories behind, even when Drop never runs.
//!
//! Binaries are found through an environment variable (`NATS_SERVER_BIN`, `REDIS_SERVER_BIN`,
//! `PG_BIN_DIR`), then `<workspace>/.dev/bin/` (filled by `cargo xtask deps`), then `PATH`, and
//! for PostgreSQL the newest `/usr/lib/postgresql/*/bin`.
//!
//! Beside the servers, the machinery every service's integration tests would otherwise repeat:
//! [`Harness`] starts a service under test on the servers its configuration asks for (found
//! from its clap flags) and reads back its database and events; [`callers`] are the principals a request comes from; [`AppTask`] runs any
//! application (the gateway too) on a task until the test stops it and checks it stopped
//! cleanly; [`expect_error`] and [`bad_fields`] check the errors a service answers.
//! [`OtlpReceiver`] takes the traces processes export over OTLP/HTTP, as a collector would.
//!
//! This crate is for tests only: it must never be a dependency of a binary, never use fixed
//! ports, and never touch data outside the directories it creates.

mod app_task;
mod binaries;
pub mod callers;
mod harness;
mod nats;
mod otlp;
mod postgres;
mod process;
mod redis;
mod rpc_errors;
mod smtp;
mod tls;

pub use app_task::{AppTask, STOP_TIMEOUT, StopSignal};
pub use harness::{Companion, Harness, Servers, ServiceTask, wait_until_answering};
pub use nats::NatsServer;
pub use otlp::{Kind as SpanKind, OtlpReceiver, ReceivedSpan};
pub use postgres::{TestDatabase, fresh_database, fresh_tls_database};
pub use redis::RedisServer;
pub use rpc_errors::{bad_fields, expect_error};
pub use smtp::{ReceivedMail, SmtpServer};
pub use tls::TestCertificates;
