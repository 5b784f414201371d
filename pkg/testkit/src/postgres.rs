//! A PostgreSQL cluster private to the test process, and fresh databases on it.
//!
//! The cluster is started once, on first use, with blocking calls on a thread of its own: each
//! test runs its own tokio runtime, and the cluster must outlive all of them. It is tuned for
//! throwaway data (no fsync, no full page writes) and stopped by its watchdog when the test
//! process exits.
//!
//! A second cluster, with TLS on and a certificate from a fresh test CA, starts only for the
//! tests that ask for it ([`fresh_tls_database`]); everything else talks to the plain one.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::binaries;
use crate::process::{
    READY_TIMEOUT, START_ATTEMPTS, free_port, log_tail, new_temp_dir, port_was_taken,
};
use crate::tls::TestCertificates;

/// A new, empty database that belongs to one test. It is not dropped after the test: the whole
/// cluster goes away with the test process.
#[derive(Clone, Debug)]
pub struct TestDatabase {
    url: String,
    name: String,
    ca: Option<PathBuf>,
}

impl TestDatabase {
    /// `postgres://postgres@127.0.0.1:<port>/<name>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `test_<uuid>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The CA certificate (PEM) the server's certificate is signed by, for a database from
    /// [`fresh_tls_database`]; `None` on the plain cluster.
    pub fn ca_certificate(&self) -> Option<&Path> {
        self.ca.as_deref()
    }
}

/// Creates a new database on this process's private cluster, starting the cluster first if
/// this is the first call.
pub async fn fresh_database() -> anyhow::Result<TestDatabase> {
    let (port, _) = tokio::task::spawn_blocking(|| running(&CLUSTER, false))
        .await
        .context("starting the test PostgreSQL cluster")??;
    create_database(port, None).await
}

/// Creates a new database on this process's private TLS cluster (`ssl=on`, its certificate
/// signed by a fresh test CA, see [`TestDatabase::ca_certificate`]), starting that cluster
/// first if this is the first call. The URL names no `sslmode`: tests add the one they check.
pub async fn fresh_tls_database() -> anyhow::Result<TestDatabase> {
    let (port, ca) = tokio::task::spawn_blocking(|| running(&TLS_CLUSTER, true))
        .await
        .context("starting the test PostgreSQL TLS cluster")??;
    create_database(port, ca).await
}

/// The port (and CA, with TLS) of the cluster in `cell`, started on first use.
fn running(
    cell: &'static OnceLock<Result<Cluster, String>>,
    tls: bool,
) -> anyhow::Result<(u16, Option<PathBuf>)> {
    cell.get_or_init(|| Cluster::start(tls).map_err(|error| format!("{error:#}")))
        .as_ref()
        .map(|cluster| (cluster.port, cluster.ca.clone()))
        .map_err(|error| anyhow::anyhow!("the test PostgreSQL cluster did not start: {error}"))
}

async fn create_database(port: u16, ca: Option<PathBuf>) -> anyhow::Result<TestDatabase> {
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    let admin_url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    // A one-connection pool rather than a bare connection: executing on `&mut PgConnection`
    // makes the future fail to prove it is Send, and tests spawn this future.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin_url)
        .await
        .with_context(|| format!("connecting to the test cluster at {admin_url}"))?;
    sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
        .execute(&pool)
        .await
        .with_context(|| format!("creating database {name}"))?;
    pool.close().await;
    Ok(TestDatabase {
        url: format!("postgres://postgres@127.0.0.1:{port}/{name}"),
        name,
        ca,
    })
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
static TLS_CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();

/// Creates the cluster (initdb), starts postgres, then waits for the write end of its stdin to
/// close (the test process exiting), then shuts postgres down fast and removes the cluster's
/// directory. One script does all of it so that a test process killed during initdb still
/// leaves nothing behind. Postgres is this shell's own child, so the shell can always signal
/// and reap it, also when it runs as the postgres user. Arguments: the PostgreSQL bin
/// directory, the base directory, the port, then extra arguments for postgres.
const CLUSTER_SCRIPT: &str = r#"trap '' INT TERM HUP
bin="$1"
base="$2"
port="$3"
shift 3
"$bin/initdb" -D "$base/data" --no-sync -A trust -U postgres -E UTF8 --locale=C \
    >"$base/initdb.log" 2>&1 </dev/null || exit 1
"$bin/postgres" -D "$base/data" -k "$base/socket" -h 127.0.0.1 -p "$port" \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
    -c max_connections=400 -c lc_messages=C "$@" \
    >>"$base/postgres.log" 2>&1 </dev/null &
pg=$!
read -r _ignored
# A signal that comes before postgres has installed its handlers is lost (the shell starts it
# with SIGINT ignored), so repeat the fast-shutdown request until postgres is gone, and kill
# it after 30 s.
tries=0
while :; do
    case "$(cat "/proc/$pg/stat" 2>/dev/null)" in
        "" | *") Z "*) break ;;
    esac
    tries=$((tries + 1))
    if [ "$tries" -gt 300 ]; then kill -KILL "$pg" 2>/dev/null; else kill -INT "$pg" 2>/dev/null; fi
    sleep 0.1
done
wait "$pg"
rm -rf "$base"
"#;

