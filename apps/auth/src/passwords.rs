//! Password hashing: argon2id with OWASP's parameters, run off the async runtime and bounded.
//!
//! A hash costs ~19 MiB and tens of milliseconds of one core on purpose, which makes it the
//! easiest way to exhaust the service: a burst of logins would queue unbounded work on the
//! blocking pool. So every hash and verification first takes a permit of a semaphore sized to
//! the cores (`--max-concurrent-hashes`), and waits for one at most `--hash-queue-timeout-ms`
//! (or the request's remaining time, if shorter). A caller that cannot get a permit in time
//! gets [`HashError::Busy`], which the handlers answer with `unavailable`: the CPU does at most
//! as many hashes as it has cores, and the queue in front of it is bounded in time.
//!
//! Logins for unknown addresses verify against a dummy hash made with the same parameters, so
//! that they take as long as wrong passwords. Passwords and hashes are never logged.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::domain::Password;

/// OWASP Password Storage Cheat Sheet: argon2id, m = 19 MiB, t = 2, p = 1.
pub const MEMORY_KIB: u32 = 19_456;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every hashing slot stayed busy for the whole allowed wait.
    #[error("all password hashing slots are busy")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// Hashes and verifies passwords with a bounded number of hashes at a time.
#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
    /// A hash of a random password, verified when the account does not exist.
    dummy_hash: Arc<str>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("free_slots", &self.slots.available_permits())
            .field("queue_timeout", &self.queue_timeout)
            .finish()
    }
}

impl PasswordHasher {
    /// A hasher running at most `max_concurrent` hashes (at least one), each waiting at most
    /// `queue_timeout` for its turn. Computes the dummy hash, so it takes one hash's time.
    pub fn new(max_concurrent: usize, queue_timeout: Duration) -> Result<Self, HashError> {
        let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
            .map_err(|e| HashError::Failed(e.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut random = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut random);
        let dummy_hash = hash_with(&argon2, &random)?;
        Ok(Self {
            argon2,
            slots: Arc::new(Semaphore::new(max_concurrent.max(1))),
            queue_timeout,
            dummy_hash: dummy_hash.into(),
        })
    }

    /// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`) of `password`.
    pub async fn hash(
        &self,
        password: &Password,
        deadline: Option<Duration>,
    ) -> Result<String, HashError> {
        let permit = self.slot(deadline).await?;
        let argon2 = self.argon2.clone();
        let password = password.expose().as_bytes().to_vec();
        run_blocking(permit, move || hash_with(&argon2, &password)).await
    }

    /// Whether `password` matches `stored`; with no stored hash (unknown account) it checks a
    /// dummy hash, taking the same time, and answers `false`.
    pub async fn verify(
        &self,
        password: &Password,
        stored: Option<&str>,
        deadline: Option<Duration>,
    ) -> Result<bool, HashError> {
        let permit = self.slot(deadline).await?;
        let argon2 = self.argon2.clone();
        let known = stored.is_some();
        let stored = stored.map_or_else(|| self.dummy_hash.to_string(), str::to_owned);
        let password = password.expose().as_bytes().to_vec();
        let matches = run_blocking(permit, move || {
            let parsed =
                PasswordHash::new(&stored).map_err(|e| HashError::Failed(e.to_string()))?;
            Ok(argon2.verify_password(&password, &parsed).is_ok())
        })
        .await?;
        Ok(known && matches)
    }

    /// Waits for a hashing slot for the queue timeout, or less when the request has less time.
    async fn slot(&self, deadline: Option<Duration>) -> Result<OwnedSemaphorePermit, HashError> {
        let wait = deadline.map_or(self.queue_timeout, |left| left.min(self.queue_timeout));
        match tokio::time::timeout(wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_closed)) => Err(HashError::Busy),
            Err(_elapsed) => {
                metrics::counter!("auth_password_hash_rejected_total").increment(1);
                Err(HashError::Busy)
            }
        }
    }
}

/// Runs `work` on the blocking pool holding `permit` until it is done, even when the request
/// that started it is dropped (the hash still occupies a core until it finishes).
async fn run_blocking<T: Send + 'static>(
    permit: OwnedSemaphorePermit,
    work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
) -> Result<T, HashError> {
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await
    .map_err(|e| HashError::Failed(format!("the hashing task failed: {e}")))?
}

fn hash_with(argon2: &Argon2<'_>, password: &[u8]) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| HashError::Failed(e.to_string()))?;
    argon2
        .hash_password(password, &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| HashError::Failed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::NewPassword;

    fn password(value: &str) -> Password {
        NewPassword::parse(value, None).unwrap().password().clone()
    }

    #[tokio::test]
    async fn a_hash_verifies_only_its_own_password() {
        let hasher = PasswordHasher::new(2, Duration::from_secs(5)).unwrap();
        let right = password("correct horse staple");
        let hash = hasher.hash(&right, None).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(hasher.verify(&right, Some(&hash), None).await.unwrap());
        let wrong = password("incorrect horse staple");
        assert!(!hasher.verify(&wrong, Some(&hash), None).await.unwrap());
        // Unknown accounts never verify, whatever the password.
        assert!(!hasher.verify(&right, None, None).await.unwrap());
    }

    #[tokio::test]
    async fn a_caller_that_waits_too_long_for_a_slot_is_told_busy() {
        let hasher = PasswordHasher::new(1, Duration::from_millis(1)).unwrap();
        let held = hasher.slots.clone().acquire_owned().await.unwrap();
        let outcome = hasher.hash(&password("correct horse staple"), None).await;
        assert!(matches!(outcome, Err(HashError::Busy)), "{outcome:?}");
        drop(held);
        assert!(
            hasher
                .hash(&password("correct horse staple"), None)
                .await
                .is_ok()
        );
    }
}
