//! A private nats-server with JetStream.

use std::path::PathBuf;
use std::process::Command;

use anyhow::bail;

use crate::binaries;
use crate::process::{Launch, START_ATTEMPTS, Supervisor, free_port, wait_until_ready};

/// A nats-server with JetStream on a random port of 127.0.0.1, storing into a private
/// directory, with the platform's authorization: fresh NKEYs for every identity (each service,
/// the gateway, the operator) and the permissions `pkg/trust` makes from the contracts. Killed,
/// and its directory removed, when dropped.
pub struct NatsServer {
    binary: PathBuf,
    port: u16,
    url: String,
    credentials: trust::Credentials,
    supervisor: Supervisor,
}

impl NatsServer {
    /// Starts a server with fresh credentials and waits until it accepts connections.
    pub async fn start() -> anyhow::Result<Self> {
        let supervisor = Supervisor::new("nats")?;
        let credentials = trust::Credentials::generate_all(&supervisor.dir().join("credentials"))?;
        Self::start_in(supervisor, credentials, None).await
    }

    /// Like [`NatsServer::start`], with clients required to use TLS: the server presents a
    /// certificate from the returned test CA (`ca.pem`), which clients must be told to trust.
    pub async fn start_tls() -> anyhow::Result<(Self, crate::TestCertificates)> {
        let supervisor = Supervisor::new("nats")?;
        let credentials = trust::Credentials::generate_all(&supervisor.dir().join("credentials"))?;
        let tls_dir = supervisor.dir().join("tls");
        std::fs::create_dir_all(&tls_dir)?;
        let certificates = crate::TestCertificates::generate(&tls_dir)?;
        let tls = format!(
            "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n}}\n",
            certificates.server_certificate().display().to_string(),
            certificates.server_key().display().to_string(),
        );
        let server = Self::start_in(supervisor, credentials, Some(tls)).await?;
        Ok((server, certificates))
    }

    /// Starts a server with the credentials the `nats-credentials` binary wrote into `dir`
    /// (another build of the platform, with other contracts).
    pub async fn start_with_credentials(dir: &std::path::Path) -> anyhow::Result<Self> {
        let supervisor = Supervisor::new("nats")?;
        let credentials = trust::Credentials::load(dir)?;
        Self::start_in(supervisor, credentials, None).await
    }

    async fn start_in(
        supervisor: Supervisor,
        credentials: trust::Credentials,
        tls: Option<String>,
    ) -> anyhow::Result<Self> {
        let binary = binaries::nats_server()?;
        // nats-server resolves includes relative to the including file, even absolute ones:
        // the configuration is the authorization itself (and the TLS block, if any).
        let authorization =
            std::fs::read_to_string(credentials.dir().join(trust::AUTHORIZATION_FILE))?;
        std::fs::write(
            supervisor.dir().join("nats.conf"),
            format!("{authorization}{}", tls.unwrap_or_default()),
        )?;
        let mut server = Self {
            binary,
            port: 0,
            url: String::new(),
            credentials,
            supervisor,
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

    /// A client connected as the operator, who may do anything: for a test's own set-up and
    /// checks (calling a service the way the gateway would, reading its events).
    ///
    /// # Panics
    /// If the server does not accept the connection: in a test that is a broken set-up.
    pub async fn connect(&self) -> async_nats::Client {
        self.connect_as("operator").await
    }

    /// A client connected as the platform identity `name` ("product", "gateway"), with exactly
    /// its permissions and its private inbox prefix.
    ///
    /// # Panics
    /// If `name` is no identity, or the server does not accept the connection.
    pub async fn connect_as(&self, name: &str) -> async_nats::Client {
        let client = self
            .args_for(name)
            .connect(name, &format!("test-{name}"))
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "connecting to the test nats-server {} as {name}: {error}",
                    self.url
                )
            });
        // The connection is made in the background: a test starts once it is up.
        for _ in 0..500 {
            if client.connection_state() == async_nats::connection::State::Connected {
                return client;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the test nats-server {} did not let {name} in", self.url)
    }

    /// The NATS flags of identity `name` on this server: its URL and its seed file.
    ///
    /// # Panics
    /// If `name` is no identity of the platform.
    pub fn args_for(&self, name: &str) -> config::NatsArgs {
        let mut args = config::NatsArgs::new(self.url.clone());
        args.nats_nkey_file = Some(
            self.credentials
                .seed_file(name)
                .unwrap_or_else(|| panic!("{name} is no NATS identity of the platform")),
        );
        args
    }

    /// The permission violations the server logged so far ("Publish Violation ... Subject
    /// ..."): a service's test ends by checking it had none, so a permission the generated
    /// authorization lacks fails the test that needed it.
    pub fn violations(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.supervisor.dir()) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .flat_map(|log| {
                log.lines()
                    .filter(|l| l.contains("Violation"))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The credentials this server was started with: seed files, public keys, the key set
    /// signer's public key file.
    pub fn credentials(&self) -> &trust::Credentials {
        &self.credentials
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
            .arg("-c")
            .arg(dir.join("nats.conf"))
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
