//! The checking tools, installed on demand into `.dev/tools/<name>/` through the usual
//! clients (pip, npm): nothing is installed system-wide and a clean clone installs its own.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail, ensure};

use crate::layout::Layout;

/// `.dev/tools/<name>/bin/<executable>` from a Python virtual environment with
/// `requirements` installed (e.g. `["checkov==3.2.0"]`); created when the executable is missing.
pub fn python_tool(
    layout: &Layout,
    name: &str,
    requirements: &[&str],
    executable: &str,
) -> anyhow::Result<PathBuf> {
    let dir = layout.dev().join("tools").join(name);
    let binary = dir.join("bin").join(executable);
    if binary.exists() {
        return Ok(binary);
    }
    println!("==> installing {name} (pip: {})", requirements.join(" "));
    run(Command::new("python3").args(["-m", "venv"]).arg(&dir))
        .context("creating a virtual environment (install python3-venv)")?;
    run(Command::new(dir.join("bin/python3"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(requirements))?;
    ensure!(
        binary.exists(),
        "pip installed {} but {} is not there",
        requirements.join(" "),
        binary.display()
    );
    Ok(binary)
}

/// The directory of an npm package installed into `.dev/tools/<name>/` (`package` may carry
/// a version: `foo@1.2.3`); installed when `node_modules/<package name>` is missing.
pub fn npm_package(layout: &Layout, name: &str, package: &str) -> anyhow::Result<PathBuf> {
    let dir = layout.dev().join("tools").join(name);
    let bare = package
        .rsplit_once('@')
        .filter(|(head, _)| !head.is_empty())
        .map_or(package, |(head, _)| head);
    let installed = dir.join("node_modules").join(bare);
    if installed.exists() {
        return Ok(installed);
    }
    println!("==> installing {name} (npm: {package})");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    run(Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
        .arg(&dir)
        .arg(package))
    .context("installing with npm (install nodejs and npm)")?;
    ensure!(
        installed.exists(),
        "npm installed {package} but {} is not there",
        installed.display()
    );
    Ok(installed)
}

/// Runs `command`, failing with its output when it fails.
pub fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// A path relative to `root`, for messages.
pub fn relative<'a>(root: &Path, path: &'a Path) -> std::path::Display<'a> {
    path.strip_prefix(root).unwrap_or(path).display()
}
