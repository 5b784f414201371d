//! The Ed25519 keys access tokens are signed with, and the key set (JWKS) published for them.
//!
//! Two sources, chosen at start-up:
//!
//! - **Key files** (`--signing-key-file`, PKCS#8 PEM, with `--signing-key-id`): the
//!   production path. The private key is a mounted secret that only this service reads, and
//!   the only key that signs. `--verification-key-file KID=PATH` (repeatable) adds keys that
//!   are published for verification only and never sign: the next key before a rotation and
//!   the retired one after it, so that replicas in the middle of a rolling rotation never
//!   disagree with the gateway (docs/runbooks/key-rotation.md). A verification key may be
//!   given as a public key PEM (`openssl pkey -pubout`) or as a private key PEM, of which
//!   only the public half is kept. The key set is the signing key, then the verification keys
//!   in the order given. The dev stack passes its dev key (kid `dev-1`) as the signing key
//!   file, so tokens from `cargo xtask dev-token` and from this service verify alike.
//! - **The `signing_keys` table**, when no file is given. A key is published from the moment
//!   it is inserted and signs from its `signs_from`: the newest active key whose `signs_from`
//!   has come signs, on every replica, which re-reads the table every
//!   [`DATABASE_FOLLOW_INTERVAL`]; when there is none (a new database), one is generated
//!   under a transaction advisory lock, so replicas agree. `auth-service rotate-signing-key`
//!   inserts the next key with `signs_from` in the future, and the key it supersedes stays
//!   published for the access-token lifetime plus the refresh interval and the verifiers'
//!   clock leeway after the new one starts signing, then drops out of the key set by itself.
//!   Setting `active = false` takes a key out at once: only for a key that leaked. Private
//!   keys in the database are a development convenience: anyone who can read the table can
//!   mint tokens. Production mounts a secret file instead.
//!
//! Private keys are never logged.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use api::auth::{JsonWebKey, JsonWebKeySet};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// "empauthk": the advisory lock serialising key creation across replicas.
const KEY_LOCK: i64 = 0x656d_7061_7574_686b;

/// How often a replica signing with database keys looks for the key it should sign with.
pub const DATABASE_FOLLOW_INTERVAL: Duration = Duration::from_secs(30);

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE, AlgorithmIdentifier
/// with OID 1.3.101.112, BIT STRING of 33 bytes (no unused bits); the 32-byte key follows.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// A key published for verification only: `KID=PATH` on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerificationKeyFile {
    pub kid: String,
    pub path: PathBuf,
}

impl std::str::FromStr for VerificationKeyFile {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let (kid, path) = value
            .split_once('=')
            .ok_or_else(|| format!("{value:?} is not KID=PATH"))?;
        let kid = kid.trim();
        if kid.is_empty() || path.is_empty() {
            return Err(format!("{value:?} is not KID=PATH"));
        }
        Ok(Self {
            kid: kid.to_owned(),
            path: PathBuf::from(path),
        })
    }
}

/// Where the keys came from, and so where the key set is read.
#[derive(Debug)]
enum Source {
    Files {
        /// The public halves of the verification-only keys.
        verification_only: Vec<JsonWebKey>,
    },
    Database {
        pool: PgPool,
        /// How long a superseded key stays published after its successor's `signs_from`.
        superseded_published_for: Duration,
    },
}

/// The key that signs new tokens, and the source of the published key set.
#[derive(Debug)]
pub struct Keys {
    signing: RwLock<Arc<tokens::SigningKey>>,
    source: Source,
}

#[derive(FromRow)]
struct StoredKey {
    kid: String,
    private_key_pem: String,
}

#[derive(FromRow)]
struct PublicKey {
    kid: String,
    public_key_x: String,
}

/// A key `rotate-signing-key` added to the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddedKey {
    pub kid: String,
    /// When replicas start signing with it (within [`DATABASE_FOLLOW_INTERVAL`]).
    pub signs_from: DateTime<Utc>,
}

