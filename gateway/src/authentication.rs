//! Who is calling: bearer tokens checked against the auth service's public keys, and the
//! access rule of each route.
//!
//! Keys come from a JWKS file read at start, or from the auth service (over NATS, or a JWKS
//! URL) fetched at start, refreshed every few minutes, and fetched again (at most once a
//! minute) when a token names a key id we do not know yet, so key rotation needs no restart.
//! With no key source every route that needs a user answers 401.
//!
//! Over NATS the gateway takes keys from the auth service's own identity only: the key set
//! comes signed with auth's NKEY and is refused unless the signature verifies against the
//! public key the gateway was given (`--jwt-jwks-signer-file`). NATS permissions already let
//! nobody else answer auth's subjects; the signature holds even if they were misconfigured.
//! Fetched keys that can no longer be refreshed are trusted for `--jwt-jwks-max-stale-seconds`
//! at most.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use rpc::{Access, ErrorCode, Principal};
use tokens::{Claims, Jwks, Verifier, VerifyError};
use tokio::task::JoinHandle;

use crate::error::ApiError;

/// Fetching a JWKS document again because of an unknown key id happens at most this often,
/// so a flood of tokens with made-up key ids cannot flood the auth service.
const ON_DEMAND_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// How soon to try again when the key set could not be fetched at all.
const RETRY_INTERVAL: Duration = Duration::from_secs(10);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

enum KeySource {
    File(PathBuf),
    /// Fetched at start, refreshed periodically and on unknown key ids.
    Remote {
        /// Boxed: the clients are large next to a path, and there is one per gateway.
        fetch: Box<Fetch>,
        refresh_interval: Duration,
        /// When a fetch was last triggered by an unknown key id.
        last_on_demand: tokio::sync::Mutex<Option<Instant>>,
    },
}

enum Fetch {
    Url {
        url: String,
        http: reqwest::Client,
    },
    /// The auth service's `GetSignedKeySet` over NATS: the document `/.well-known/jwks.json`
    /// serves, signed by the auth service's NATS identity, without an HTTP hop or a URL.
    Nats {
        client: api::auth::AuthClient,
        /// The public NKEY the key set must be signed by.
        signer: String,
    },
}

impl Fetch {
    fn describe(&self) -> String {
        match self {
            Fetch::Url { url, .. } => url.clone(),
            Fetch::Nats { .. } => format!("the {} service over NATS", api::auth::SERVICE_NAME),
        }
    }

    async fn jwks(&self) -> anyhow::Result<Jwks> {
        match self {
            Fetch::Url { url, http } => {
                let response = http
                    .get(url)
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .map_err(|e| anyhow::anyhow!("fetching JWKS from {url}: {e}"))?;
                let bytes = response
                    .bytes()
                    .await
                    .map_err(|e| anyhow::anyhow!("reading JWKS from {url}: {e}"))?;
                Jwks::from_json(&bytes)
            }
            Fetch::Nats { client, signer } => {
                let context = rpc::Context::background().with_timeout(FETCH_TIMEOUT);
                let set = client
                    .get_signed_key_set(&context, &api::auth::GetSignedKeySetRequest {})
                    .await
                    .map_err(|e| anyhow::anyhow!("fetching JWKS from the auth service: {e}"))?;
                Jwks::from_json(verified_key_set(&set, signer)?)
            }
        }
    }
}

/// The key set document of `set`, if `signer` signed it.
fn verified_key_set<'a>(
    set: &'a api::auth::SignedKeySet,
    signer: &str,
) -> anyhow::Result<&'a [u8]> {
    anyhow::ensure!(
        set.signer == signer,
        "the key set is signed by {:?}, not by the auth service's identity {signer}: refused",
        set.signer
    );
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&set.signature)
        .map_err(|_| anyhow::anyhow!("the key set's signature is not base64url: refused"))?;
    nkeys::KeyPair::from_public_key(signer)
        .and_then(|key| key.verify(&set.jwks, &signature))
        .map_err(|_| anyhow::anyhow!("the key set's signature does not verify: refused"))?;
    Ok(&set.jwks)
}

/// Reads the auth service's public NKEY from `path` (`--jwt-jwks-signer-file`).
pub fn read_signer(path: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading the key set signer {}: {e}", path.display()))?;
    let key = text.trim().to_owned();
    nkeys::KeyPair::from_public_key(&key)
        .map_err(|e| anyhow::anyhow!("{} does not hold a public NKEY: {e}", path.display()))?;
    anyhow::ensure!(
        key.starts_with('U'),
        "{} does not hold a user's public NKEY (U...)",
        path.display()
    );
    Ok(key)
}

