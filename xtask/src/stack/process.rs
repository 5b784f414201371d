//! The processes `up` starts and owns: each in its own process group with its output in
//! `.dev/logs/<name>.log` and its pid recorded in `.dev/pids/`, waited on until ready, watched
//! for an early exit, and stopped in reverse order (killed if it does not stop in time).

use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::record::{Record, StopBy, ask_to_stop};
use super::settings::STOP_TIMEOUT;
use crate::layout::Layout;

/// Ctrl-C or SIGTERM arrived: stop everything and exit 0.
#[derive(Debug)]
pub(super) struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// A process started by `up`.
struct StackProcess {
    name: String,
    child: Child,
    log: PathBuf,
    pid_file: PathBuf,
    stop_by: StopBy,
}

/// The processes `up` started, in start order. Dropping it stops them all.
pub(super) struct Stack {
    layout: Layout,
    pub(super) interrupted: Arc<AtomicBool>,
    running: Vec<StackProcess>,
}

impl Stack {
    pub(super) fn new(layout: Layout, interrupted: Arc<AtomicBool>) -> Self {
        Self {
            layout,
            interrupted,
            running: Vec::new(),
        }
    }

    /// Starts a process with its output in `.dev/logs/<name>.log` and records its pid.
    pub(super) fn start(
        &mut self,
        name: &str,
        mut command: Command,
        stop_by: StopBy,
    ) -> anyhow::Result<()> {
        let log = self.layout.log(name);
        let log_file = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        command
            .current_dir(self.layout.root())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            // Its own process group: a Ctrl-C on the terminal reaches only `up`, which then
            // stops everything in order.
            .process_group(0);
        let program = command.get_program().to_string_lossy().into_owned();
        let child = command
            .spawn()
            .with_context(|| format!("starting {name} ({program})"))?;
        let record = Record {
            name: name.to_owned(),
            pid: child.id(),
            stop_by: stop_by.clone(),
        };
        let pid_file = self
            .layout
            .pids()
            .join(format!("{:02}-{name}.pid", self.running.len()));
        std::fs::write(&pid_file, record.to_text())
            .with_context(|| format!("writing {}", pid_file.display()))?;
        self.running.push(StackProcess {
            name: name.to_owned(),
            child,
            log,
            pid_file,
            stop_by,
        });
        Ok(())
    }

    /// Waits until `ready` holds, failing if any process dies, time runs out or the user
    /// interrupts.
    pub(super) fn wait_until(
        &mut self,
        name: &str,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.interrupted.load(Ordering::SeqCst) {
                return Err(Interrupted.into());
            }
            if let Some(death) = self.first_death() {
                bail!("{death}");
            }
            if ready() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let tail = self
                    .running
                    .iter()
                    .find(|running| running.name == name)
                    .map(|running| log_tail(&running.log, 20))
                    .unwrap_or_default();
                bail!("{name} was not ready after {timeout:?}; the end of its log:\n{tail}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A description of the first process that has exited, with the end of its log.
    pub(super) fn first_death(&mut self) -> Option<String> {
        for running in &mut self.running {
            if let Ok(Some(status)) = running.child.try_wait() {
                let _ = std::fs::remove_file(&running.pid_file);
                return Some(format!(
                    "{} exited unexpectedly ({status}); the end of {}:\n{}",
                    running.name,
                    self.layout.show(&running.log),
                    log_tail(&running.log, 20)
                ));
            }
        }
        None
    }

    /// Stops every process, last started first.
    pub(super) fn stop_all(&mut self) {
        while let Some(mut running) = self.running.pop() {
            if running.child.try_wait().ok().flatten().is_none() {
                println!("==> stopping {}", running.name);
                ask_to_stop(running.child.id(), &running.stop_by);
                wait_or_kill(&mut running.child, &running.name);
            }
            let _ = std::fs::remove_file(&running.pid_file);
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop_all();
    }
}

fn wait_or_kill(child: &mut Child, name: &str) {
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("==> {name} did not stop within {STOP_TIMEOUT:?}; killing it");
    let _ = child.kill();
    let _ = child.wait();
}

/// The last `lines` lines of a log file.
fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_tail_is_the_last_lines() {
        let path = std::env::temp_dir().join(format!("xtask-tail-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, "one\ntwo\nthree\n").unwrap();
        assert_eq!(log_tail(&path, 2), "two\nthree");
        assert_eq!(log_tail(&path, 10), "one\ntwo\nthree");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(log_tail(&path, 2), "");
    }
}
