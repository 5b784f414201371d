//! The dev servers as private processes on fixed ports of 127.0.0.1: nats-server with
//! JetStream, PostgreSQL (its cluster created under `.dev/` on first use), Redis and an SMTP
//! server that keeps every message it receives (aiosmtpd, a Maildir under `.dev/mail/`), each
//! waited on until it answers.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::process::Stack;
use super::record::StopBy;
use super::settings::{
    NATS_MONITOR_PORT, NATS_PORT, POSTGRES_PORT, REDIS_PORT, SERVER_READY_TIMEOUT, SMTP_PORT,
};
use crate::deps::Servers;
use crate::http;
use crate::layout::Layout;
use crate::system::{as_postgres, parse_version, running_as_root, user_ids, version_output};

pub(super) fn start_nats(
    stack: &mut Stack,
    layout: &Layout,
    servers: &Servers,
) -> anyhow::Result<()> {
    println!(
        "==> starting nats-server on 127.0.0.1:{NATS_PORT} (JetStream store {}, monitoring :{NATS_MONITOR_PORT})",
        layout.show(&layout.nats_store())
    );
    // Fresh keys at every start: the authorization is made from the contracts, so a service
    // added since the last start is in it.
    let credentials = trust::Credentials::generate_all(&layout.nats_credentials())?;
    // nats-server resolves includes relative to the including file, even absolute ones.
    let config = layout.nats_dev_config();
    let relative = |path: &std::path::Path| -> anyhow::Result<String> {
        let dir = config.parent().context("the dev config's directory")?;
        let path = match path.strip_prefix(dir) {
            Ok(inside) => inside.to_path_buf(),
            Err(_) => std::path::Path::new("..").join(
                path.strip_prefix(layout.root())
                    .context("a path of the workspace")?,
            ),
        };
        Ok(path.display().to_string())
    };
    std::fs::write(
        &config,
        format!(
            "# Written by `cargo xtask up`: the shared settings, then who may do what.\n\
             include {:?}\ninclude {:?}\n",
            relative(&layout.nats_config())?,
            relative(&credentials.dir().join(trust::AUTHORIZATION_FILE))?,
        ),
    )?;
    let mut command = Command::new(&servers.nats_server);
    command
        .arg("--config")
        .arg(layout.nats_dev_config())
        .args(["--addr", "127.0.0.1"])
        .args(["--port", &NATS_PORT.to_string()])
        .args(["--http_port", &NATS_MONITOR_PORT.to_string()])
        .arg("--store_dir")
        .arg(layout.nats_store());
    stack.start("nats-server", command, StopBy::Terminate)?;
    stack.wait_until("nats-server", SERVER_READY_TIMEOUT, || {
        http::is_ok(NATS_MONITOR_PORT, "/healthz")
    })
}

pub(super) fn start_postgres(
    stack: &mut Stack,
    layout: &Layout,
    servers: &Servers,
) -> anyhow::Result<()> {
    prepare_postgres(layout, &servers.pg_bin)?;
    println!(
        "==> starting PostgreSQL on 127.0.0.1:{POSTGRES_PORT} (data {})",
        layout.show(&layout.pg_data())
    );
    let mut command = as_postgres(&servers.pg_bin.join("postgres"));
    command
        .arg("-D")
        .arg(layout.pg_data())
        .arg("-k")
        .arg(layout.pg_socket())
        .args(["-h", "127.0.0.1"])
        .args(["-p", &POSTGRES_PORT.to_string()])
        .args(["-c", "lc_messages=C"]);
    stack.start(
        "postgres",
        command,
        StopBy::PgCtl {
            pg_ctl: servers.pg_bin.join("pg_ctl"),
            data: layout.pg_data(),
        },
    )?;
    let log = layout.log("postgres");
    let pg_isready = servers.pg_bin.join("pg_isready");
    stack.wait_until("postgres", SERVER_READY_TIMEOUT, || {
        if pg_isready.exists() {
            return Command::new(&pg_isready)
                .args(["-q", "-h", "127.0.0.1", "-p", &POSTGRES_PORT.to_string()])
                .status()
                .is_ok_and(|status| status.success());
        }
        std::fs::read_to_string(&log)
            .is_ok_and(|text| text.contains("database system is ready to accept connections"))
    })
}

