//! `cargo xtask`: the developer commands behind the Makefile.
//!
//! - `deps` makes sure nats-server, redis-server and PostgreSQL are installed and links them
//!   into `.dev/bin/`, where tests (pkg/testkit) and `up` look first; and Node.js, npm and
//!   chromium (the web app's build and browser tests).
//! - `up` builds the binaries and the web app and runs the whole stack on the fixed dev ports
//!   until Ctrl-C.
//! - `down` stops a stack left behind by an `up` that was killed.
//! - `dev-token` prints an access token signed with the dev key.
//! - `test` runs every test in one cargo invocation, then the web app's unit tests, and
//!   prints the total.
//! - `api-docs` writes the committed OpenAPI and AsyncAPI documents.
//! - `events republish` re-publishes a service's kept outbox rows (after a broker lost them).
//! - `dlq list|redrive` shows the dead letters and puts them back for their consumer.
//! - `saga list|show|retry|abort` shows and operates the order service's sagas, as an admin.
//! - `new-service` generates a service from `templates/`; `sync-services` regenerates the places
//!   made from `apps/services.toml` (docker-compose.yml, the docs' service tables).
//! - `deny` runs `cargo deny` (deny.toml): licences, bans, sources, and advisories where the
//!   advisory database can be reached.
//! - `bench` builds the benchmark harness (bench/) in release mode and runs it.
//!
//! Everything it creates lives under `.dev/` (git-ignored). It is a tool for a developer's
//! machine: it must never be a dependency of another crate, never run in production, and never
//! touch data outside the workspace except through the package managers in `deps`.

mod bench;
mod check;
mod deny;
mod deps;
mod dev_keys;
mod dlq;
mod http;
mod layout;
mod new_service;
mod ports;
mod republish;
mod saga;
mod services;
mod stack;
mod system;
mod templates;
mod test_run;
mod web;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::dev_keys::Role;
use crate::layout::Layout;

#[derive(Parser, Debug)]
#[command(
    name = "cargo xtask",
    about = "Developer commands for the Emporium workspace"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Make sure nats-server (>= 2.10), redis-server and PostgreSQL are installed, installing
    /// what is missing, and link them into .dev/bin; and Node.js, npm and chromium for the
    /// web app and its browser tests.
    Deps,
    /// Build everything and run the dev stack (NATS, PostgreSQL, Redis, services, gateway)
    /// until Ctrl-C.
    Up(UpArgs),
    /// Stop a dev stack left running by an interrupted `up`.
    Down,
    /// Print an access token signed with the dev key.
    DevToken(DevTokenArgs),
    /// Domain events: `events republish --service S --since T`.
    Events(republish::EventsArgs),
    /// Dead letters: `dlq list [--consumer C]`, `dlq redrive --consumer C (--all | --seq N)`.
    Dlq(dlq::DlqArgs),
    /// The order service's sagas: `saga list [--state S] [--saga NAME] [--limit N]`,
    /// `saga show <id>`, `saga retry <id>`, `saga abort <id> --reason "..."`; `--json` prints
    /// the service's reply as it is.
    Saga(saga::SagaArgs),
    /// Generate a service (apps/<name>, its contract, its entries in apps/services.toml and
    /// the places made from it) from templates/.
    NewService(new_service::NewServiceArgs),
    /// Regenerate docker-compose.yml's services and the docs' service tables from
    /// apps/services.toml; with --check, only say whether they are in step.
    SyncServices {
        #[arg(long)]
        check: bool,
    },
    /// Write docs/api/openapi.json (the gateway's document) and docs/api/asyncapi.json from
    /// the contracts.
    ApiDocs,
    /// Run every test of the workspace and print the total; extra arguments go to cargo test.
    Test {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        cargo_args: Vec<String>,
    },
    /// Check the dependency graph with cargo deny (deny.toml), installing it when missing.
    Deny,
    /// Check the Dockerfile, docker-compose.yml and everything under infra/ (dashboards and
    /// alert rules, the Helm chart, the Terraform) with each ecosystem's tools.
    CheckInfra,
    /// Build in release mode and run the benchmarks (docs/PERFORMANCE.md); extra arguments go
    /// to the harness.
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        bench_args: Vec<String>,
    },
}

