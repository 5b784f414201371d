//! What `up` records about each process it starts, in `.dev/pids/<NN>-<name>.pid`, so that
//! `down` can stop a stack whose `up` was killed; and how each process is asked to stop.

use std::path::PathBuf;
use std::process::Stdio;

use super::settings::SERVICES;
use crate::layout::Layout;
use crate::system::{as_postgres, process_alive, process_command_line, send_signal};

/// The record of `up` itself. Its file sorts after the `<NN>-<name>.pid` of the processes it
/// started, so `down`, which stops the records last first, asks `up` to stop its stack before
/// looking at anything `up` would otherwise restart.
pub(super) const UP_RECORD_FILE: &str = "up.pid";
/// The record's name is what its command line contains (`.../xtask up`).
pub(super) const UP_RECORD_NAME: &str = "xtask up";

/// How a process is asked to stop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum StopBy {
    /// SIGTERM: every server and service of the stack drains and exits on it.
    Terminate,
    /// `pg_ctl stop -m fast`, as the cluster's owner.
    PgCtl { pg_ctl: PathBuf, data: PathBuf },
}

/// Asks the process `pid` to stop the way its record says; does not wait for it.
pub(super) fn ask_to_stop(pid: u32, stop_by: &StopBy) {
    match stop_by {
        StopBy::Terminate => {
            send_signal(pid, "TERM");
        }
        StopBy::PgCtl { pg_ctl, data } => {
            let stopped = as_postgres(pg_ctl)
                .arg("stop")
                .arg("-D")
                .arg(data)
                .args(["-m", "fast", "-w", "-t", "30"])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            if !stopped {
                // runuser passes SIGTERM on to postgres (a "smart" shutdown).
                send_signal(pid, "TERM");
            }
        }
    }
}

/// What `.dev/pids/<NN>-<name>.pid` holds: enough for `down` to stop the process safely.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Record {
    pub(super) name: String,
    pub(super) pid: u32,
    pub(super) stop_by: StopBy,
}

impl Record {
    pub(super) fn to_text(&self) -> String {
        match &self.stop_by {
            StopBy::Terminate => format!("{}\n{}\nterminate\n", self.pid, self.name),
            StopBy::PgCtl { pg_ctl, data } => format!(
                "{}\n{}\npg_ctl\n{}\n{}\n",
                self.pid,
                self.name,
                pg_ctl.display(),
                data.display()
            ),
        }
    }

    pub(super) fn parse(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        let pid = lines.next()?.trim().parse().ok()?;
        let name = lines.next()?.trim().to_owned();
        let stop_by = match lines.next()?.trim() {
            "terminate" => StopBy::Terminate,
            "pg_ctl" => StopBy::PgCtl {
                pg_ctl: PathBuf::from(lines.next()?),
                data: PathBuf::from(lines.next()?),
            },
            _ => return None,
        };
        Some(Self { name, pid, stop_by })
    }

    /// Whether the recorded pid is still the process `up` started: a pid can be reused by an
    /// unrelated process after a reboot or a long time.
    pub(super) fn is_running(&self) -> bool {
        let expected = match &self.stop_by {
            StopBy::Terminate => self.name.as_str(),
            StopBy::PgCtl { .. } => "postgres",
        };
        process_alive(self.pid)
            && process_command_line(self.pid).is_some_and(|line| {
                line.contains(expected)
                    || SERVICES.iter().any(|service| {
                        service.name == self.name && line.contains(&service.package())
                    })
            })
    }
}

/// The records in `.dev/pids/`, in start order, with their files.
pub(super) fn recorded_files(layout: &Layout) -> Vec<(Record, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(layout.pids()) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "pid"))
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|path| {
            let record = Record::parse(&std::fs::read_to_string(&path).ok()?)?;
            Some((record, path))
        })
        .collect()
}

/// Whether the PostgreSQL server of a `pg_ctl` record still runs (its `postmaster.pid` names a
/// live process), though the process `up` recorded, runuser, may have gone.
pub(super) fn record_postgres_running(record: &Record) -> bool {
    let StopBy::PgCtl { data, .. } = &record.stop_by else {
        return false;
    };
    let Ok(text) = std::fs::read_to_string(data.join("postmaster.pid")) else {
        return false;
    };
    text.lines()
        .next()
        .and_then(|pid| pid.trim().parse().ok())
        .is_some_and(process_alive)
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    #[test]
    fn records_survive_a_round_trip_through_their_file_format() {
        for record in [
            Record {
                name: "nats-server".into(),
                pid: 4242,
                stop_by: StopBy::Terminate,
            },
            Record {
                name: "postgres".into(),
                pid: 77,
                stop_by: StopBy::PgCtl {
                    pg_ctl: "/usr/lib/postgresql/15/bin/pg_ctl".into(),
                    data: "/work/.dev/pg/data".into(),
                },
            },
        ] {
            assert_eq!(Record::parse(&record.to_text()), Some(record));
        }
        assert_eq!(Record::parse("not a pid\nx\nterminate\n"), None);
        assert_eq!(Record::parse("12\nx\nreboot\n"), None);
    }

    #[test]
    fn a_record_of_a_process_that_is_gone_or_something_else_is_not_running() {
        let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = sleeper.id();
        let record = |name: &str| Record {
            name: name.into(),
            pid,
            stop_by: StopBy::Terminate,
        };
        assert!(record("sleep").is_running());
        // Same pid, but not the program that was recorded: a reused pid is left alone.
        assert!(!record("nats-server").is_running());
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
        assert!(!record("sleep").is_running());
    }
}
