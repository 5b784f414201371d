//! `auth-service`: with no command, reads its configuration, sets up telemetry and serves until
//! SIGTERM or SIGINT. Its one-off commands (`bootstrap-admin`, `rotate-signing-key`) run and
//! exit. Everything else is in the library, so tests run the same code.

use std::io::{BufRead as _, IsTerminal as _};
use std::process::ExitCode;

use auth_service::commands::{self, Bootstrapped};
use clap::Parser as _;

/// The server's flags (`auth_service::Config`), or one of the commands.
#[derive(clap::Parser)]
#[command(
    name = "auth-service",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    server: auth_service::Config,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Makes the first admin, once: creates the account with the admin role, or promotes an
    /// existing account given its own password, while no account is an admin yet; refuses
    /// (exit code 1) once one is. The password comes from ADMIN_PASSWORD, or else from
    /// standard input.
    BootstrapAdmin(commands::BootstrapAdminArgs),
    /// Adds the next signing key to the database (for the keys kept there, without
    /// --signing-key-file): published now, signing after --signs-in-secs; the key it
    /// supersedes stays published until the tokens it signed have expired.
    RotateSigningKey(commands::RotateSigningKeyArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        None => {
            let _telemetry = telemetry::init("auth-service", &cli.server.service.telemetry)?;
            let serving = auth_service::start(cli.server).await?;
            serving.run_until(telemetry::shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::BootstrapAdmin(args)) => {
            let password = admin_password()?;
            match commands::bootstrap_admin_command(&args, password).await {
                Ok(Bootstrapped::Created(account)) => {
                    println!("created the first admin: account {}", account.id);
                    Ok(ExitCode::SUCCESS)
                }
                Ok(Bootstrapped::Promoted(account)) => {
                    println!("made account {} the first admin", account.id);
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => {
                    eprintln!("bootstrap-admin refused: {error:#}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Some(Command::RotateSigningKey(args)) => {
            let added = commands::rotate_signing_key_command(&args).await?;
            println!(
                "added signing key {}: published now, signing from {} (each replica switches \
                 within {} s); the key it supersedes stays published for the access-token \
                 lifetime and a minute after that, then drops out of the key set",
                added.kid,
                added.signs_from.to_rfc3339(),
                auth_service::keys::DATABASE_FOLLOW_INTERVAL.as_secs(),
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The first admin's password: `ADMIN_PASSWORD`, or else the first line of standard input.
/// Read here, with the rest of the configuration, and deliberately not a clap flag: a flag's
/// value shows in the process list and the shell history.
fn admin_password() -> anyhow::Result<auth_service::domain::Password> {
    if let Some(password) = std::env::var_os("ADMIN_PASSWORD") {
        let password = password
            .into_string()
            .map_err(|_| anyhow::anyhow!("ADMIN_PASSWORD is not UTF-8"))?;
        anyhow::ensure!(!password.is_empty(), "ADMIN_PASSWORD is empty");
        return Ok(auth_service::domain::Password::new(password));
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!(
            "The first admin's password (it shows as you type: prefer ADMIN_PASSWORD or a pipe): "
        );
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\n', '\r']);
    anyhow::ensure!(
        !password.is_empty(),
        "no password: set ADMIN_PASSWORD or write the password to standard input"
    );
    Ok(auth_service::domain::Password::new(password.to_owned()))
}
