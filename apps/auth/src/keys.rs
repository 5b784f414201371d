//! The Ed25519 keys access tokens are signed with, and the key set (JWKS) published for them.
//!
//! Two sources, chosen at start-up:
//!
//! - **A key file** (`--signing-key-file`, PKCS#8 PEM, with `--signing-key-id`): the
//!   production path. The private key is a mounted secret that only this service reads; the
//!   key set is that one key. The dev stack passes its dev key (kid `dev-1`) this way, so
//!   tokens from `cargo xtask dev-token` and from this service verify alike.
//! - **The `signing_keys` table**, when no file is given: at start-up, under a transaction
//!   advisory lock, the newest active key is taken, or one is generated and inserted, so every
//!   replica signs with the same key. The key set is every active key, so a key can be rotated
//!   by inserting a newer one and deactivating the old one after the access token lifetime.
//!   Private keys in the database are a development convenience: anyone who can read the
//!   table can mint tokens. Production mounts a secret file instead.
//!
//! Private keys are never logged.

use std::path::Path;

use anyhow::Context as _;
use api::auth::{JsonWebKey, JsonWebKeySet};
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

/// "empauthk": the advisory lock serialising key creation across replicas.
const KEY_LOCK: i64 = 0x656d_7061_7574_686b;

/// Where the signing key came from, and so where the key set is read.
#[derive(Debug)]
enum Source {
    File,
    Database(PgPool),
}

/// The key that signs new tokens, and the source of the published key set.
#[derive(Debug)]
pub struct Keys {
    signing: tokens::SigningKey,
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

impl Keys {
    /// The key in `path` (PKCS#8 PEM), named `kid`.
    pub fn from_file(path: &Path, kid: &str) -> anyhow::Result<Self> {
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("reading the signing key file {}", path.display()))?;
        let signing = tokens::SigningKey::from_pkcs8_pem(&pem, kid)
            .with_context(|| format!("reading the signing key in {}", path.display()))?;
        tracing::info!(kid, "signing access tokens with the key file");
        Ok(Self {
            signing,
            source: Source::File,
        })
    }

    /// The newest active key of the database, created if there is none.
    pub async fn from_database(pool: PgPool) -> anyhow::Result<Self> {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(KEY_LOCK)
            .execute(&mut *tx)
            .await?;
        let newest: Option<StoredKey> = sqlx::query_as(
            "SELECT kid, private_key_pem FROM signing_keys WHERE active \
             ORDER BY created_at DESC, kid DESC LIMIT 1",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let signing = match newest {
            Some(stored) => tokens::SigningKey::from_pkcs8_pem(&stored.private_key_pem, stored.kid)
                .context("reading the newest signing key of the database")?,
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
        tracing::info!(
            kid = signing.kid(),
            "signing access tokens with a key from the database (use --signing-key-file in \
             production)"
        );
        Ok(Self {
            signing,
            source: Source::Database(pool),
        })
    }

    pub fn signing_key(&self) -> &tokens::SigningKey {
        &self.signing
    }

    /// The public half of every key whose tokens may still be around.
    pub async fn key_set(&self) -> Result<JsonWebKeySet, sqlx::Error> {
        let keys = match &self.source {
            Source::File => vec![message(self.signing.jwk())],
            Source::Database(pool) => {
                let rows: Vec<PublicKey> = sqlx::query_as(
                    "SELECT kid, public_key_x FROM signing_keys WHERE active \
                     ORDER BY created_at DESC, kid DESC",
                )
                .fetch_all(pool)
                .await?;
                rows.into_iter()
                    .map(|row| JsonWebKey {
                        kty: "OKP".into(),
                        crv: "Ed25519".into(),
                        x: row.public_key_x,
                        kid: row.kid,
                        alg: tokens::ALGORITHM.into(),
                        r#use: "sig".into(),
                    })
                    .collect()
            }
        };
        Ok(JsonWebKeySet { keys })
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
