//! A private nats-server with JetStream.

use std::path::PathBuf;
use std::process::Command;

use anyhow::bail;

use crate::binaries;
use crate::process::{Launch, START_ATTEMPTS, Supervisor, free_port, wait_until_ready};

/// A nats-server with JetStream on a random port of 127.0.0.1, storing into a private
/// directory. Killed, and its directory removed, when dropped.
pub struct NatsServer {
    binary: PathBuf,
    port: u16,
    url: String,
    supervisor: Supervisor,
}

impl NatsServer {
    /// Starts a server and waits until it accepts connections.
    pub async fn start() -> anyhow::Result<Self> {
        let binary = binaries::nats_server()?;
        let mut server = Self {
            binary,
            port: 0,
            url: String::new(),
            supervisor: Supervisor::new("nats")?,
        };
        for _ in 0..START_ATTEMPTS {
            server.port = free_port()?;
            server.url = format!("nats://127.0.0.1:{}", server.port);
            match server.launch().await? {
                Launch::Ready => return Ok(server),
                Launch::PortTaken => continue,
            }
        }
        bail!("nats-server: every port tried was taken ({START_ATTEMPTS} attempts)")
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A client connected to this server.
    ///
    /// # Panics
    /// If the server does not accept the connection: in a test that is a broken set-up.
    pub async fn connect(&self) -> async_nats::Client {
        async_nats::connect(self.url.as_str())
            .await
            .unwrap_or_else(|error| {
                panic!("connecting to the test nats-server {}: {error}", self.url)
            })
    }

    /// Kills the server now, to simulate an outage. Clients see the connection drop; the store
    /// directory stays, so [`NatsServer::restart`] brings back the same streams.
    pub fn stop(&mut self) {
        self.supervisor.kill();
    }

    /// Starts the server again on the same port with the same store, after
    /// [`NatsServer::stop`]. Connected clients reconnect by themselves.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.supervisor.kill();
        match self.launch().await? {
            Launch::Ready => Ok(()),
            Launch::PortTaken => bail!(
                "nats-server could not restart: port {} was taken while it was down",
                self.port
            ),
        }
    }

    async fn launch(&mut self) -> anyhow::Result<Launch> {
        let dir = self.supervisor.dir().to_path_buf();
        // A log per port, so a retry reads about its own attempt only; a restart appends.
        let log = dir.join(format!("nats-server-{}.log", self.port));
        let mut command = Command::new(&self.binary);
        command
            .arg("-js")
            .args(["-a", "127.0.0.1"])
            .args(["-p", &self.port.to_string()])
            .arg("--store_dir")
            .arg(dir.join("store"));
        // A restart appends to the same log: only count readiness lines written after now.
        let skip = std::fs::metadata(&log).map(|meta| meta.len()).unwrap_or(0);
        self.supervisor.spawn(command, &log)?;
        let port = self.port;
        wait_until_ready(
            &mut self.supervisor,
            "nats-server",
            &log,
            skip,
            "Server is ready",
            || async move {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
            },
        )
        .await
    }
}
