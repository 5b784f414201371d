//! Where things are: the workspace and its git-ignored `.dev/` directory.

use std::path::{Path, PathBuf};

/// Paths of the workspace and of the dev stack's state.
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
    target_dir: PathBuf,
}

impl Layout {
    /// The workspace this xtask was built from (xtask lives at `<root>/xtask`).
    pub fn discover() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask is one level below the workspace root")
            .to_path_buf();
        // Cargo honours CARGO_TARGET_DIR, so the built binaries are wherever it points.
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .map(|dir| {
                if dir.is_relative() {
                    root.join(dir)
                } else {
                    dir
                }
            })
            .unwrap_or_else(|| root.join("target"));
        Self { root, target_dir }
    }

    #[cfg(test)]
    pub fn at(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            target_dir: root.join("target"),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A path relative to the workspace root, for messages.
    pub fn show<'a>(&self, path: &'a Path) -> std::path::Display<'a> {
        path.strip_prefix(&self.root).unwrap_or(path).display()
    }

    pub fn dev(&self) -> PathBuf {
        self.root.join(".dev")
    }

    /// Links to the server binaries `deps` found.
    pub fn bin(&self) -> PathBuf {
        self.dev().join("bin")
    }

    pub fn nats_store(&self) -> PathBuf {
        self.dev().join("nats")
    }

    /// The server settings shared with docker-compose.
    pub fn nats_config(&self) -> PathBuf {
        self.root.join("infra/nats/nats.conf")
    }

    /// The dev stack's own nats-server configuration: the shared settings plus the
    /// authorization made at start-up.
    pub fn nats_dev_config(&self) -> PathBuf {
        self.dev().join("nats.conf")
    }

    /// NKEY seeds of every identity, made at each start (mode 0600, never committed).
    pub fn nats_credentials(&self) -> PathBuf {
        self.dev().join("nats-credentials")
    }

    /// The operator's seed: what `nats --nkey` and `cargo xtask dlq|events` connect with.
    pub fn operator_seed(&self) -> PathBuf {
        self.nats_credentials().join("operator.nk")
    }

    /// `args`, with the dev stack's operator key when no credential was given and it exists.
    pub fn operator_nats(&self, mut args: config::NatsArgs) -> config::NatsArgs {
        if args.nats_nkey_file.is_none() && args.nats_creds_file.is_none() {
            let seed = self.operator_seed();
            if seed.exists() {
                args.nats_nkey_file = Some(seed);
            }
        }
        args
    }

    /// Owned by the postgres user when we run as root.
    pub fn pg(&self) -> PathBuf {
        self.dev().join("pg")
    }

    pub fn pg_data(&self) -> PathBuf {
        self.pg().join("data")
    }

    pub fn pg_socket(&self) -> PathBuf {
        self.pg().join("socket")
    }

    pub fn redis(&self) -> PathBuf {
        self.dev().join("redis")
    }

    pub fn keys(&self) -> PathBuf {
        self.dev().join("keys")
    }

    pub fn signing_key(&self) -> PathBuf {
        self.keys().join("signing-key.pem")
    }

    pub fn jwks(&self) -> PathBuf {
        self.keys().join("jwks.json")
    }

    pub fn logs(&self) -> PathBuf {
        self.dev().join("logs")
    }

    pub fn log(&self, name: &str) -> PathBuf {
        self.logs().join(format!("{name}.log"))
    }

    /// One file per process `up` started, so `down` can stop them after `up` was killed.
    pub fn pids(&self) -> PathBuf {
        self.dev().join("pids")
    }

    /// A binary built by `cargo build` (debug profile).
    pub fn debug_binary(&self, name: &str) -> PathBuf {
        self.target_dir.join("debug").join(name)
    }
}
