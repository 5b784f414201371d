//! `cargo xtask check-infra`: the checks of everything under infra/, the Dockerfile and
//! docker-compose.yml that no Rust test can make, each with the tool its ecosystem uses
//! (installed on demand under `.dev/tools/`, see [`tools`]). `make test` runs it after the
//! Rust tests, so CI fails when any of them fails.
//!
//! Each area is one module with one `check` function; every check runs even when an earlier
//! one failed, and the summary names each failure.

pub(crate) mod containers;
mod helm;
mod observability;
mod terraform;
pub mod tools;

use std::process::ExitCode;
use std::time::Instant;

use crate::layout::Layout;

type Check = fn(&Layout) -> anyhow::Result<()>;

/// Every area, in the order they run.
const CHECKS: &[(&str, Check)] = &[
    ("observability", observability::check),
    ("containers", containers::check),
    ("helm", helm::check),
    ("terraform", terraform::check),
];

pub fn run(layout: &Layout) -> anyhow::Result<ExitCode> {
    let mut failed = Vec::new();
    for (name, check) in CHECKS {
        println!("==> check-infra: {name}");
        let started = Instant::now();
        match check(layout) {
            Ok(()) => println!(
                "==> check-infra: {name} passed in {:.1} s",
                started.elapsed().as_secs_f64()
            ),
            Err(error) => {
                println!("==> check-infra: {name} FAILED: {error:#}");
                failed.push(*name);
            }
        }
    }
    if failed.is_empty() {
        println!("==> check-infra: all {} areas passed", CHECKS.len());
        Ok(ExitCode::SUCCESS)
    } else {
        println!("==> check-infra: failed: {}", failed.join(", "));
        Ok(ExitCode::FAILURE)
    }
}
