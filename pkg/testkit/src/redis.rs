//! A private Redis server.

use std::path::PathBuf;
use std::process::Command;

use anyhow::bail;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::binaries;
use crate::process::{Launch, START_ATTEMPTS, Supervisor, free_port, wait_until_ready};
use crate::tls::TestCertificates;

/// A redis-server on a random port of 127.0.0.1 without persistence. Killed, and its directory
/// removed, when dropped.
pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    url: String,
    tls: Option<TestCertificates>,
    supervisor: Supervisor,
}

impl RedisServer {
    /// Starts a server and waits until it answers PING.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(false).await
    }

    /// Starts a server that speaks TLS only (`rediss://`), with a certificate for `127.0.0.1`
    /// from a fresh test CA ([`RedisServer::ca_certificate`]); clients need no certificate.
    pub async fn start_tls() -> anyhow::Result<Self> {
        Self::start_with(true).await
    }

    async fn start_with(tls: bool) -> anyhow::Result<Self> {
        let binary = binaries::redis_server()?;
        let supervisor = Supervisor::new("redis")?;
        let tls = match tls {
            true => Some(TestCertificates::generate(supervisor.dir())?),
            false => None,
        };
        let mut server = Self {
            binary,
            port: 0,
            url: String::new(),
            tls,
            supervisor,
        };
        for _ in 0..START_ATTEMPTS {
            server.port = free_port()?;
            let scheme = if server.tls.is_some() {
                "rediss"
            } else {
                "redis"
            };
            server.url = format!("{scheme}://127.0.0.1:{}", server.port);
            match server.launch().await? {
                Launch::Ready => return Ok(server),
                Launch::PortTaken => continue,
            }
        }
        bail!("redis-server: every port tried was taken ({START_ATTEMPTS} attempts)")
    }

    /// `redis://127.0.0.1:<port>`, or `rediss://` for a TLS server.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA certificate (PEM) a TLS server's certificate is signed by; `None` without TLS.
    pub fn ca_certificate(&self) -> Option<&std::path::Path> {
        self.tls.as_ref().map(TestCertificates::ca)
    }

    /// Kills the server now, to simulate an outage: clients see the connection drop and new
    /// connections are refused. [`RedisServer::restart`] brings it back, empty.
    pub fn stop(&mut self) {
        self.supervisor.kill();
    }

    /// Starts the server again on the same port, after [`RedisServer::stop`]. It holds no data:
    /// the server keeps nothing on disk.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.supervisor.kill();
        match self.launch().await? {
            Launch::Ready => Ok(()),
            Launch::PortTaken => bail!(
                "redis-server could not restart: port {} was taken while it was down",
                self.port
            ),
        }
    }

    async fn launch(&mut self) -> anyhow::Result<Launch> {
        let dir = self.supervisor.dir().to_path_buf();
        // A log per port, so a retry reads about its own attempt only; a restart appends.
        let log = dir.join(format!("redis-server-{}.log", self.port));
        let port = self.port.to_string();
        let mut command = Command::new(&self.binary);
        match &self.tls {
            None => {
                command.args(["--port", &port]);
            }
            Some(certificates) => {
                command
                    .args(["--port", "0", "--tls-port", &port])
                    .arg("--tls-cert-file")
                    .arg(certificates.server_certificate())
                    .arg("--tls-key-file")
                    .arg(certificates.server_key())
                    .arg("--tls-ca-cert-file")
                    .arg(certificates.ca())
                    .args(["--tls-auth-clients", "no"]);
            }
        }
        command
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .args(["--logfile", ""])
            .arg("--dir")
            .arg(&dir);
        // A restart appends to the same log: only count readiness lines written after now.
        let skip = std::fs::metadata(&log).map(|meta| meta.len()).unwrap_or(0);
        self.supervisor.spawn(command, &log)?;
        let port = self.port;
        let tls = self.tls.is_some();
        wait_until_ready(
            &mut self.supervisor,
            "redis-server",
            &log,
            skip,
            "Ready to accept connections",
            || async move {
                match tls {
                    // The ready line comes after the TLS listener is bound; a plain PING
                    // cannot be spoken to it.
                    true => tokio::net::TcpStream::connect(("127.0.0.1", port))
                        .await
                        .is_ok(),
                    false => ping(port).await,
                }
            },
        )
        .await
    }
}

/// Whether the server answers an inline PING with +PONG.
async fn ping(port: u16) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    if stream.write_all(b"PING\r\n").await.is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).await.is_ok() && &reply == b"+PONG\r\n"
}
