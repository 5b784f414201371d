//! Server processes that cannot outlive the test process, and the helpers they share.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// The shell program of a watchdog. It blocks reading a pipe whose write end only the test
/// process holds; the read returns when that end closes, which happens when the test process
/// drops it or exits in any way. Then it kills the server (if it was given a pid) and removes
/// the directory (if it was given one). Interrupts are ignored so that a Ctrl-C, which reaches
/// the whole process group, cannot stop the watchdog before it has cleaned up.
const WATCHDOG_SCRIPT: &str = r#"trap '' INT TERM HUP
read -r _ignored
if [ -n "$1" ]; then kill -9 "$1" 2>/dev/null; sleep 0.2; fi
if [ -n "$2" ]; then rm -rf "$2"; fi
"#;

/// A running watchdog; see [`WATCHDOG_SCRIPT`].
pub(crate) struct Watchdog {
    child: Child,
}

impl Watchdog {
    /// Starts a watchdog that, when the test process ends, kills `pid` and removes `dir`.
    ///
    /// `pid` must be a child of this process that is not yet reaped, so the number cannot
    /// belong to anything else when the watchdog acts on it.
    pub(crate) fn arm(pid: Option<u32>, dir: Option<&Path>) -> anyhow::Result<Self> {
        let pid = pid.map(|pid| pid.to_string()).unwrap_or_default();
        let dir = dir.map(Path::as_os_str).unwrap_or_default();
        let child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg("testkit-watchdog")
            .arg(pid)
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the watchdog shell (sh)")?;
        Ok(Self { child })
    }