/// Verifies bearer tokens; cheap to share behind an `Arc`.
pub struct Authenticator {
    issuer: String,
    audience: String,
    verifier: RwLock<Option<Installed>>,
    source: Option<KeySource>,
    /// How long fetched keys are trusted without a successful refresh.
    max_stale: Duration,
}

/// The verifier of the keys last loaded, and when they were.
struct Installed {
    verifier: Arc<Verifier>,
    at: Instant,
}

/// Where the keys come from; at most one.
pub struct KeySettings {
    pub jwks_file: Option<PathBuf>,
    pub jwks_url: Option<String>,
    /// Fetch them from the auth service over this connection.
    pub jwks_nats: Option<async_nats::Client>,
    /// The auth service's public NKEY, which must have signed a key set fetched over NATS.
    pub jwks_signer: Option<String>,
    /// How long fetched keys are trusted when they can no longer be refreshed.
    pub max_stale: Duration,
    pub refresh_interval: Duration,
    pub issuer: String,
    pub audience: String,
}

impl Authenticator {
    /// Loads the keys. A JWKS file that cannot be read is an error (the deployment is
    /// broken); a JWKS URL that cannot be fetched yet is retried in the background, since the
    /// auth service may simply be starting too.
    pub async fn start(
        settings: KeySettings,
    ) -> anyhow::Result<(Arc<Self>, Option<JoinHandle<()>>)> {
        let remote = |fetch| KeySource::Remote {
            fetch: Box::new(fetch),
            refresh_interval: settings.refresh_interval,
            last_on_demand: tokio::sync::Mutex::new(None),
        };
        let source = match (settings.jwks_file, settings.jwks_url, settings.jwks_nats) {
            (Some(path), _, _) => Some(KeySource::File(path)),
            (None, Some(url), _) => Some(remote(Fetch::Url {
                url,
                http: reqwest::Client::builder()
                    .timeout(FETCH_TIMEOUT)
                    .build()
                    .map_err(|e| anyhow::anyhow!("building the JWKS HTTP client: {e}"))?,
            })),
            (None, None, Some(nats)) => {
                let signer = settings.jwks_signer.ok_or_else(|| {
                    anyhow::anyhow!(
                        "--jwt-jwks-nats needs --jwt-jwks-signer-file: the auth service's public NKEY, which signs the key set"
                    )
                })?;
                Some(remote(Fetch::Nats {
                    client: api::auth::AuthClient::new(rpc::Client::new(nats)),
                    signer,
                }))
            }
            (None, None, None) => None,
        };
        let authenticator = Arc::new(Self {
            issuer: settings.issuer,
            audience: settings.audience,
            verifier: RwLock::new(None),
            source,
            max_stale: settings.max_stale,
        });
        match &authenticator.source {
            None => {
                tracing::warn!(
                    "no --jwt-jwks-file, --jwt-jwks-url or --jwt-jwks-nats: every route that needs a user answers 401"
                );
                Ok((authenticator, None))
            }
            Some(KeySource::File(path)) => {
                let bytes = tokio::fs::read(path)
                    .await
                    .map_err(|e| anyhow::anyhow!("reading JWKS file {}: {e}", path.display()))?;
                let jwks = Jwks::from_json(&bytes)?;
                authenticator.install(&jwks)?;
                Ok((authenticator, None))
            }
            Some(KeySource::Remote { fetch, .. }) => {
                if let Err(e) = authenticator.refresh().await {
                    tracing::warn!(source = %fetch.describe(), error = %format!("{e:#}"), "JWKS not available yet; retrying in the background");
                }
                let task = tokio::spawn(refresh_periodically(Arc::clone(&authenticator)));
                Ok((authenticator, Some(task)))
            }
        }
    }

    fn install(&self, jwks: &Jwks) -> anyhow::Result<()> {
        let verifier = Verifier::new(jwks, &self.issuer, &self.audience)?;
        if verifier.key_ids().is_empty() {
            tracing::warn!("the JWKS holds no Ed25519 signing key: every token will be refused");
        } else {
            tracing::info!(kids = ?verifier.key_ids(), "access token keys loaded");
        }
        *self.verifier.write().expect("verifier lock poisoned") = Some(Installed {
            verifier: Arc::new(verifier),
            at: Instant::now(),
        });
        Ok(())
    }

