//! `cargo xtask test`: every test of the workspace in one cargo invocation (so one build),
//! with the output passed through and a one-line total at the end.
//!
//! cargo prints a `test result:` line per test binary and per crate's doc tests, so its last
//! line says nothing about the run as a whole; the total does.
//!
//! After cargo, the web app's unit tests run (`npm run test:unit` in gateway/web, vitest);
//! their counts join the total, and their failure fails the run. They are left out when
//! arguments for cargo narrow the run.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};

use anyhow::Context;

use crate::layout::Layout;
use crate::web;

/// Counts summed over every `test result:` line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
}

impl Totals {
    /// Adds a libtest summary line such as
    /// `test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; ...`.
    pub fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(label), Some(count)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(count) = count.parse::<u64>() else {
                continue;
            };
            match label {
                "passed" => self.passed += count,
                "failed" => self.failed += count,
                "ignored" => self.ignored += count,
                _ => {}
            }
        }
    }
}

pub fn run(layout: &Layout, extra_args: &[String]) -> anyhow::Result<ExitCode> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut child = Command::new(cargo)
        .args(["test", "--workspace", "--all-features", "--no-fail-fast"])
        .args(extra_args)
        .stdout(Stdio::piped())
        .spawn()
        .context("starting cargo test")?;
    let stdout = child.stdout.take().context("cargo test's output")?;
    let mut totals = Totals::default();
    let mut out = std::io::stdout().lock();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo test's output")?;
        totals.add_line(&line);
        writeln!(out, "{line}")?;
    }
    let status = child.wait().context("waiting for cargo test")?;
    drop(out);
    let mut success = status.success();
    let web_line = if !extra_args.is_empty() {
        Some("web unit tests: left out (cargo arguments narrow the run)".to_owned())
    } else if !web::dir(layout).join("package.json").is_file() {
        None
    } else {
        let (passed, counts) = web::unit_tests(layout)?;
        success &= passed;
        match counts {
            Some(counts) => {
                totals.passed += counts.passed;
                totals.failed += counts.failed;
                totals.ignored += counts.skipped;
                None
            }
            None => Some(format!(
                "web unit tests: {}",
                if passed { "passed" } else { "FAILED" }
            )),
        }
    };
    let mut out = std::io::stdout().lock();
    if let Some(line) = web_line {
        writeln!(out, "{line}")?;
    }
    writeln!(
        out,
        "tests: {} passed, {} failed, {} skipped",
        totals.passed, totals.failed, totals.ignored
    )?;
    Ok(if success {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_sum_every_result_line_and_ignore_the_rest() {
        let mut totals = Totals::default();
        for line in [
            "running 3 tests",
            "test a ... ok",
            "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 2.5s",
            "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.1s",
            "test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s",
        ] {
            totals.add_line(line);
        }
        assert_eq!(
            totals,
            Totals {
                passed: 15,
                failed: 2,
                ignored: 1
            }
        );
    }
}