/// Creates the cluster on first use (owned by the postgres user when we are root).
fn prepare_postgres(layout: &Layout, pg_bin: &Path) -> anyhow::Result<()> {
    for dir in [layout.pg(), layout.pg_socket()] {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if running_as_root() {
        let (uid, gid) =
            user_ids("postgres").context("there is no postgres user: run `cargo xtask deps`")?;
        for dir in [layout.pg(), layout.pg_socket()] {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .with_context(|| format!("handing {} to the postgres user", dir.display()))?;
        }
        let reachable = as_postgres(Path::new("test"))
            .arg("-w")
            .arg(layout.pg())
            .status()
            .is_ok_and(|status| status.success());
        if !reachable {
            bail!(
                "the postgres user cannot write {}: as root, PostgreSQL runs as postgres, so every \
                 directory above .dev/ must be searchable by others (chmod o+x) or the checkout \
                 must live elsewhere",
                layout.pg().display()
            );
        }
    }

    let version_file = layout.pg_data().join("PG_VERSION");
    let server_major = version_output(&pg_bin.join("postgres"))
        .and_then(|text| parse_version(&text))
        .map(|(major, _, _)| major);
    if let Ok(cluster_major) = std::fs::read_to_string(&version_file) {
        let cluster_major = cluster_major.trim();
        if let Some(server_major) = server_major
            && cluster_major != server_major.to_string()
        {
            bail!(
                "{} was created by PostgreSQL {cluster_major} but the server found is {server_major}; \
                 remove {} to start over (its data is lost)",
                layout.show(&layout.pg_data()),
                layout.show(&layout.pg())
            );
        }
        return Ok(());
    }

    println!(
        "==> creating the PostgreSQL cluster in {} (first run only)",
        layout.show(&layout.pg_data())
    );
    let output = as_postgres(&pg_bin.join("initdb"))
        .arg("-D")
        .arg(layout.pg_data())
        .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C"])
        .current_dir(layout.pg())
        .stdin(Stdio::null())
        .output()
        .context("running initdb")?;
    if !output.status.success() {
        bail!(
            "initdb failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

pub(super) fn start_redis(
    stack: &mut Stack,
    layout: &Layout,
    servers: &Servers,
) -> anyhow::Result<()> {
    println!(
        "==> starting Redis on 127.0.0.1:{REDIS_PORT} (data {})",
        layout.show(&layout.redis())
    );
    let mut command = Command::new(&servers.redis_server);
    command
        .args(["--port", &REDIS_PORT.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--appendonly", "yes"])
        .args(["--daemonize", "no"])
        .args(["--logfile", ""])
        .arg("--dir")
        .arg(layout.redis());
    stack.start("redis-server", command, StopBy::Terminate)?;
    stack.wait_until("redis-server", SERVER_READY_TIMEOUT, || {
        redis_answers_ping(REDIS_PORT)
    })
}

/// The dev mail relay: every message the services send is a file in `.dev/mail/new/`, to be
/// read with any text viewer or mail client that opens a Maildir.
pub(super) fn start_smtp(
    stack: &mut Stack,
    layout: &Layout,
    servers: &Servers,
) -> anyhow::Result<()> {
    let mail = layout.dev().join("mail");
    println!(
        "==> starting the SMTP server on 127.0.0.1:{SMTP_PORT} (messages in {}/new/)",
        layout.show(&mail)
    );
    let mut command = Command::new(&servers.smtp_python);
    command
        .args(["-m", "aiosmtpd", "-n", "-l"])
        .arg(format!("127.0.0.1:{SMTP_PORT}"))
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(&mail);
    stack.start("smtp-server", command, StopBy::Terminate)?;
    stack.wait_until("smtp-server", SERVER_READY_TIMEOUT, || {
        smtp_greets(SMTP_PORT)
    })
}

/// Whether an SMTP server on `port` sends its 220 greeting.
fn smtp_greets(port: u16) -> bool {
    use std::io::Read as _;
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(1))
    else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut greeting = [0u8; 4];
    stream.read_exact(&mut greeting).is_ok() && greeting.starts_with(b"220")
}

fn redis_answers_ping(port: u16) -> bool {
    use std::io::{Read as _, Write as _};
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(1))
    else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}