impl Keys {
    /// Signs with the key in `signing_path` (PKCS#8 PEM), named `kid`, and publishes it with
    /// the public halves of `verification_only`.
    pub fn from_files(
        signing_path: &Path,
        kid: &str,
        verification_only: &[VerificationKeyFile],
    ) -> anyhow::Result<Self> {
        let pem = std::fs::read_to_string(signing_path)
            .with_context(|| format!("reading the signing key file {}", signing_path.display()))?;
        let signing = tokens::SigningKey::from_pkcs8_pem(&pem, kid)
            .with_context(|| format!("reading the signing key in {}", signing_path.display()))?;
        let signing_x = signing.jwk().x.unwrap_or_default();
        let mut published = vec![kid.to_owned()];
        let mut verification_keys = Vec::with_capacity(verification_only.len());
        for file in verification_only {
            // Two keys with one kid would make verifiers pick one of them at random.
            anyhow::ensure!(
                !published.contains(&file.kid),
                "key id {:?} is given twice (--signing-key-id, --verification-key-file): every \
                 published key needs its own",
                file.kid
            );
            let key = verification_key(&file.path, &file.kid)?;
            anyhow::ensure!(
                key.x != signing_x,
                "{} holds the signing key itself: publish it once, under --signing-key-id",
                file.path.display()
            );
            published.push(file.kid.clone());
            verification_keys.push(key);
        }
        tracing::info!(
            kid,
            verification_only = ?&published[1..],
            "signing access tokens with the key file"
        );
        Ok(Self {
            signing: RwLock::new(Arc::new(signing)),
            source: Source::Files {
                verification_only: verification_keys,
            },
        })
    }

    /// Signs with the newest active database key whose time has come, generated if there is
    /// none. A key superseded by a newer one stays published for `access_token_ttl` (plus the
    /// follow interval and the verifiers' leeway) after the newer one starts signing.
    pub async fn from_database(pool: PgPool, access_token_ttl: Duration) -> anyhow::Result<Self> {
        let signing = signing_key_of_database(&pool).await?;
        tracing::info!(
            kid = signing.kid(),
            "signing access tokens with a key from the database (use --signing-key-file in \
             production)"
        );
        let superseded_published_for = access_token_ttl
            + DATABASE_FOLLOW_INTERVAL
            + Duration::from_secs(tokens::LEEWAY_SECONDS);
        Ok(Self {
            signing: RwLock::new(Arc::new(signing)),
            source: Source::Database {
                pool,
                superseded_published_for,
            },
        })
    }

    /// The key new tokens are signed with.
    pub fn signing_key(&self) -> Arc<tokens::SigningKey> {
        self.signing.read().expect("signing key lock").clone()
    }

    /// The public half of every key whose tokens may still be around, or that will sign soon.
    pub async fn key_set(&self) -> Result<JsonWebKeySet, sqlx::Error> {
        let keys = match &self.source {
            Source::Files { verification_only } => {
                let mut keys = vec![message(self.signing_key().jwk())];
                keys.extend(verification_only.iter().cloned());
                keys
            }
            Source::Database {
                pool,
                superseded_published_for,
            } => {
                let rows: Vec<PublicKey> = sqlx::query_as(
                    "SELECT kid, public_key_x FROM signing_keys AS k \
                     WHERE active AND NOT EXISTS ( \
                         SELECT 1 FROM signing_keys AS newer \
                         WHERE newer.active AND newer.signs_from > k.signs_from \
                           AND newer.signs_from <= now() - make_interval(secs => $1)) \
                     ORDER BY signs_from DESC, kid DESC",
                )
                .bind(superseded_published_for.as_secs_f64())
                .fetch_all(pool)
                .await?;
                rows.into_iter()
                    .map(|row| ed25519_jwk(row.kid, row.public_key_x))
                    .collect()
            }
        };
        Ok(JsonWebKeySet { keys })
    }

    /// Whether the signing key comes from the database, and so must be followed there
    /// ([`Keys::follow_database`]).
    pub fn follows_database(&self) -> bool {
        matches!(self.source, Source::Database { .. })
    }

    /// Looks for the key to sign with every [`DATABASE_FOLLOW_INTERVAL`] until `cancel`.
    pub async fn follow_database(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(DATABASE_FOLLOW_INTERVAL) => {}
            }
            if let Err(error) = self.refresh_from_database().await {
                tracing::warn!(
                    error = %format!("{error:#}"),
                    "could not look for a newer signing key; still signing with the current one"
                );
            }
        }
    }

    /// Switches to the key the database says should sign now, if it is another one.
    pub async fn refresh_from_database(&self) -> anyhow::Result<()> {
        let Source::Database { pool, .. } = &self.source else {
            return Ok(());
        };
        let newest = signing_key_of_database(pool).await?;
        if newest.kid() != self.signing_key().kid() {
            tracing::info!(kid = newest.kid(), "signing access tokens with a newer key");
            *self.signing.write().expect("signing key lock") = Arc::new(newest);
        }
        Ok(())
    }
}