#[derive(Args, Debug)]
struct UpArgs {
    /// The gateway's HTTP port.
    #[arg(long, env = "GATEWAY_PORT", default_value_t = 8080)]
    gateway_port: u16,
    /// The address the gateway listens on; only this machine by default.
    #[arg(long, env = "GATEWAY_BIND", default_value = "127.0.0.1")]
    gateway_bind: std::net::IpAddr,
}

#[derive(Args, Debug)]
struct DevTokenArgs {
    /// The role the token grants.
    #[arg(long, value_enum)]
    role: Role,
    /// The user id; each role has a fixed dev user by default.
    #[arg(long)]
    subject: Option<uuid::Uuid>,
    /// How long the token is valid, in hours.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u64).range(1..=24 * 365))]
    ttl_hours: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let layout = Layout::discover();
    let result = match cli.command {
        Command::Deps => deps::ensure(&layout)
            .and_then(|_| deps::ensure_browser_tools(&layout))
            .map(|()| ExitCode::SUCCESS),
        Command::Up(args) => stack::up(&layout, args.gateway_port, args.gateway_bind),
        Command::Down => stack::down(&layout).map(|()| ExitCode::SUCCESS),
        Command::DevToken(args) => dev_token(&layout, &args).map(|()| ExitCode::SUCCESS),
        Command::ApiDocs => write_api_documents(&layout).map(|()| ExitCode::SUCCESS),
        Command::Test { cargo_args } => test_run::run(&layout, &cargo_args),
        Command::Events(args) => republish::run(args),
        Command::Dlq(args) => dlq::run(args),
        Command::Saga(args) => saga::run(args),
        Command::NewService(args) => new_service(&layout, &args).map(|()| ExitCode::SUCCESS),
        Command::SyncServices { check } => sync_services(&layout, check),
        Command::Bench { bench_args } => bench::run(&layout, &bench_args),
        Command::Deny => deny::run(&layout),
        Command::CheckInfra => check::run(&layout),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn new_service(layout: &Layout, args: &new_service::NewServiceArgs) -> anyhow::Result<()> {
    let outcome = new_service::run(layout.root(), args)?;
    for path in &outcome.written {
        println!("  wrote     {}", path.display());
    }
    for path in &outcome.kept {
        println!("  kept      {} (the service's own)", path.display());
    }
    if outcome.written.is_empty() {
        println!("==> nothing to change");
        return Ok(());
    }
    println!("==> refreshing docs/api (cargo xtask api-docs)");
    new_service::refresh_api_documents(layout.root())?;
    println!(
        "==> done: `cargo test -p {0}-service`, then `make up` serves it; see docs/SERVICES.md",
        args.name
    );
    Ok(())
}

/// The committed copies of the API documents, as the gateway serves the OpenAPI one (with the
/// error responses of its status table) and the contracts write the AsyncAPI one. Tests in
/// the gateway and the contracts crate fail when these are out of date.
fn write_api_documents(layout: &Layout) -> anyhow::Result<()> {
    let dir = layout.root().join("docs/api");
    std::fs::write(dir.join("openapi.json"), gateway::openapi::document())?;
    std::fs::write(dir.join("asyncapi.json"), api::ASYNCAPI_JSON)?;
    println!("==> wrote docs/api/openapi.json and docs/api/asyncapi.json");
    Ok(())
}

fn sync_services(layout: &Layout, check: bool) -> anyhow::Result<ExitCode> {
    if check {
        let problems = services::problems(layout.root())?;
        for problem in &problems {
            eprintln!("{problem}");
        }
        return Ok(if problems.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    for path in services::sync(layout.root())? {
        println!("  wrote     {}", layout.show(&path));
    }
    Ok(ExitCode::SUCCESS)
}

fn dev_token(layout: &Layout, args: &DevTokenArgs) -> anyhow::Result<()> {
    let key = dev_keys::load_or_generate(layout)?;
    let subject = args.subject.unwrap_or_else(|| args.role.dev_subject());
    let ttl = std::time::Duration::from_secs(args.ttl_hours * 3600);
    println!("{}", dev_keys::mint(&key, subject, args.role, ttl));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("xtask").chain(args.iter().copied()))
    }

    #[test]
    fn the_cli_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }

    #[test]
    fn dev_token_takes_a_role_subject_and_ttl() {
        let cli = parse(&[
            "dev-token",
            "--role",
            "seller",
            "--subject",
            "01900000-0000-7000-8000-000000000123",
            "--ttl-hours",
            "2",
        ])
        .unwrap();
        let Command::DevToken(args) = cli.command else {
            panic!("parsed as {:?}", cli.command);
        };
        assert_eq!(args.role, Role::Seller);
        assert_eq!(
            args.subject.unwrap().to_string(),
            "01900000-0000-7000-8000-000000000123"
        );
        assert_eq!(args.ttl_hours, 2);
    }

    #[test]
    fn dev_token_defaults_to_twelve_hours() {
        let Command::DevToken(args) = parse(&["dev-token", "--role", "admin"]).unwrap().command
        else {
            panic!("not dev-token");
        };
        assert_eq!(args.ttl_hours, 12);
        assert!(args.subject.is_none());
    }

    #[test]
    fn dev_token_rejects_unknown_roles_bad_subjects_and_zero_ttl() {
        assert!(parse(&["dev-token", "--role", "root"]).is_err());
        assert!(parse(&["dev-token", "--role", "admin", "--subject", "bob"]).is_err());
        assert!(parse(&["dev-token", "--role", "admin", "--ttl-hours", "0"]).is_err());
        assert!(parse(&["dev-token"]).is_err());
    }

    #[test]
    fn events_and_dlq_commands_parse() {
        let Command::Events(args) = parse(&[
            "events",
            "republish",
            "--service",
            "product",
            "--since",
            "2h",
        ])
        .unwrap()
        .command
        else {
            panic!("not events");
        };
        let republish::EventsCommand::Republish(args) = args.command;
        assert_eq!(args.service, "product");
        assert!(parse(&["events", "republish", "--since", "2h"]).is_err());

        let Command::Dlq(args) = parse(&["dlq", "redrive", "--consumer", "c", "--seq", "7"])
            .unwrap()
            .command
        else {
            panic!("not dlq");
        };
        assert!(matches!(
            args.command,
            dlq::DlqCommand::Redrive {
                seq: Some(7),
                all: false,
                ..
            }
        ));
        assert!(parse(&["dlq", "redrive", "--consumer", "c"]).is_err());
        assert!(parse(&["dlq", "redrive", "--consumer", "c", "--all", "--seq", "1"]).is_err());
        assert!(parse(&["dlq", "list"]).is_ok());
    }

    #[test]
    fn saga_commands_parse() {
        let saga = |args: &[&str]| -> Result<saga::SagaArgs, clap::Error> {
            let mut all = vec!["saga"];
            all.extend(args);
            match parse(&all)?.command {
                Command::Saga(args) => Ok(args),
                other => panic!("parsed as {other:?}"),
            }
        };
        let args = saga(&[
            "list", "--state", "stuck", "--saga", "checkout", "--limit", "5", "--json",
        ])
        .unwrap();
        assert!(args.json);
        assert!(matches!(
            args.command,
            saga::SagaCommand::List {
                state: Some(saga::SagaState::Stuck),
                saga: Some(ref name),
                limit: 5,
            } if name == "checkout"
        ));
        let args = saga(&["list"]).unwrap();
        assert!(!args.json);
        assert!(matches!(
            args.command,
            saga::SagaCommand::List {
                state: None,
                saga: None,
                limit: 20
            }
        ));
        assert!(saga(&["list", "--state", "sleeping"]).is_err());
        assert!(saga(&["list", "--limit", "0"]).is_err());

        let id = "0190aaaa-0000-7000-8000-000000000001";
        let args = saga(&["--json", "show", id]).unwrap();
        assert!(args.json);
        assert!(
            matches!(args.command, saga::SagaCommand::Show { id: shown } if shown.to_string() == id)
        );
        assert!(saga(&["show", "not-a-uuid"]).is_err());
        assert!(saga(&["show"]).is_err());
        assert!(matches!(
            saga(&["retry", id]).unwrap().command,
            saga::SagaCommand::Retry { .. }
        ));
        let args = saga(&["abort", id, "--reason", "customer called"]).unwrap();
        assert!(matches!(
            args.command,
            saga::SagaCommand::Abort { ref reason, .. } if reason == "customer called"
        ));
        assert!(saga(&["abort", id]).is_err(), "an abort needs a reason");
    }

    #[test]
    fn up_reads_the_gateway_port() {
        let Command::Up(args) = parse(&["up", "--gateway-port", "18080"]).unwrap().command else {
            panic!("not up");
        };
        assert_eq!(args.gateway_port, 18080);
    }
}
