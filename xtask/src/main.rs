//! `cargo xtask`: the developer commands behind the Makefile.
//!
//! - `deps` makes sure nats-server, redis-server and PostgreSQL are installed and links them
//!   into `.dev/bin/`, where tests (pkg/testkit) and `up` look first.
//! - `up` builds the binaries and runs the whole stack on the fixed dev ports until Ctrl-C.
//! - `down` stops a stack left behind by an `up` that was killed.
//! - `dev-token` prints an access token signed with the dev key.
//! - `test` runs every test in one cargo invocation and prints the total.
//!
//! Everything it creates lives under `.dev/` (git-ignored). It is a tool for a developer's
//! machine: it must never be a dependency of another crate, never run in production, and never
//! touch data outside the workspace except through the package managers in `deps`.

mod deps;
mod dev_keys;
mod http;
mod layout;
mod ports;
mod stack;
mod system;
mod test_run;

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
    /// what is missing, and link them into .dev/bin.
    Deps,
    /// Build everything and run the dev stack (NATS, PostgreSQL, Redis, services, gateway)
    /// until Ctrl-C.
    Up(UpArgs),
    /// Stop a dev stack left running by an interrupted `up`.
    Down,
    /// Print an access token signed with the dev key.
    DevToken(DevTokenArgs),
    /// Run every test of the workspace and print the total; extra arguments go to cargo test.
    Test {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        cargo_args: Vec<String>,
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
        Command::Deps => deps::ensure(&layout).map(|_| ExitCode::SUCCESS),
        Command::Up(args) => stack::up(&layout, args.gateway_port, args.gateway_bind),
        Command::Down => stack::down(&layout).map(|()| ExitCode::SUCCESS),
        Command::DevToken(args) => dev_token(&layout, &args).map(|()| ExitCode::SUCCESS),
        Command::Test { cargo_args } => test_run::run(&cargo_args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
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
    fn up_reads_the_gateway_port() {
        let Command::Up(args) = parse(&["up", "--gateway-port", "18080"]).unwrap().command else {
            panic!("not up");
        };
        assert_eq!(args.gateway_port, 18080);
    }
}
