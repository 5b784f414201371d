//! A private Redis server.

use std::process::Command;

use anyhow::bail;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::binaries;
use crate::process::{Launch, START_ATTEMPTS, Supervisor, free_port, wait_until_ready};

/// A redis-server on a random port of 127.0.0.1 without persistence. Killed, and its directory
/// removed, when dropped.
pub struct RedisServer {
    port: u16,
    url: String,
    _supervisor: Supervisor,
}

impl RedisServer {
    /// Starts a server and waits until it answers PING.
    pub async fn start() -> anyhow::Result<Self> {
        let binary = binaries::redis_server()?;
        let mut supervisor = Supervisor::new("redis")?;
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let dir = supervisor.dir().to_path_buf();
            let log = dir.join(format!("redis-server-{port}.log"));
            let mut command = Command::new(&binary);
            command
                .args(["--port", &port.to_string()])
                .args(["--bind", "127.0.0.1"])
                .args(["--save", ""])
                .args(["--appendonly", "no"])
                .args(["--daemonize", "no"])
                .args(["--logfile", ""])
                .arg("--dir")
                .arg(&dir);
            supervisor.spawn(command, &log)?;
            let launch = wait_until_ready(
                &mut supervisor,
                "redis-server",
                &log,
                0,
                "Ready to accept connections",
                || ping(port),
            )
            .await?;
            match launch {
                Launch::Ready => {
                    return Ok(Self {
                        port,
                        url: format!("redis://127.0.0.1:{port}"),
                        _supervisor: supervisor,
                    });
                }
                Launch::PortTaken => continue,
            }
        }
        bail!("redis-server: every port tried was taken ({START_ATTEMPTS} attempts)")
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
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