    /// The keys to verify with: those last loaded, unless they were fetched and could not be
    /// refreshed for longer than `max_stale` (a file's keys do not age).
    fn current(&self) -> Option<Arc<Verifier>> {
        let installed = self.verifier.read().expect("verifier lock poisoned");
        let installed = installed.as_ref()?;
        let fetched = matches!(self.source, Some(KeySource::Remote { .. }));
        if fetched && installed.at.elapsed() > self.max_stale {
            return None;
        }
        Some(Arc::clone(&installed.verifier))
    }

    /// Fetches the key set and installs its keys.
    async fn refresh(&self) -> anyhow::Result<()> {
        let Some(KeySource::Remote { fetch, .. }) = &self.source else {
            return Ok(());
        };
        self.install(&fetch.jwks().await?)
    }

    /// Fetches the keys again because a token named the unknown key `kid`, unless that was
    /// done less than a minute ago. Returns whether `kid` is known now.
    ///
    /// The lock is held during the fetch, so a burst of requests with a freshly rotated key
    /// causes one fetch and all of them wait for it instead of failing.
    async fn refresh_for_unknown_kid(&self, kid: &str) -> bool {
        let Some(KeySource::Remote { last_on_demand, .. }) = &self.source else {
            return false;
        };
        let mut last = last_on_demand.lock().await;
        if self.current().is_some_and(|v| v.has_key(kid)) {
            return true;
        }
        if last.is_some_and(|at| at.elapsed() < ON_DEMAND_REFRESH_INTERVAL) {
            return false;
        }
        *last = Some(Instant::now());
        match self.refresh().await {
            Ok(()) => self.current().is_some_and(|v| v.has_key(kid)),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "JWKS refresh for an unknown key id failed");
                false
            }
        }
    }

    /// The claims of a valid token.
    async fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let Some(verifier) = self.current() else {
            if self.source.is_some() {
                // Configured, but not fetched yet or too long unrefreshed: try again later.
                return Err(ApiError::service(
                    ErrorCode::Unavailable,
                    "access tokens cannot be checked now: the signing keys could not be fetched",
                ));
            }
            return Err(ApiError::unauthenticated(
                "access tokens cannot be checked: no signing keys are configured",
            ));
        };
        let result = match verifier.verify(token) {
            Err(VerifyError::UnknownKeyId(kid)) if self.refresh_for_unknown_kid(&kid).await => self
                .current()
                .map_or(Err(VerifyError::UnknownKeyId(kid)), |v| v.verify(token)),
            other => other,
        };
        result.map_err(|e| {
            tracing::debug!(reason = %e, "access token refused");
            metrics::counter!("gateway_token_rejections_total", "reason" => rejection_reason(&e))
                .increment(1);
            ApiError::unauthenticated(format!("invalid access token: {e}"))
        })
    }

    /// Applies a route's access rule to the request's `Authorization` header; the principal
    /// to send to the service when there is one.
    ///
    /// A public route works without a token, but a token that is sent must be valid: a
    /// client with a broken token learns so at once instead of silently seeing the anonymous
    /// view.
    pub async fn authorize(
        &self,
        headers: &HeaderMap,
        access: Access,
    ) -> Result<Option<Principal>, ApiError> {
        let token = match bearer_token(headers)? {
            Some(token) => token,
            None => {
                return match access {
                    Access::Public => Ok(None),
                    Access::User | Access::Admin => Err(ApiError::unauthenticated(
                        "this route needs a bearer access token",
                    )),
                    // Never routed; refuse rather than forward if a contract ever says so.
                    Access::Internal => Err(ApiError::not_found("no such route")),
                };
            }
        };
        let claims = self.verify(token).await?;
        let principal = Principal {
            user_id: claims.sub,
            // Roles travel comma separated in a header: anything that could break that
            // encoding is not a role we know.
            roles: claims
                .roles
                .into_iter()
                .filter(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_graphic() && b != b','))
                .collect(),
        };
        match access {
            Access::Public | Access::User => Ok(Some(principal)),
            Access::Admin if principal.is_admin() => Ok(Some(principal)),
            Access::Admin => Err(ApiError::service(
                ErrorCode::PermissionDenied,
                "this route needs the admin role",
            )),
            Access::Internal => Err(ApiError::not_found("no such route")),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header; a header of another form is an
/// error, not an anonymous request.
fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthenticated("the Authorization header is not valid text"))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::unauthenticated(
            "the Authorization header must be \"Bearer <access token>\"",
        ));
    }
    Ok(Some(token))
}