/// Adds a key to the database that is published at once and signs from `signs_in` from now,
/// superseding the key that signs now (`auth-service rotate-signing-key`).
pub async fn add_database_key(pool: &PgPool, signs_in: Duration) -> anyhow::Result<AddedKey> {
    let key = tokens::SigningKey::generate(Uuid::now_v7().to_string());
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(KEY_LOCK)
        .execute(&mut *tx)
        .await?;
    let signs_from: DateTime<Utc> = sqlx::query_scalar(
        "INSERT INTO signing_keys (kid, private_key_pem, public_key_x, signs_from) \
         VALUES ($1, $2, $3, now() + make_interval(secs => $4)) RETURNING signs_from",
    )
    .bind(key.kid())
    .bind(key.to_pkcs8_pem())
    .bind(key.jwk().x.context("an Ed25519 JWK has x")?)
    .bind(signs_in.as_secs_f64())
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(AddedKey {
        kid: key.kid().to_owned(),
        signs_from,
    })
}

/// The newest active key whose `signs_from` has come, or a new one when there is none.
async fn signing_key_of_database(pool: &PgPool) -> anyhow::Result<tokens::SigningKey> {
    const NEWEST: &str = "SELECT kid, private_key_pem FROM signing_keys \
                          WHERE active AND signs_from <= now() \
                          ORDER BY signs_from DESC, created_at DESC, kid DESC LIMIT 1";
    // The usual case, without the lock: the key exists.
    if let Some(stored) = sqlx::query_as::<_, StoredKey>(NEWEST)
        .fetch_optional(pool)
        .await?
    {
        return stored_key(stored);
    }
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(KEY_LOCK)
        .execute(&mut *tx)
        .await?;
    let newest: Option<StoredKey> = sqlx::query_as(NEWEST).fetch_optional(&mut *tx).await?;
    let signing = match newest {
        Some(stored) => stored_key(stored)?,
        None => {
            let key = tokens::SigningKey::generate(Uuid::now_v7().to_string());
            let x = key.jwk().x.context("an Ed25519 JWK has x")?;
            sqlx::query(
                "INSERT INTO signing_keys (kid, private_key_pem, public_key_x) \
                 VALUES ($1, $2, $3)",
            )
            .bind(key.kid())
            .bind(key.to_pkcs8_pem())
            .bind(x)
            .execute(&mut *tx)
            .await?;
            tracing::info!(kid = key.kid(), "generated a signing key");
            key
        }
    };
    tx.commit().await?;
    Ok(signing)
}

fn stored_key(stored: StoredKey) -> anyhow::Result<tokens::SigningKey> {
    tokens::SigningKey::from_pkcs8_pem(&stored.private_key_pem, stored.kid)
        .context("reading the newest signing key of the database")
}

/// The public half of the key in the PEM file `path`, as the JWK `kid`.
fn verification_key(path: &Path, kid: &str) -> anyhow::Result<JsonWebKey> {
    let pem = std::fs::read_to_string(path)
        .with_context(|| format!("reading the verification key file {}", path.display()))?;
    public_jwk(&pem, kid).with_context(|| format!("reading the key in {}", path.display()))
}

/// An Ed25519 public key (`BEGIN PUBLIC KEY`, SubjectPublicKeyInfo) or the public half of a
/// private key (`BEGIN PRIVATE KEY`, PKCS#8), as a JWK.
fn public_jwk(pem: &str, kid: &str) -> anyhow::Result<JsonWebKey> {
    let jwk = if pem.contains("-----BEGIN PRIVATE KEY-----") {
        message(tokens::SigningKey::from_pkcs8_pem(pem, kid)?.jwk())
    } else {
        let body = pem_body(pem, "PUBLIC KEY").context(
            "not a PEM public key (BEGIN PUBLIC KEY) nor private key (BEGIN PRIVATE KEY)",
        )?;
        let der = STANDARD
            .decode(body)
            .map_err(|e| anyhow::anyhow!("the PEM body is not base64: {e}"))?;
        let public = der
            .strip_prefix(&ED25519_SPKI_PREFIX)
            .filter(|key| key.len() == 32)
            .context("not an Ed25519 public key")?;
        ed25519_jwk(kid.to_owned(), URL_SAFE_NO_PAD.encode(public))
    };
    // The verifier's own checks (a valid curve point), so a bad key stops the start instead
    // of breaking the gateway's key set.
    let jwks = tokens::Jwks::from_json(&serde_json::to_vec(&JsonWebKeySet {
        keys: vec![jwk.clone()],
    })?)?;
    tokens::Verifier::new(&jwks, tokens::DEFAULT_ISSUER, tokens::DEFAULT_AUDIENCE)?;
    Ok(jwk)
}

