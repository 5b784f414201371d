//! Makes fresh NATS credentials for every identity of the platform: one NKEY seed per service,
//! the gateway and the operator, the authorization nats-server includes, and the auth
//! service's public key for the gateway. docker-compose runs it once before NATS starts.

use std::path::PathBuf;

use clap::Parser;

/// Writes `<identity>.nk`, `authorization.conf` and `key-set-signer.pub` into a directory.
#[derive(Parser, Debug)]
#[command(name = "nats-credentials", version, about)]
struct Args {
    /// The directory to write into (created if missing; earlier keys are replaced).
    #[arg(long, env = "NATS_CREDENTIALS_DIR")]
    out: PathBuf,
    /// Keep the keys already in `--out` when its authorization file exists.
    #[arg(long)]
    keep: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.keep && args.out.join(trust::AUTHORIZATION_FILE).exists() {
        println!("NATS credentials kept in {}", args.out.display());
        return Ok(());
    }
    let credentials = trust::Credentials::generate_all(&args.out)?;
    for identity in trust::Identity::all() {
        println!(
            "{:<10} {}",
            identity.name(),
            credentials.public_key(identity.name()).unwrap_or_default()
        );
    }
    println!("NATS credentials written to {}", args.out.display());
    Ok(())
}