fn rejection_reason(error: &VerifyError) -> &'static str {
    match error {
        VerifyError::Malformed => "malformed",
        VerifyError::UnsupportedAlgorithm(_) => "algorithm",
        VerifyError::WrongTokenType(_) => "type",
        VerifyError::MissingKeyId => "missing_kid",
        VerifyError::UnknownKeyId(_) => "unknown_kid",
        VerifyError::BadSignature => "signature",
        VerifyError::Expired => "expired",
        VerifyError::NotYetValid => "not_yet_valid",
        VerifyError::WrongIssuer => "issuer",
        VerifyError::WrongAudience => "audience",
        VerifyError::InvalidClaims(_) => "claims",
    }
}

async fn refresh_periodically(authenticator: Arc<Authenticator>) {
    let Some(KeySource::Remote {
        refresh_interval, ..
    }) = &authenticator.source
    else {
        return;
    };
    loop {
        let wait = if authenticator.current().is_some() {
            *refresh_interval
        } else {
            RETRY_INTERVAL
        };
        tokio::time::sleep(wait).await;
        if let Err(e) = authenticator.refresh().await {
            tracing::warn!(error = %format!("{e:#}"), "JWKS refresh failed; keeping the previous keys");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(authorization: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = authorization {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    async fn authenticator(key: &tokens::SigningKey) -> Arc<Authenticator> {
        let dir = std::env::temp_dir().join(format!("gateway-jwks-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("jwks.json");
        std::fs::write(&path, key.jwks().to_json()).unwrap();
        let (authenticator, task) = Authenticator::start(KeySettings {
            jwks_file: Some(path),
            jwks_url: None,
            jwks_nats: None,
            jwks_signer: None,
            max_stale: Duration::from_secs(3600),
            refresh_interval: Duration::from_secs(300),
            issuer: tokens::DEFAULT_ISSUER.into(),
            audience: tokens::DEFAULT_AUDIENCE.into(),
        })
        .await
        .unwrap();
        assert!(task.is_none());
        std::fs::remove_dir_all(&dir).unwrap();
        authenticator
    }

    fn signed(jwks: &[u8], by: &nkeys::KeyPair) -> api::auth::SignedKeySet {
        api::auth::SignedKeySet {
            jwks: jwks.to_vec(),
            signature: base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(by.sign(jwks).unwrap()),
            signer: by.public_key(),
        }
    }

    #[test]
    fn a_key_set_is_taken_only_from_the_auth_services_identity() {
        let auth = nkeys::KeyPair::new_user();
        let stranger = nkeys::KeyPair::new_user();
        let jwks = tokens::SigningKey::generate("k1").jwks().to_json();
        let jwks = jwks.as_bytes();
        let expected = auth.public_key();

        assert_eq!(
            verified_key_set(&signed(jwks, &auth), &expected).unwrap(),
            jwks
        );
        // Signed by someone else, who says so.
        let error = verified_key_set(&signed(jwks, &stranger), &expected).unwrap_err();
        assert!(
            error.to_string().contains("not by the auth service"),
            "{error}"
        );
        // Signed by someone else, claiming to be auth.
        let mut forged = signed(jwks, &stranger);
        forged.signer = expected.clone();
        let error = verified_key_set(&forged, &expected).unwrap_err();
        assert!(error.to_string().contains("does not verify"), "{error}");
        // auth's signature over other keys.
        let mut swapped = signed(jwks, &auth);
        swapped.jwks = tokens::SigningKey::generate("evil")
            .jwks()
            .to_json()
            .into_bytes();
        assert!(verified_key_set(&swapped, &expected).is_err());
        // No signature at all.
        let mut unsigned = signed(jwks, &auth);
        unsigned.signature.clear();
        assert!(verified_key_set(&unsigned, &expected).is_err());
    }

    #[tokio::test]
    async fn fetched_keys_that_cannot_be_refreshed_are_trusted_only_for_a_while() {
        let key = tokens::SigningKey::generate("k1");
        let (authenticator, task) = Authenticator::start(KeySettings {
            jwks_file: None,
            // Nothing listens there: every refresh fails.
            jwks_url: Some("http://127.0.0.1:9/.well-known/jwks.json".into()),
            jwks_nats: None,
            jwks_signer: None,
            max_stale: Duration::from_millis(300),
            refresh_interval: Duration::from_secs(300),
            issuer: tokens::DEFAULT_ISSUER.into(),
            audience: tokens::DEFAULT_AUDIENCE.into(),
        })
        .await
        .unwrap();
        task.unwrap().abort();
        // As if a fetch had succeeded just now.
        authenticator.install(&key.jwks()).unwrap();
        let token = headers(Some(&token(&key, &["customer"])));
        assert!(authenticator.authorize(&token, Access::User).await.is_ok());
        tokio::time::sleep(Duration::from_millis(400)).await;
        let refused = authenticator
            .authorize(&token, Access::User)
            .await
            .unwrap_err();
        assert_eq!(
            refused.code(),
            crate::error::ApiCode::Service(ErrorCode::Unavailable),
            "{}",
            refused.message()
        );
        // A successful fetch trusts them again.
        authenticator.install(&key.jwks()).unwrap();
        assert!(authenticator.authorize(&token, Access::User).await.is_ok());
    }

    fn token(key: &tokens::SigningKey, roles: &[&str]) -> String {
        let token = key.mint(
            "user-1",
            roles,
            Duration::from_secs(600),
            tokens::DEFAULT_ISSUER,
            tokens::DEFAULT_AUDIENCE,
        );
        format!("Bearer {token}")
    }

    fn status(result: Result<Option<Principal>, ApiError>) -> u16 {
        result.map_or_else(|e| e.code().status().as_u16(), |_| 200)
    }

    #[tokio::test]
    async fn access_rules_are_applied() {
        let key = tokens::SigningKey::generate("k1");
        let auth = authenticator(&key).await;
        let customer = token(&key, &["customer"]);
        let admin = token(&key, &["admin"]);

        assert_eq!(
            auth.authorize(&headers(None), Access::Public)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            status(auth.authorize(&headers(None), Access::User).await),
            401
        );
        assert_eq!(
            status(auth.authorize(&headers(None), Access::Admin).await),
            401
        );

        let principal = auth
            .authorize(&headers(Some(&customer)), Access::User)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(principal.user_id, "user-1");
        assert_eq!(principal.roles, ["customer"]);
        assert_eq!(
            status(
                auth.authorize(&headers(Some(&customer)), Access::Admin)
                    .await
            ),
            403
        );
        assert_eq!(
            status(auth.authorize(&headers(Some(&admin)), Access::Admin).await),
            200
        );
        assert_eq!(
            status(
                auth.authorize(&headers(Some(&admin)), Access::Internal)
                    .await
            ),
            404
        );
    }

    #[tokio::test]
    async fn a_bad_token_is_refused_even_on_public_routes() {
        let key = tokens::SigningKey::generate("k1");
        let auth = authenticator(&key).await;
        let stranger = token(&tokens::SigningKey::generate("k2"), &["admin"]);
        for value in [
            stranger.as_str(),
            "Bearer not-a-token",
            "Basic dXNlcjpwYXNz",
            "Bearer ",
        ] {
            assert_eq!(
                status(auth.authorize(&headers(Some(value)), Access::Public).await),
                401,
                "{value}"
            );
        }
    }

    #[tokio::test]
    async fn without_keys_every_token_is_refused() {
        let (auth, task) = Authenticator::start(KeySettings {
            jwks_file: None,
            jwks_url: None,
            jwks_nats: None,
            jwks_signer: None,
            max_stale: Duration::from_secs(3600),
            refresh_interval: Duration::from_secs(300),
            issuer: tokens::DEFAULT_ISSUER.into(),
            audience: tokens::DEFAULT_AUDIENCE.into(),
        })
        .await
        .unwrap();
        assert!(task.is_none());
        let key = tokens::SigningKey::generate("k1");
        assert_eq!(
            status(auth.authorize(&headers(None), Access::Public).await),
            200
        );
        assert_eq!(
            status(auth.authorize(&headers(None), Access::User).await),
            401
        );
        assert_eq!(
            status(
                auth.authorize(&headers(Some(&token(&key, &["admin"]))), Access::Admin)
                    .await
            ),
            401
        );
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        assert_eq!(
            bearer_token(&headers(Some("bearer abc"))).unwrap(),
            Some("abc")
        );
        assert_eq!(
            bearer_token(&headers(Some("Bearer  abc "))).unwrap(),
            Some("abc")
        );
        assert!(bearer_token(&headers(Some("Token abc"))).is_err());
    }
}