    /// Lets the watchdog clean up now and waits until it has.
    pub(crate) fn fire(mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

impl Drop for Watchdog {
    /// Dropping without [`Watchdog::fire`] disarms: the watchdog ends without cleaning up.
    fn drop(&mut self) {
        if self.child.stdin.is_some() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A server process with a private directory. The directory lives as long as the supervisor;
/// the process may be stopped and started again inside it. A watchdog covers both at every
/// moment, so neither survives the test process.
pub(crate) struct Supervisor {
    dir: PathBuf,
    child: Option<Child>,
    watchdog: Option<Watchdog>,
}

impl Supervisor {
    /// Creates a new private directory under the system temporary directory.
    pub(crate) fn new(kind: &str) -> anyhow::Result<Self> {
        let dir = new_temp_dir(kind)?;
        let watchdog = match Watchdog::arm(None, Some(&dir)) {
            Ok(watchdog) => watchdog,
            Err(error) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(error);
            }
        };
        Ok(Self {
            dir,
            child: None,
            watchdog: Some(watchdog),
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts `command` with stdin closed and stdout and stderr appended to `log`.
    pub(crate) fn spawn(&mut self, mut command: Command, log: &Path) -> anyhow::Result<()> {
        anyhow::ensure!(self.child.is_none(), "the server is already running");
        let log_file = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        let program = command.get_program().to_string_lossy().into_owned();
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {program}"))?;
        match Watchdog::arm(Some(child.id()), Some(&self.dir)) {
            Ok(watchdog) => {
                // The new watchdog covers the directory too, so the old one can go.
                self.watchdog = Some(watchdog);
                self.child = Some(child);
                Ok(())
            }
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(error)
            }
        }
    }

    /// The exit status if the process has ended on its own.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        // The pid is reaped and may be reused: replace the watchdog that knows it.
        self.child = None;
        self.cover_directory_only();
        Some(status)
    }

    /// Kills the process (SIGKILL) and reaps it; the directory stays.
    pub(crate) fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // Disarm the watchdog that knows the pid before reaping it.
        self.cover_directory_only();
        let _ = child.kill();
        let _ = child.wait();
    }

    fn cover_directory_only(&mut self) {
        match Watchdog::arm(None, Some(&self.dir)) {
            Ok(watchdog) => self.watchdog = Some(watchdog),
            // Without a new watchdog the directory is only removed by Drop; the old watchdog
            // must go regardless, since its pid may be reused.
            Err(_) => self.watchdog = None,
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // The watchdog kills the still unreaped process and removes the directory.
        if let Some(watchdog) = self.watchdog.take() {
            watchdog.fire();
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Creates `<tmp>/testkit-<kind>-<uuid>`.
pub(crate) fn new_temp_dir(kind: &str) -> anyhow::Result<PathBuf> {
    let dir =
        std::env::temp_dir().join(format!("testkit-{kind}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// A port on 127.0.0.1 that was free a moment ago. Another process may take it before the
/// server binds it, so callers retry a failed start with a new port.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0 to pick a port")?;
    Ok(listener.local_addr()?.port())
}

/// How long a server may take to say it is ready; generous because tests start many servers
/// at once on small machines.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// How a start attempt ended, when it did not fail outright.
pub(crate) enum Launch {
    Ready,
    /// Another process took the port between picking and binding it: try another.
    PortTaken,
}

/// Waits until the server just spawned by `supervisor` has written `ready_line` to `log` (after
/// its first `skip` bytes, which earlier runs wrote) and `probe` succeeds. The log line is written after the listener is bound, so a successful
/// probe then reaches this server, not another process that took the port.
pub(crate) async fn wait_until_ready<F, Fut>(
    supervisor: &mut Supervisor,
    name: &str,
    log: &Path,
    skip: u64,
    ready_line: &str,
    probe: F,
) -> anyhow::Result<Launch>
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let bytes = std::fs::read(log).unwrap_or_default();
        let text = String::from_utf8_lossy(bytes.get(skip as usize..).unwrap_or_default());
        if let Some(status) = supervisor.exited() {
            if port_was_taken(&text) {
                return Ok(Launch::PortTaken);
            }
            anyhow::bail!(
                "{name} exited at start ({status}):\n{}",
                log_tail(log, 4096)
            );
        }
        if text.contains(ready_line) && probe().await {
            return Ok(Launch::Ready);
        }
        if Instant::now() > deadline {
            supervisor.kill();
            anyhow::bail!(
                "{name} not ready after {READY_TIMEOUT:?}:\n{}",
                log_tail(log, 4096)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How many times a server start is tried with a new port before giving up.
pub(crate) const START_ATTEMPTS: usize = 5;

/// Whether a server log says the port was taken.
pub(crate) fn port_was_taken(log: &str) -> bool {
    let log = log.to_ascii_lowercase();
    log.contains("address already in use") || log.contains("could not bind")
}

/// The last `max_bytes` of a log file, for error messages.
pub(crate) fn log_tail(log: &Path, max_bytes: u64) -> String {
    let Ok(mut file) = File::open(log) else {
        return String::from("(no log)");
    };
    let length = file.metadata().map(|meta| meta.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(length.saturating_sub(max_bytes)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_running(pid: u32) -> bool {
        // A killed child that nobody reaped yet is a zombie: it still has a /proc entry.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| {
                let state = stat.rsplit(") ").next().unwrap_or("");
                !state.starts_with('Z')
            })
            .unwrap_or(false)
    }

    #[test]
    fn firing_a_watchdog_kills_the_process_and_removes_the_directory() {
        let dir = new_temp_dir("unit").unwrap();
        let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
        let watchdog = Watchdog::arm(Some(sleeper.id()), Some(&dir)).unwrap();
        watchdog.fire();
        assert!(!is_running(sleeper.id()));
        assert!(!dir.exists());
        sleeper.wait().unwrap();
    }

    #[test]
    fn dropping_a_watchdog_disarms_it() {
        let dir = new_temp_dir("unit").unwrap();
        let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
        drop(Watchdog::arm(Some(sleeper.id()), Some(&dir)).unwrap());
        assert!(is_running(sleeper.id()));
        assert!(dir.exists());
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_supervisor_keeps_its_directory_across_restarts_and_removes_it_on_drop() {
        let mut supervisor = Supervisor::new("unit").unwrap();
        let dir = supervisor.dir().to_path_buf();
        let log = dir.join("log");
        let mut command = Command::new("sh");
        command.args(["-c", "echo started; exec sleep 30"]);
        supervisor.spawn(command, &log).unwrap();
        while log_tail(&log, 1024) != "started" {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(supervisor.exited().is_none());
        supervisor.kill();
        assert!(dir.exists());
        let mut command = Command::new("sh");
        command.args(["-c", "echo bye; exit 3"]);
        supervisor.spawn(command, &log).unwrap();
        let status = loop {
            if let Some(status) = supervisor.exited() {
                break status;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert_eq!(status.code(), Some(3));
        assert_eq!(log_tail(&log, 1024), "started\nbye");
        drop(supervisor);
        assert!(!dir.exists());
    }

    #[test]
    fn port_conflicts_are_recognised_in_server_logs() {
        assert!(port_was_taken(
            "[1] Error listening on port: 127.0.0.1:4222, \"listen tcp 127.0.0.1:4222: bind: address already in use\""
        ));
        assert!(port_was_taken(
            "LOG:  could not bind IPv4 address \"127.0.0.1\": Address already in use"
        ));
        assert!(!port_was_taken("Server is ready"));
    }
}