struct Cluster {
    port: u16,
    /// The CA that signed the server's certificate, on a TLS cluster.
    ca: Option<PathBuf>,
    /// The write end of the watchdog's stdin; it closes when the process exits.
    _stdin: ChildStdin,
    _watchdog: Child,
}

impl Cluster {
    /// Blocking: initdb and start, retried with a new port if the port was taken; with `tls`,
    /// `ssl=on` with a certificate from a fresh test CA.
    fn start(tls: bool) -> anyhow::Result<Self> {
        let bin = binaries::postgres_bin_dir()?;
        let owner = if running_as_root() {
            Some(user_ids("postgres").context(
                "running as root, so PostgreSQL must run as the `postgres` user, which does not exist",
            )?)
        } else {
            None
        };
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(&bin, owner, tls)? {
                Some(cluster) => return Ok(cluster),
                None => continue,
            }
        }
        bail!("postgres: every port tried was taken ({START_ATTEMPTS} attempts)")
    }

    /// `None` when the port was taken.
    fn try_start(bin: &Path, owner: Option<(u32, u32)>, tls: bool) -> anyhow::Result<Option<Self>> {
        let base = new_temp_dir("postgres")?;
        let result = Self::init_and_spawn(bin, owner, &base, tls);
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&base);
        }
        result
    }

    fn init_and_spawn(
        bin: &Path,
        owner: Option<(u32, u32)>,
        base: &Path,
        tls: bool,
    ) -> anyhow::Result<Option<Self>> {
        let socket = base.join("socket");
        std::fs::create_dir(&socket)?;
        let mut handed_over = vec![base.to_path_buf(), socket];
        let mut postgres_args = Vec::new();
        let mut ca = None;
        if tls {
            let dir = base.join("tls");
            std::fs::create_dir(&dir)?;
            let certificates = TestCertificates::generate(&dir)?;
            postgres_args.extend([
                "-c".to_owned(),
                "ssl=on".to_owned(),
                "-c".to_owned(),
                format!(
                    "ssl_cert_file={}",
                    certificates.server_certificate().display()
                ),
                "-c".to_owned(),
                format!("ssl_key_file={}", certificates.server_key().display()),
            ]);
            handed_over.extend([
                dir,
                certificates.server_certificate().to_path_buf(),
                certificates.server_key().to_path_buf(),
            ]);
            ca = Some(certificates.ca().to_path_buf());
        }
        if let Some((uid, gid)) = owner {
            for path in &handed_over {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))
                    .with_context(|| format!("handing {} to the postgres user", path.display()))?;
            }
        }

        let port = free_port()?;
        let mut watchdog = as_owner(owner, Path::new("sh"))
            .arg("-c")
            .arg(CLUSTER_SCRIPT)
            .arg("testkit-postgres")
            .arg(bin)
            .arg(base)
            .arg(port.to_string())
            .args(&postgres_args)
            .current_dir(base)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting postgres")?;
        let stdin = watchdog.stdin.take().expect("stdin is piped");

        let log = base.join("postgres.log");
        let deadline = Instant::now() + READY_TIMEOUT * 2;
        loop {
            if let Ok(Some(status)) = watchdog.try_wait() {
                // Only a failed initdb ends the script before its stdin closes.
                bail!(
                    "initdb failed ({status}):\n{}",
                    log_tail(&base.join("initdb.log"), 4096)
                );
            }
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let failed = text.contains("FATAL:") || text.contains("database system is shut down");
            if failed || Instant::now() > deadline {
                let tail = log_tail(&log, 4096);
                // The watchdog shuts down whatever is left and removes the directory.
                drop(stdin);
                let _ = watchdog.wait();
                if port_was_taken(&text) {
                    return Ok(None);
                }
                if failed {
                    bail!("postgres failed to start:\n{tail}");
                }
                bail!("postgres not ready after {:?}:\n{tail}", READY_TIMEOUT * 2);
            }
            if text.contains("database system is ready to accept connections")
                && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                return Ok(Some(Self {
                    port,
                    ca,
                    _stdin: stdin,
                    _watchdog: watchdog,
                }));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

/// A command that runs `program` as the given user when we are root, or directly otherwise.
fn as_owner(owner: Option<(u32, u32)>, program: &Path) -> Command {
    match owner {
        Some(_) => {
            let mut command = Command::new(runuser());
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        }
        None => Command::new(program),
    }
}

fn runuser() -> PathBuf {
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

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the effective user of this process.
    std::fs::metadata("/proc/self")
        .map(|meta| meta.uid() == 0)
        .unwrap_or(false)
}

/// The uid and gid of `user`, from /etc/passwd.
fn user_ids(user: &str) -> anyhow::Result<(u32, u32)> {
    let mut passwd = String::new();
    std::fs::File::open("/etc/passwd")?.read_to_string(&mut passwd)?;
    parse_passwd(&passwd, user).with_context(|| format!("no user {user} in /etc/passwd"))
}

fn parse_passwd(passwd: &str, user: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != user {
            return None;
        }
        let _password = fields.next()?;
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some((uid, gid))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines_give_uid_and_gid() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      postgresql:x:7:7::/:/bin/false\n\
                      postgres:x:101:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash\n";
        assert_eq!(parse_passwd(passwd, "postgres"), Some((101, 104)));
        assert_eq!(parse_passwd(passwd, "root"), Some((0, 0)));
        assert_eq!(parse_passwd(passwd, "nobody"), None);
    }
}
