//! NKEY credentials made at start-up, and the nats-server authorization that names them.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::{Identity, KEY_SET_SIGNER};

/// The file nats-server's configuration includes: the `authorization` block with every
/// identity's public key and permissions.
pub const AUTHORIZATION_FILE: &str = "authorization.conf";

/// The file holding the public NKEY of the key set's signer (the auth service), which the
/// gateway is given to check the key set it fetches.
pub const SIGNER_FILE: &str = "key-set-signer.pub";

/// A directory of credentials: `<identity>.nk` (a seed, mode 0600) per identity,
/// [`AUTHORIZATION_FILE`] and [`SIGNER_FILE`].
#[derive(Clone, Debug)]
pub struct Credentials {
    dir: PathBuf,
    /// Each identity's name and public NKEY.
    users: Vec<(String, String)>,
}

impl Credentials {
    /// Makes a fresh NKEY for each of `identities` in `dir` (created if missing; the seeds of
    /// an earlier run are replaced) and writes the authorization nats-server includes.
    pub fn generate(dir: &Path, identities: &[Identity]) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        restrict(dir, 0o700)?;
        let mut users = Vec::new();
        for identity in identities {
            let pair = nkeys::KeyPair::new_user();
            let seed = pair.seed().context("encoding an NKEY seed")?;
            write_private(&dir.join(seed_file_name(identity.name())), &seed)?;
            users.push((identity.name().to_owned(), pair.public_key()));
        }
        let credentials = Self {
            dir: dir.to_path_buf(),
            users,
        };
        std::fs::write(
            dir.join(AUTHORIZATION_FILE),
            authorization(identities, &credentials),
        )
        .context("writing the NATS authorization")?;
        if let Some(signer) = credentials.public_key(KEY_SET_SIGNER) {
            std::fs::write(dir.join(SIGNER_FILE), format!("{signer}\n"))
                .context("writing the key set signer's public key")?;
        }
        Ok(credentials)
    }

    /// Every identity of the platform, with fresh keys in `dir`.
    pub fn generate_all(dir: &Path) -> anyhow::Result<Self> {
        Self::generate(dir, &Identity::all())
    }

    /// The credentials an earlier [`Credentials::generate`] wrote into `dir` (perhaps by
    /// another build of the platform, with other contracts: the `nats-credentials` binary).
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let mut users = Vec::new();
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".nk"))
            else {
                continue;
            };
            let seed = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let pair = nkeys::KeyPair::from_seed(seed.trim())
                .with_context(|| format!("{} holds no NKEY seed", path.display()))?;
            users.push((name.to_owned(), pair.public_key()));
        }
        anyhow::ensure!(
            dir.join(AUTHORIZATION_FILE).exists(),
            "{} has no {AUTHORIZATION_FILE}",
            dir.display()
        );
        Ok(Self {
            dir: dir.to_path_buf(),
            users,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The seed file of the identity named `name`.
    pub fn seed_file(&self, name: &str) -> Option<PathBuf> {
        self.users
            .iter()
            .any(|(user, _)| user == name)
            .then(|| self.dir.join(seed_file_name(name)))
    }

    /// The public NKEY ("U...") of the identity named `name`.
    pub fn public_key(&self, name: &str) -> Option<&str> {
        self.users
            .iter()
            .find(|(user, _)| user == name)
            .map(|(_, key)| key.as_str())
    }

    /// The path of [`SIGNER_FILE`] in this directory.
    pub fn signer_file(&self) -> PathBuf {
        self.dir.join(SIGNER_FILE)
    }
}

/// The `authorization` block: one user per identity, by public key, with its permissions.
/// Without a matching key nobody gets in.
fn authorization(identities: &[Identity], credentials: &Credentials) -> String {
    let users: Vec<serde_json::Value> = identities
        .iter()
        .filter_map(|identity| {
            let key = credentials.public_key(identity.name())?;
            Some(serde_json::json!({
                "nkey": key,
                "permissions": identity.permissions().to_json(),
            }))
        })
        .collect();
    let block = serde_json::json!({ "users": users });
    format!(
        "# Generated at start-up from the contracts (pkg/trust); do not edit or commit.\n\
         authorization: {}\n",
        serde_json::to_string_pretty(&block).expect("JSON of plain values")
    )
}

/// `<name>.nk`.
pub fn seed_file_name(name: &str) -> String {
    format!("{name}.nk")
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .with_context(|| format!("writing {}", path.display()))
}

fn restrict(dir: &Path, mode: u32) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("restricting {}", dir.display()))?;
    }
    let _ = mode;
    Ok(())
}
