//! `cargo xtask bench` (`make bench`): builds the harness and the service binaries in release
//! mode and runs every scenario once. The harness itself lives in `bench/`; this only builds
//! and starts it, so xtask stays light.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::Context as _;

use crate::layout::Layout;
use crate::system;

/// Where the JSON results go, relative to the workspace root.
const RESULTS: &str = "bench/results/latest.json";

pub fn run(layout: &Layout, extra_args: &[String]) -> anyhow::Result<ExitCode> {
    // The harness starts private servers through pkg/testkit, which finds them in .dev/bin
    // (`make bench` runs `deps` first, as `make test` does) or on PATH.
    println!("==> building the benchmark and the service binaries (release)");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    system::run(
        Command::new(cargo)
            .args([
                "build",
                "--release",
                "-p",
                "bench",
                "-p",
                "product-service",
                "-p",
                "gateway",
            ])
            .current_dir(layout.root()),
    )?;

    let release = release_dir(layout);
    let output = layout.root().join(RESULTS);
    println!("==> running the scenarios (a few minutes)");
    let status = Command::new(release.join("bench"))
        .arg("--binaries")
        .arg(&release)
        .arg("--output")
        .arg(&output)
        .args(extra_args)
        .current_dir(layout.root())
        .status()
        .context("running the benchmark")?;
    if !status.success() {
        return Ok(ExitCode::FAILURE);
    }
    // Scenario 8 holds 10,000 connections on its own gateway and reports apart
    // (bench/results/latest-live.json): run after the others, on a quiet machine.
    if extra_args.is_empty() {
        println!("==> running scenario 8, live order status (about a minute)");
        let status = Command::new(release.join("bench"))
            .arg("--binaries")
            .arg(&release)
            .arg("--output")
            .arg(&output)
            .args(["--scenario", "live"])
            .current_dir(layout.root())
            .status()
            .context("running the live status benchmark")?;
        if !status.success() {
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// target/release, beside the target/debug the layout knows about.
fn release_dir(layout: &Layout) -> PathBuf {
    let debug_dir = layout.debug_binary("bench");
    debug_dir
        .parent()
        .and_then(|debug| debug.parent())
        .map(|target| target.join("release"))
        .unwrap_or_else(|| layout.root().join("target/release"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_binaries_sit_beside_the_debug_ones() {
        let layout = Layout::at(std::path::Path::new("/work/shop"));
        assert_eq!(
            release_dir(&layout),
            PathBuf::from("/work/shop/target/release")
        );
    }
}
