//! Throwaway TLS certificates for servers that tests reach over TLS.
//!
//! A fresh certificate authority and a server certificate it signed, valid for `127.0.0.1` and
//! `localhost` for two days, made with the `openssl` command line (it is on every machine that
//! has PostgreSQL and Redis; no crate in the tree generates certificates). Clients verify the
//! server against [`TestCertificates::ca`], as they would a private CA in production.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

/// The files of a test CA and of one server certificate signed by it, in a directory the
/// caller owns.
#[derive(Clone, Debug)]
pub struct TestCertificates {
    ca: PathBuf,
    server_certificate: PathBuf,
    server_key: PathBuf,
}

/// The server certificate's extensions: the names clients connect by, and a leaf (not a CA).
const SERVER_EXTENSIONS: &str = "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
                                 basicConstraints=critical,CA:FALSE\n\
                                 keyUsage=critical,digitalSignature\n\
                                 extendedKeyUsage=serverAuth\n";

impl TestCertificates {
    /// Generates a CA and a server certificate into `dir` (which must exist): `ca.pem`,
    /// `server.pem` and `server.key` (PKCS#8, mode 0600). Blocking: a few `openssl` runs.
    pub fn generate(dir: &Path) -> anyhow::Result<Self> {
        let ca_key = dir.join("ca.key");
        let ca = dir.join("ca.pem");
        let server_key = dir.join("server.key");
        let request = dir.join("server.csr");
        let server_certificate = dir.join("server.pem");
        let extensions = dir.join("server.ext");
        std::fs::write(&extensions, SERVER_EXTENSIONS)
            .with_context(|| format!("writing {}", extensions.display()))?;

        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        openssl(
            Command::new("openssl")
                .args(["req", "-x509", "-nodes", "-days", "2"])
                .args(ec)
                .args(["-subj", "/CN=testkit CA"])
                .args(["-addext", "basicConstraints=critical,CA:TRUE"])
                .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
                .arg("-keyout")
                .arg(&ca_key)
                .arg("-out")
                .arg(&ca),
            "making the test CA",
        )?;
        openssl(
            Command::new("openssl")
                .args(["req", "-new", "-nodes"])
                .args(ec)
                .args(["-subj", "/CN=localhost"])
                .arg("-keyout")
                .arg(&server_key)
                .arg("-out")
                .arg(&request),
            "making the server key",
        )?;
        let serial = format!("0x{}", uuid::Uuid::new_v4().simple());
        openssl(
            Command::new("openssl")
                .args(["x509", "-req", "-days", "2", "-set_serial", &serial])
                .arg("-in")
                .arg(&request)
                .arg("-CA")
                .arg(&ca)
                .arg("-CAkey")
                .arg(&ca_key)
                .arg("-extfile")
                .arg(&extensions)
                .arg("-out")
                .arg(&server_certificate),
            "signing the server certificate",
        )?;
        // PostgreSQL refuses a key file others can read.
        set_mode(&server_key, 0o600)?;
        Ok(Self {
            ca,
            server_certificate,
            server_key,
        })
    }

    /// The CA certificate (PEM) clients trust.
    pub fn ca(&self) -> &Path {
        &self.ca
    }

    /// The server's certificate (PEM), for `127.0.0.1` and `localhost`.
    pub fn server_certificate(&self) -> &Path {
        &self.server_certificate
    }

    /// The server's private key (PEM, PKCS#8).
    pub fn server_key(&self) -> &Path {
        &self.server_key
    }
}

fn openssl(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let output = command
        .output()
        .with_context(|| format!("{what}: running openssl (is it installed?)"))?;
    if !output.status.success() {
        bail!(
            "{what}: openssl failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))
}
