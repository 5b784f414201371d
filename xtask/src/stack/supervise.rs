//! One process of the stack, kept running the way Kubernetes keeps a container running: once
//! it is supervised, an exit is reported in one line and the process is started again with the
//! same command (arguments, environment, log file) after an exponential backoff. Its pid record
//! in `.dev/pids/` always names the process that runs now, and is absent while it waits to be
//! restarted, so `down` never signals a pid that is no longer the stack's.
//!
//! Nothing here knows about the rest of the stack: the owner polls each process, says whether
//! the stack is stopping (then an exit is final), and stops them in its own order.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::record::{Record, StopBy, ask_to_stop};
use super::settings::STOP_TIMEOUT;

/// How long to wait before starting an exited process again.
#[derive(Clone, Copy, Debug)]
pub(super) struct Backoff {
    /// The wait after the first quick exit; it doubles with each quick exit in a row.
    pub(super) first: Duration,
    /// The longest wait.
    pub(super) cap: Duration,
    /// A process that ran at least this long was healthy: its exit starts the backoff over.
    pub(super) reset_after: Duration,
}

/// Kubernetes' crash-loop backoff, on a developer's scale.
pub(super) const RESTART_BACKOFF: Backoff = Backoff {
    first: Duration::from_secs(1),
    cap: Duration::from_secs(30),
    reset_after: Duration::from_secs(60),
};

impl Backoff {
    /// The wait before the restart that follows `quick_exits_before` quick exits in a row.
    pub(super) fn delay(&self, quick_exits_before: u32) -> Duration {
        let factor = 2u32.saturating_pow(quick_exits_before);
        self.first.saturating_mul(factor).min(self.cap)
    }
}

/// What polling a process noticed.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Event {
    /// A line for the terminal: an exit that will be followed by a restart, or a restart.
    Notice(String),
    /// The process exited and will not be started again.
    Ended(ExitStatus),
}

enum State {
    Running {
        child: Child,
        since: Instant,
    },
    /// Exited; to be started again at `at`.
    Waiting {
        at: Instant,
    },
    /// Exited or stopped, for good.
    Ended,
}

/// A process of the stack and what it takes to start it again.
pub(super) struct Supervised {
    pub(super) name: String,
    command: Command,
    pub(super) log: PathBuf,
    pid_file: PathBuf,
    pub(super) stop_by: StopBy,
    backoff: Backoff,
    /// Whether an exit is followed by a restart; off until `supervise`, so a process that
    /// fails while the stack starts is reported with its log instead of retried.
    restart: bool,
    state: State,
    restarts: u32,
    quick_exits_in_a_row: u32,
}

impl Supervised {
    /// Starts `command` with its output in `log` (created afresh) and its pid in `pid_file`.
    /// The caller has set everything else (directory, stdin, process group).
    pub(super) fn start(
        name: &str,
        command: Command,
        log: PathBuf,
        pid_file: PathBuf,
        stop_by: StopBy,
    ) -> anyhow::Result<Self> {
        let mut process = Self {
            name: name.to_owned(),
            command,
            log,
            pid_file,
            stop_by,
            backoff: RESTART_BACKOFF,
            restart: false,
            state: State::Ended,
            restarts: 0,
            quick_exits_in_a_row: 0,
        };
        let log_file = File::create(&process.log)
            .with_context(|| format!("creating {}", process.log.display()))?;
        process.spawn(log_file)?;
        Ok(process)
    }

    /// From now on, an exit is followed by a restart (unless the stack is stopping).
    pub(super) fn supervise(&mut self) {
        self.restart = true;
    }

    #[cfg(test)]
    pub(super) fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The pid of the running process, if one runs.
    pub(super) fn pid(&self) -> Option<u32> {
        match &self.state {
            State::Running { child, .. } => Some(child.id()),
            State::Waiting { .. } | State::Ended => None,
        }
    }

    fn spawn(&mut self, log_file: File) -> anyhow::Result<()> {
        self.command.stdout(log_file.try_clone()?).stderr(log_file);
        let program = self.command.get_program().to_string_lossy().into_owned();
        let child = self
            .command
            .spawn()
            .with_context(|| format!("starting {} ({program})", self.name))?;
        let record = Record {
            name: self.name.clone(),
            pid: child.id(),
            stop_by: self.stop_by.clone(),
        };
        self.state = State::Running {
            child,
            since: Instant::now(),
        };
        std::fs::write(&self.pid_file, record.to_text())
            .with_context(|| format!("writing {}", self.pid_file.display()))
    }

