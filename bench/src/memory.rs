//! Scenario 5: resident memory of the real binaries, run as processes against the private
//! servers: each idle after start-up, and the gateway holding many idle keep-alive
//! connections.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Serialize;
use tokio::process::{Child, Command};

use crate::Options;
use crate::http;
use crate::platform::{self, Servers};
use crate::scenarios::open_idle_connections;

#[derive(Clone, Debug, Serialize)]
pub struct Memory {
    pub product_service_idle_mib: f64,
    pub gateway_idle_mib: f64,
    pub idle_connections: usize,
    pub gateway_with_connections_mib: f64,
    /// The growth per connection, in KiB.
    pub gateway_kib_per_connection: f64,
}

/// Raises this process's open-file limit to its hard limit, so it and the children it
/// spawns (which inherit it) can hold `needed` sockets.
pub fn raise_open_file_limit(needed: u64) -> anyhow::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            bail!("getrlimit: {}", std::io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                bail!("setrlimit: {}", std::io::Error::last_os_error());
            }
        }
    }
    if limit.rlim_cur < needed {
        bail!(
            "the open-file limit is {} (hard limit), {needed} are needed: raise it (ulimit -Hn)",
            limit.rlim_cur
        );
    }
    Ok(limit.rlim_cur)
}

/// VmRSS of a process, in MiB.
pub fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .context("no VmRSS line")?
        .parse()?;
    Ok(kib / 1024.0)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A child process killed when dropped.
struct Process {
    child: Child,
    name: &'static str,
}

impl Process {
    fn spawn(name: &'static str, binary: &Path, args: &[&str], log: &Path) -> anyhow::Result<Self> {
        let log_file = std::fs::File::create(log)?;
        let child = Command::new(binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Self { child, name })
    }

    fn pid(&self) -> anyhow::Result<u32> {
        self.child
            .id()
            .with_context(|| format!("{} has exited", self.name))
    }

    /// Waits until `path` on `address` answers 200.
    async fn wait_ready(
        &mut self,
        address: SocketAddr,
        path: &str,
        log: &Path,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited with {status} before it was ready; see {}",
                    self.name,
                    log.display()
                );
            }
            if let Ok((200, _)) = http::get(address, path).await {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("{} not ready after 60 s; see {}", self.name, log.display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(mut self) {
        // SIGTERM, so the process drains the way it does in production.
        if let Some(pid) = self.child.id() {
            // SAFETY: kill only sends a signal to the child we spawned.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

pub async fn memory(servers: &Servers, options: &Options) -> anyhow::Result<Memory> {
    raise_open_file_limit(options.idle_connections as u64 + 1024)?;
    let database = testkit::fresh_database().await?;
    let (dir, jwks_file, _key) = platform::write_jwks()?;
    let result = measure(servers, &database, &dir, &jwks_file, options).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn measure(
    servers: &Servers,
    database: &testkit::TestDatabase,
    dir: &Path,
    jwks_file: &Path,
    options: &Options,
) -> anyhow::Result<Memory> {
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let product_log = dir.join("product-service.log");
    let admin_arg = admin.to_string();
    let seed = |name: &str| -> anyhow::Result<String> {
        let path = servers
            .nats
            .credentials()
            .seed_file(name)
            .context("a NATS identity of the platform")?;
        Ok(path.to_str().context("a UTF-8 temporary path")?.to_owned())
    };
    let (product_seed, gateway_seed) = (seed("product")?, seed("gateway")?);
    let mut product = Process::spawn(
        "product-service",
        &options.product_service_bin,
        &[
            "--nats-url",
            servers.nats.url(),
            "--nats-nkey-file",
            &product_seed,
            "--redis-url",
            servers.redis.url(),
            "--database-url",
            database.url(),
            "--admin-addr",
            &admin_arg,
        ],
        &product_log,
    )?;
    product
        .wait_ready(admin, telemetry::admin::READY_PATH, &product_log)
        .await?;

    let gateway_port = free_port()?;
    let gateway_addr = SocketAddr::from(([127, 0, 0, 1], gateway_port));
    let gateway_log = dir.join("gateway.log");
    let port_arg = gateway_port.to_string();
    let mut gateway = Process::spawn(
        "gateway",
        &options.gateway_bin,
        &[
            "--port",
            &port_arg,
            "--bind",
            "127.0.0.1",
            "--nats-url",
            servers.nats.url(),
            "--nats-nkey-file",
            &gateway_seed,
            "--redis-url",
            servers.redis.url(),
            "--jwt-jwks-file",
            jwks_file.to_str().context("a UTF-8 temporary path")?,
        ],
        &gateway_log,
    )?;
    gateway
        .wait_ready(gateway_addr, telemetry::admin::READY_PATH, &gateway_log)
        .await?;

    // Let start-up work (connections, first timers) settle before reading.
    tokio::time::sleep(options.settle).await;
    let product_service_idle_mib = rss_mib(product.pid()?)?;
    let gateway_idle_mib = rss_mib(gateway.pid()?)?;

    let connections = open_idle_connections(
        gateway_addr,
        telemetry::admin::LIVE_PATH,
        options.idle_connections,
    )
    .await?;
    tokio::time::sleep(options.settle).await;
    let gateway_with_connections_mib = rss_mib(gateway.pid()?)?;
    drop(connections);

    gateway.stop().await;
    product.stop().await;
    Ok(Memory {
        product_service_idle_mib,
        gateway_idle_mib,
        idle_connections: options.idle_connections,
        gateway_kib_per_connection: (gateway_with_connections_mib - gateway_idle_mib) * 1024.0
            / options.idle_connections.max(1) as f64,
        gateway_with_connections_mib,
    })
}
