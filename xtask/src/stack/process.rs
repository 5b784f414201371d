//! The processes `up` starts and owns: each in its own process group with its output in
//! `.dev/logs/<name>.log` and its pid recorded in `.dev/pids/`, waited on until ready, watched
//! for an exit (fatal for a server, followed by a restart for a supervised service or the
//! gateway: see `supervise`), and stopped in reverse order (killed if it does not stop in time).
//! `up` records its own pid too, so `down` asks it to stop its stack rather than stopping its
//! processes behind its back (which it would restart).

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::record::{Record, StopBy, UP_RECORD_FILE, UP_RECORD_NAME};
use super::supervise::{Event, Supervised, describe_exit};
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

/// The processes `up` started, in start order. Dropping it stops them all.
pub(super) struct Stack {
    layout: Layout,
    pub(super) interrupted: Arc<AtomicBool>,
    running: Vec<Supervised>,
    /// `up`'s own record, once written.
    own_record: Option<PathBuf>,
    /// `stop_all` has begun.
    stopping: bool,
}

impl Stack {
    pub(super) fn new(layout: Layout, interrupted: Arc<AtomicBool>) -> Self {
        Self {
            layout,
            interrupted,
            running: Vec::new(),
            own_record: None,
            stopping: false,
        }
    }

    /// Records this process (`up`) in `.dev/pids/`, so that `down` run while it is up asks it
    /// to stop: stopping its processes one by one would only see them restarted.
    pub(super) fn record_self(&mut self) -> anyhow::Result<()> {
        let path = self.layout.pids().join(UP_RECORD_FILE);
        let record = Record {
            name: UP_RECORD_NAME.to_owned(),
            pid: std::process::id(),
            stop_by: StopBy::Terminate,
        };
        std::fs::write(&path, record.to_text())
            .with_context(|| format!("writing {}", path.display()))?;
        self.own_record = Some(path);
        Ok(())
    }

    /// Starts a process with its output in `.dev/logs/<name>.log` and records its pid. An exit
    /// is fatal until `supervise(name)`.
    pub(super) fn start(
        &mut self,
        name: &str,
        mut command: Command,
        stop_by: StopBy,
    ) -> anyhow::Result<()> {
        command
            .current_dir(self.layout.root())
            .stdin(Stdio::null())
            // Its own process group: a Ctrl-C on the terminal reaches only `up`, which then
            // stops everything in order.
            .process_group(0);
        let pid_file = self
            .layout
            .pids()
            .join(format!("{:02}-{name}.pid", self.running.len()));
        let process = Supervised::start(name, command, self.layout.log(name), pid_file, stop_by)?;
        self.running.push(process);
        Ok(())
    }

    /// From now on the process `name` is restarted when it exits, as a Kubernetes pod's
    /// container would be.
    pub(super) fn supervise(&mut self, name: &str) {
        if let Some(process) = self.running.iter_mut().find(|process| process.name == name) {
            process.supervise();
        }
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
            if let Some(death) = self.tend() {
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

    /// Restarts the supervised processes that exited (once their backoff is over), printing a
    /// line for each exit and restart; returns a description of the first unsupervised one
    /// that exited, with the end of its log: the stack cannot go on without it.
    pub(super) fn tend(&mut self) -> Option<String> {
        let stopping = self.stopping || self.interrupted.load(Ordering::SeqCst);
        for process in &mut self.running {
            match process.poll(Instant::now(), stopping) {
                None => {}
                Some(Event::Notice(line)) => println!("==> {line}"),
                // Stopping, an exit is expected.
                Some(Event::Ended(_)) if stopping => {}
                Some(Event::Ended(status)) => {
                    return Some(format!(
                        "{} exited unexpectedly ({}); the end of {}:\n{}",
                        process.name,
                        describe_exit(status),
                        self.layout.show(&process.log),
                        log_tail(&process.log, 20)
                    ));
                }
            }
        }
        None
    }

    /// Stops every process, last started first, then removes `up`'s own record.
    pub(super) fn stop_all(&mut self) {
        // Whatever exits from now on is not restarted, even if tended again.
        self.stopping = true;
        while let Some(mut process) = self.running.pop() {
            process.stop();
        }
        if let Some(path) = self.own_record.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop_all();
    }
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

    /// The stack restarts a supervised process that dies, keeps its pid record current, and
    /// restarts nothing once it is stopping; stopping removes every record, `up`'s own too.
    #[test]
    fn a_supervised_process_is_restarted_until_the_stack_stops() {
        let root = std::env::temp_dir().join(format!("xtask-stack-{}", uuid::Uuid::new_v4()));
        let layout = Layout::at(&root);
        for dir in [layout.logs(), layout.pids()] {
            std::fs::create_dir_all(dir).unwrap();
        }
        let interrupted = Arc::new(AtomicBool::new(false));
        let mut stack = Stack::new(layout.clone(), Arc::clone(&interrupted));
        stack.record_self().unwrap();
        let mut sleep = Command::new("sleep");
        sleep.arg("60");
        stack.start("sleep", sleep, StopBy::Terminate).unwrap();
        stack
            .wait_until("sleep", Duration::from_secs(5), || true)
            .unwrap();
        stack.supervise("sleep");
        let recorded = || -> Vec<Record> {
            super::super::record::recorded_files(&layout)
                .into_iter()
                .map(|(record, _)| record)
                .collect()
        };
        let first = stack.running[0].pid().unwrap();
        assert_eq!(recorded().len(), 2);

        assert!(crate::system::send_signal(first, "KILL"));
        let deadline = Instant::now() + Duration::from_secs(10);
        let second = loop {
            assert_eq!(stack.tend(), None, "a supervised exit is not fatal");
            if let Some(pid) = stack.running[0].pid().filter(|pid| *pid != first) {
                break pid;
            }
            assert!(Instant::now() < deadline, "not restarted");
            std::thread::sleep(Duration::from_millis(50));
        };
        let records = recorded();
        assert_eq!(records[0].pid, second);
        assert!(records[0].is_running());
        assert_eq!(records[1].name, UP_RECORD_NAME);
        assert_eq!(records[1].pid, std::process::id());

        // Ctrl-C: an exit from now on is neither fatal nor followed by a restart.
        interrupted.store(true, Ordering::SeqCst);
        assert!(crate::system::send_signal(second, "KILL"));
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(stack.tend(), None);
        assert_eq!(stack.running[0].pid(), None);
        stack.stop_all();
        assert!(recorded().is_empty());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
