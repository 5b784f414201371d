//! The dev JWT key (kid "dev-1") in `.dev/keys/`, and tokens signed with it.

use std::time::Duration;

use anyhow::Context as _;

use crate::layout::Layout;

/// The key id of the dev key.
pub const DEV_KEY_ID: &str = "dev-1";

/// The roles a dev token can carry, each with a fixed dev user.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Admin,
    Customer,
    Seller,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Customer => "customer",
            Role::Seller => "seller",
        }
    }

    /// The dev user a token of this role is for, unless `--subject` says otherwise.
    pub fn dev_subject(self) -> uuid::Uuid {
        match self {
            Role::Admin => uuid::uuid!("01900000-0000-7000-8000-0000000ad001"),
            Role::Customer => uuid::uuid!("01900000-0000-7000-8000-0000000c0001"),
            Role::Seller => uuid::uuid!("01900000-0000-7000-8000-000000050001"),
        }
    }
}

/// Reads the dev key, generating it (and the JWKS the gateway reads) on first use.
pub fn load_or_generate(layout: &Layout) -> anyhow::Result<tokens::SigningKey> {
    let pem_path = layout.signing_key();
    let key = if pem_path.exists() {
        let pem = std::fs::read_to_string(&pem_path)
            .with_context(|| format!("reading {}", pem_path.display()))?;
        tokens::SigningKey::from_pkcs8_pem(&pem, DEV_KEY_ID)
            .with_context(|| format!("reading {}", pem_path.display()))?
    } else {
        let key = tokens::SigningKey::generate(DEV_KEY_ID);
        std::fs::create_dir_all(layout.keys())?;
        write_private(&pem_path, &key.to_pkcs8_pem())?;
        key
    };
    // Rewritten each time so it always matches the key.
    let jwks = tokens::Jwks {
        keys: vec![key.jwk()],
    };
    std::fs::write(layout.jwks(), jwks.to_json())
        .with_context(|| format!("writing {}", layout.jwks().display()))?;
    Ok(key)
}

fn write_private(path: &std::path::Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

/// A token for `subject` with `role`, issued for the public API.
pub fn mint(key: &tokens::SigningKey, subject: uuid::Uuid, role: Role, ttl: Duration) -> String {
    key.mint(
        &subject.to_string(),
        &[role.name()],
        ttl,
        tokens::DEFAULT_ISSUER,
        tokens::DEFAULT_AUDIENCE,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_generated_once_and_its_tokens_verify_against_the_jwks() {
        let root = std::env::temp_dir().join(format!("xtask-keys-{}", uuid::Uuid::new_v4()));
        let layout = Layout::at(&root);

        let first = load_or_generate(&layout).unwrap();
        let second = load_or_generate(&layout).unwrap();
        assert_eq!(first.to_pkcs8_pem(), second.to_pkcs8_pem());
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(layout.signing_key())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        let jwks = tokens::Jwks::from_json(&std::fs::read(layout.jwks()).unwrap()).unwrap();
        let verifier =
            tokens::Verifier::new(&jwks, tokens::DEFAULT_ISSUER, tokens::DEFAULT_AUDIENCE).unwrap();
        let token = mint(
            &second,
            Role::Seller.dev_subject(),
            Role::Seller,
            Duration::from_secs(3600),
        );
        let claims = verifier.verify(&token).unwrap();
        assert_eq!(claims.sub, Role::Seller.dev_subject().to_string());
        assert_eq!(claims.roles, vec!["seller"]);
        assert!(claims.exp - claims.iat == 3600);

        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn each_role_has_its_own_dev_user() {
        let subjects = [Role::Admin, Role::Customer, Role::Seller].map(Role::dev_subject);
        assert_ne!(subjects[0], subjects[1]);
        assert_ne!(subjects[1], subjects[2]);
        assert_ne!(subjects[0], subjects[2]);
    }
}