    /// Notices an exit and, when one is due, starts the process again. `stopping` says the
    /// stack is shutting down: then an exit is final and nothing is restarted.
    pub(super) fn poll(&mut self, now: Instant, stopping: bool) -> Option<Event> {
        match &mut self.state {
            State::Running { child, since } => {
                let status = child.try_wait().ok().flatten()?;
                let ran = now.saturating_duration_since(*since);
                let _ = std::fs::remove_file(&self.pid_file);
                if !self.restart || stopping {
                    self.state = State::Ended;
                    return Some(Event::Ended(status));
                }
                if ran >= self.backoff.reset_after {
                    self.quick_exits_in_a_row = 0;
                }
                let delay = self.schedule_restart(now);
                Some(Event::Notice(format!(
                    "{} exited ({}) after {}; restarting in {} (restart {})",
                    self.name,
                    describe_exit(status),
                    describe_duration(ran),
                    describe_duration(delay),
                    self.restarts
                )))
            }
            State::Waiting { at } => {
                if stopping {
                    self.state = State::Ended;
                    return None;
                }
                if now < *at {
                    return None;
                }
                match self.respawn() {
                    Ok(pid) => Some(Event::Notice(format!(
                        "{} restarted (pid {pid})",
                        self.name
                    ))),
                    Err(error) => {
                        let delay = self.schedule_restart(now);
                        Some(Event::Notice(format!(
                            "{} could not be restarted ({error:#}); trying again in {} (restart {})",
                            self.name,
                            describe_duration(delay),
                            self.restarts
                        )))
                    }
                }
            }
            State::Ended => None,
        }
    }

    fn schedule_restart(&mut self, now: Instant) -> Duration {
        let delay = self.backoff.delay(self.quick_exits_in_a_row);
        self.quick_exits_in_a_row = self.quick_exits_in_a_row.saturating_add(1);
        self.restarts += 1;
        self.state = State::Waiting { at: now + delay };
        delay
    }

    /// Starts the process again, its output appended to the same log after a marker line, so
    /// the end of the previous run stays readable.
    fn respawn(&mut self) -> anyhow::Result<u32> {
        let mut log_file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        writeln!(
            log_file,
            "---- restarted by cargo xtask up (restart {}) ----",
            self.restarts
        )?;
        self.spawn(log_file)?;
        Ok(self.pid().expect("just spawned"))
    }

