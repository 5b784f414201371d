//! `bench`: runs every scenario, prints the table and writes the results as JSON. Run it
//! through `make bench` (`cargo xtask bench`), which builds it and the service binaries in
//! release mode first.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use tracing_subscriber::fmt::writer::MakeWriterExt as _;

#[derive(Parser, Debug)]
#[command(
    name = "bench",
    about = "Measure the platform against its physical baselines"
)]
struct Cli {
    /// Where product-service and gateway are; defaults to this binary's directory.
    #[arg(long)]
    binaries: Option<PathBuf>,
    /// Write the results as JSON here.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Run every scenario for a moment only (what the smoke test does).
    #[arg(long)]
    smoke: bool,
    /// The log filter of the services running in this process. Events are formatted as in
    /// production (so their cost is measured) but only warnings and errors are printed.
    #[arg(long, default_value = "info")]
    log_filter: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log_filter))
        .with_writer(
            std::io::stderr
                .with_max_level(tracing::Level::WARN)
                .or_else(std::io::sink),
        )
        .init();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let binaries = match cli.binaries {
        Some(dir) => dir,
        None => std::env::current_exe()?
            .parent()
            .context("the bench binary has no directory")?
            .to_path_buf(),
    };
    let options = if cli.smoke {
        bench::Options::smoke(binaries)
    } else {
        bench::Options::full(binaries)
    };
    let report = bench::run(&options).await?;
    println!("{}", report.table());
    if let Some(output) = cli.output {
        if let Some(dir) = output.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&output, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", output.display()))?;
        println!("results written to {}", output.display());
    }
    Ok(())
}
