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
    /// Run one scenario alone instead of all of them. Its JSON goes beside `--output`, named
    /// after the scenario (`latest.json` -> `latest-checkout.json`), so a partial run never
    /// replaces the full results.
    #[arg(long, value_enum)]
    scenario: Option<Scenario>,
    /// The log filter of the services running in this process. Events are formatted as in
    /// production (so their cost is measured) but only warnings and errors are printed.
    #[arg(long, default_value = "info")]
    log_filter: String,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Scenario {
    /// 7: checkouts through the gateway (about a minute and a half).
    Checkout,
    /// 8: live order status: 10,000 SSE connections on one gateway, events at 50/s.
    Live,
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
    let (table, json, output) = match cli.scenario {
        None => {
            let report = bench::run(&options).await?;
            (
                report.table(),
                serde_json::to_string_pretty(&report)?,
                cli.output,
            )
        }
        Some(Scenario::Checkout) => {
            let report = bench::run_checkout(&options).await?;
            let output = cli.output.map(|path| beside(&path, "checkout"));
            (
                report.table(),
                serde_json::to_string_pretty(&report)?,
                output,
            )
        }
        Some(Scenario::Live) => {
            let live_options = if cli.smoke {
                bench::live::LiveOptions::smoke()
            } else {
                bench::live::LiveOptions::full()
            };
            let report =
                bench::live::run(&options.mode, &options.gateway_bin, &live_options).await?;
            let output = cli.output.map(|path| beside(&path, "live"));
            (
                report.table(),
                serde_json::to_string_pretty(&report)?,
                output,
            )
        }
    };
    println!("{table}");
    if let Some(output) = output {
        if let Some(dir) = output.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&output, json + "\n")
            .with_context(|| format!("writing {}", output.display()))?;
        println!("results written to {}", output.display());
    }
    Ok(())
}

/// `dir/latest.json` -> `dir/latest-<scenario>.json`.
fn beside(path: &std::path::Path, scenario: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or_else(|| "results".into(), |s| s.to_string_lossy().into_owned());
    path.with_file_name(format!("{stem}-{scenario}.json"))
}