    /// Asks the process to stop, kills it if it has not within `STOP_TIMEOUT`, and removes its
    /// pid record. It is not started again.
    pub(super) fn stop(&mut self) {
        if let State::Running { child, .. } = &mut self.state
            && child.try_wait().ok().flatten().is_none()
        {
            println!("==> stopping {}", self.name);
            ask_to_stop(child.id(), &self.stop_by);
            wait_or_kill(child, &self.name);
        }
        self.state = State::Ended;
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop();
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

/// `exit code 1`, `signal 9, killed`.
pub(super) fn describe_exit(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit code {code}");
    }
    let Some(signal) = status.signal() else {
        return status.to_string();
    };
    let name = match signal {
        1 => "hangup",
        2 => "interrupted",
        3 => "quit",
        6 => "aborted",
        9 => "killed",
        11 => "segmentation fault",
        15 => "terminated",
        _ => return format!("signal {signal}"),
    };
    format!("signal {signal}, {name}")
}

/// `0.4 s`, `42 s`, `3 min 5 s`, `2 h 7 min`.
fn describe_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        0..10 if duration.subsec_millis() != 0 => format!("{:.1} s", duration.as_secs_f64()),
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min {} s", seconds / 60, seconds % 60),
        _ => format!("{} h {} min", seconds / 3600, seconds % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::{process_alive, send_signal};

    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Self {
            let dir =
                std::env::temp_dir().join(format!("xtask-supervise-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn sleeper(&self) -> Supervised {
            let mut command = Command::new("sh");
            command.args(["-c", "echo started; exec sleep 60"]);
            Supervised::start(
                "sleeper",
                command,
                self.0.join("sleeper.log"),
                self.0.join("00-sleeper.pid"),
                StopBy::Terminate,
            )
            .unwrap()
        }

        /// The sleeper's log once it has `lines` lines (or after 10 s, as it is then).
        fn log_once_it_has(&self, lines: usize) -> String {
            let read = || std::fs::read_to_string(self.0.join("sleeper.log")).unwrap_or_default();
            let deadline = Instant::now() + Duration::from_secs(10);
            while read().lines().count() < lines && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            read()
        }

        fn recorded_pid(&self) -> Option<u32> {
            let text = std::fs::read_to_string(self.0.join("00-sleeper.pid")).ok()?;
            Some(Record::parse(&text).unwrap().pid)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Polls until something happens, as `up` does.
    fn next_event(process: &mut Supervised, stopping: bool) -> Event {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(event) = process.poll(Instant::now(), stopping) {
                return event;
            }
            assert!(Instant::now() < deadline, "nothing happened");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(pid: u32) {
        assert!(send_signal(pid, "KILL"));
    }

    #[test]
    fn a_killed_process_is_reported_and_restarted_with_a_new_pid() {
        let scratch = Scratch::new();
        let mut process = scratch.sleeper();
        process.supervise();
        let first = process.pid().unwrap();
        assert_eq!(scratch.recorded_pid(), Some(first));
        // Killed once it has written its line, so the log shows the first run was kept.
        scratch.log_once_it_has(1);

        kill(first);
        let Event::Notice(line) = next_event(&mut process, false) else {
            panic!("the exit ended supervision");
        };
        assert!(
            line.starts_with("sleeper exited (signal 9, killed) after ")
                && line.ends_with("; restarting in 1 s (restart 1)"),
            "{line}"
        );
        assert_eq!(process.pid(), None);
        assert_eq!(scratch.recorded_pid(), None, "a dead pid stays recorded");

        let Event::Notice(line) = next_event(&mut process, false) else {
            panic!("not restarted");
        };
        let second = process.pid().unwrap();
        assert_ne!(second, first);
        assert_eq!(line, format!("sleeper restarted (pid {second})"));
        assert!(process_alive(second));
        assert_eq!(scratch.recorded_pid(), Some(second));
        // The new process writes its first line a moment after it was started.
        let log = scratch.log_once_it_has(3);
        assert_eq!(
            log.lines().collect::<Vec<_>>(),
            [
                "started",
                "---- restarted by cargo xtask up (restart 1) ----",
                "started"
            ],
            "the log of the first run is kept"
        );

        // The second quick exit waits twice as long.
        kill(second);
        let Event::Notice(line) = next_event(&mut process, false) else {
            panic!("the exit ended supervision");
        };
        assert!(line.ends_with("restarting in 2 s (restart 2)"), "{line}");

        process.stop();
        assert_eq!(
            process.poll(Instant::now() + Duration::from_secs(60), false),
            None
        );
        assert_eq!(process.pid(), None);
    }

    #[test]
    fn nothing_is_restarted_once_the_stack_is_stopping() {
        let scratch = Scratch::new();
        let mut process = scratch.sleeper();
        process.supervise();
        let pid = process.pid().unwrap();

        // Stopping, a process's exit (here by the stack's own signal) is final.
        assert!(send_signal(pid, "TERM"));
        assert!(matches!(next_event(&mut process, true), Event::Ended(_)));
        assert_eq!(
            process.poll(Instant::now() + Duration::from_secs(60), true),
            None
        );
        assert_eq!(
            process.poll(Instant::now() + Duration::from_secs(60), false),
            None
        );
        assert_eq!(process.pid(), None);
        assert_eq!(scratch.recorded_pid(), None);

        // One waiting for its restart when the stop comes is not started either.
        let mut process = scratch.sleeper().with_backoff(Backoff {
            first: Duration::from_millis(10),
            ..RESTART_BACKOFF
        });
        process.supervise();
        kill(process.pid().unwrap());
        assert!(matches!(next_event(&mut process, false), Event::Notice(_)));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(process.poll(Instant::now(), true), None);
        assert_eq!(process.poll(Instant::now(), false), None);
        assert_eq!(process.pid(), None);

        // And `stop` stops a running one for good, removing its record.
        let mut process = scratch.sleeper();
        process.supervise();
        let pid = process.pid().unwrap();
        process.stop();
        assert!(!process_alive(pid));
        assert_eq!(scratch.recorded_pid(), None);
        assert_eq!(
            process.poll(Instant::now() + Duration::from_secs(60), false),
            None
        );
    }

    #[test]
    fn an_unsupervised_process_that_exits_has_ended() {
        let scratch = Scratch::new();
        let mut process = scratch.sleeper();
        kill(process.pid().unwrap());
        let Event::Ended(status) = next_event(&mut process, false) else {
            panic!("restarted before being supervised");
        };
        assert_eq!(describe_exit(status), "signal 9, killed");
        assert_eq!(scratch.recorded_pid(), None);
    }

    #[test]
    fn the_backoff_doubles_up_to_its_cap_and_starts_over_after_a_long_run() {
        let waits: Vec<u64> = (0..8)
            .map(|quick_exits| RESTART_BACKOFF.delay(quick_exits).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(RESTART_BACKOFF.delay(u32::MAX), Duration::from_secs(30));

        let scratch = Scratch::new();
        let mut process = scratch.sleeper().with_backoff(Backoff {
            first: Duration::from_millis(100),
            cap: Duration::from_secs(30),
            reset_after: Duration::from_millis(600),
        });
        process.supervise();
        let mut restart_after_a_run_of = |ran: Duration| {
            std::thread::sleep(ran);
            kill(process.pid().unwrap());
            let Event::Notice(exited) = next_event(&mut process, false) else {
                panic!("not restarted");
            };
            assert!(matches!(next_event(&mut process, false), Event::Notice(_)));
            exited
        };
        let quick = restart_after_a_run_of(Duration::ZERO);
        assert!(
            quick.ends_with("restarting in 0.1 s (restart 1)"),
            "{quick}"
        );
        let quick = restart_after_a_run_of(Duration::ZERO);
        assert!(
            quick.ends_with("restarting in 0.2 s (restart 2)"),
            "{quick}"
        );
        let long = restart_after_a_run_of(Duration::from_millis(700));
        assert!(long.ends_with("restarting in 0.1 s (restart 3)"), "{long}");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(describe_duration(Duration::from_millis(400)), "0.4 s");
        assert_eq!(describe_duration(Duration::from_secs(1)), "1 s");
        assert_eq!(describe_duration(Duration::from_secs(42)), "42 s");
        assert_eq!(describe_duration(Duration::from_secs(185)), "3 min 5 s");
        assert_eq!(describe_duration(Duration::from_secs(7620)), "2 h 7 min");
    }
}