/// The base64 between `-----BEGIN <label>-----` and `-----END <label>-----`.
fn pem_body(pem: &str, label: &str) -> Option<String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    Some(pem[start..stop].split_whitespace().collect())
}

fn ed25519_jwk(kid: String, x: String) -> JsonWebKey {
    JsonWebKey {
        kty: "OKP".into(),
        crv: "Ed25519".into(),
        x,
        kid,
        alg: tokens::ALGORITHM.into(),
        r#use: "sig".into(),
    }
}

fn message(jwk: tokens::Jwk) -> JsonWebKey {
    JsonWebKey {
        kty: jwk.kty,
        crv: jwk.crv.unwrap_or_default(),
        x: jwk.x.unwrap_or_default(),
        kid: jwk.kid.unwrap_or_default(),
        alg: jwk.alg.unwrap_or_default(),
        r#use: jwk.key_use.unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `key`'s public half as `openssl pkey -pubout` writes it.
    fn public_pem(key: &tokens::SigningKey) -> String {
        let x = URL_SAFE_NO_PAD.decode(key.jwk().x.unwrap()).unwrap();
        let der = [ED25519_SPKI_PREFIX.as_slice(), &x].concat();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            STANDARD.encode(der)
        )
    }

    #[test]
    fn a_verification_key_is_read_from_a_public_or_a_private_pem() {
        let key = tokens::SigningKey::generate("k");
        let from_public = public_jwk(&public_pem(&key), "old-1").unwrap();
        let from_private = public_jwk(&key.to_pkcs8_pem(), "old-1").unwrap();
        assert_eq!(from_public, from_private);
        assert_eq!(from_public.kid, "old-1");
        assert_eq!(Some(from_public.x), key.jwk().x);
    }

    #[test]
    fn anything_but_an_ed25519_key_is_refused() {
        assert!(public_jwk("not a key", "k").is_err());
        let short = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            STANDARD.encode([0u8; 20])
        );
        assert!(public_jwk(&short, "k").is_err());
    }

    #[test]
    fn verification_key_files_are_kid_and_path() {
        let parsed: VerificationKeyFile = "auth-1=/run/secrets/auth-1.pem".parse().unwrap();
        assert_eq!(parsed.kid, "auth-1");
        assert_eq!(parsed.path, PathBuf::from("/run/secrets/auth-1.pem"));
        assert!(
            "/run/secrets/auth-1.pem"
                .parse::<VerificationKeyFile>()
                .is_err()
        );
        assert!("=/x.pem".parse::<VerificationKeyFile>().is_err());
        assert!("auth-1=".parse::<VerificationKeyFile>().is_err());
    }

    #[test]
    fn a_kid_is_published_once() {
        let dir = std::env::temp_dir().join(format!("auth-keys-{}", Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let current = tokens::SigningKey::generate("auth-2");
        let previous = tokens::SigningKey::generate("auth-1");
        let current_path = dir.join("current.pem");
        let previous_path = dir.join("previous.pem");
        std::fs::write(&current_path, current.to_pkcs8_pem()).unwrap();
        std::fs::write(&previous_path, public_pem(&previous)).unwrap();
        let file = |kid: &str, path: &Path| VerificationKeyFile {
            kid: kid.into(),
            path: path.to_path_buf(),
        };

        let keys =
            Keys::from_files(&current_path, "auth-2", &[file("auth-1", &previous_path)]).unwrap();
        assert_eq!(keys.signing_key().kid(), "auth-2");
        let same_kid = Keys::from_files(&current_path, "auth-2", &[file("auth-2", &previous_path)]);
        assert!(same_kid.is_err());
        let signing_key_twice =
            Keys::from_files(&current_path, "auth-2", &[file("again", &current_path)]);
        assert!(signing_key_twice.is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
