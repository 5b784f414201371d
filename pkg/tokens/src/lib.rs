//! Access tokens: JWTs signed with Ed25519 (`alg: EdDSA`), minted by whoever holds a
//! [`SigningKey`] and checked by a [`Verifier`] built from a JWKS document (RFC 7517).
//!
//! An access token carries a header `typ: "at+jwt"` (RFC 9068), the `kid` of the key that signed
//! it, and the [`Claims`] below. The verifier is deliberately strict: the algorithm is pinned to
//! EdDSA before any key is looked at (so `none` and "HS256 with the public key as the secret"
//! cannot work), the `kid` must name a key of the set, and `iss`, `aud`, `exp` and `nbf` are
//! required and checked with a small leeway for clock skew.
//!
//! This crate must never log or print a private key or a whole token, and never accept a token
//! it could not verify: every rejection is a distinct [`VerifyError`] so callers can log why.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The `iss` of tokens minted by the auth service.
pub const DEFAULT_ISSUER: &str = "emporium-auth";
/// The `aud` of tokens meant for the public API.
pub const DEFAULT_AUDIENCE: &str = "emporium-api";

/// The JOSE `typ` of an access token (RFC 9068), so no other kind of JWT signed with the same
/// key (a refresh token, an e-mail link) is ever accepted as one.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// The only JWS algorithm minted and accepted.
pub const ALGORITHM: &str = "EdDSA";
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECONDS: u64 = 30;

/// The claims of an access token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Role names, e.g. `["customer"]` or `["admin"]`.
    pub roles: Vec<String>,
    pub iss: String,
    pub aud: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Not valid before, seconds since the Unix epoch.
    pub nbf: i64,
    /// A unique token id.
    pub jti: String,
}

/// One JSON Web Key. Only Ed25519 public keys (`kty: OKP`, `crv: Ed25519`) are usable; other
/// members of a key set are kept when parsed but ignored by the [`Verifier`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// The public key, base64url without padding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
}

/// A JSON Web Key Set: `{"keys": [...]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

impl Jwks {
    /// Parses a JWKS document.
    pub fn from_json(json: &[u8]) -> anyhow::Result<Self> {
        serde_json::from_slice(json).map_err(|e| anyhow::anyhow!("malformed JWKS document: {e}"))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a JWKS always serializes")
    }
}

/// An Ed25519 private key with its key id. `Debug` never shows the key.
pub struct SigningKey {
    kid: String,
    key: ed25519_dalek::SigningKey,
    encoding_key: EncodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl SigningKey {
    /// A fresh random key.
    pub fn generate(kid: impl Into<String>) -> Self {
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        Self::from_dalek(key, kid.into())
    }

    /// Reads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`, as `openssl genpkey
    /// -algorithm ed25519` writes it).
    pub fn from_pkcs8_pem(pem: &str, kid: impl Into<String>) -> anyhow::Result<Self> {
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .map_err(|e| anyhow::anyhow!("not a PKCS#8 Ed25519 private key: {e}"))?;
        Ok(Self::from_dalek(key, kid.into()))
    }

    fn from_dalek(key: ed25519_dalek::SigningKey, kid: String) -> Self {
        let der = key
            .to_pkcs8_der()
            .expect("an Ed25519 key always encodes as PKCS#8");
        let encoding_key = EncodingKey::from_ed_der(der.as_bytes());
        Self {
            kid,
            key,
            encoding_key,
        }
    }

    /// The private key as PKCS#8 PEM. Treat the result as a secret.
    pub fn to_pkcs8_pem(&self) -> String {
        self.key
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .expect("an Ed25519 key always encodes as PKCS#8 PEM")
            .to_string()
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half, as a JWK to publish in a key set.
    pub fn jwk(&self) -> Jwk {
        Jwk {
            kty: "OKP".to_owned(),
            crv: Some("Ed25519".to_owned()),
            x: Some(URL_SAFE_NO_PAD.encode(self.key.verifying_key().as_bytes())),
            kid: Some(self.kid.clone()),
            alg: Some(ALGORITHM.to_owned()),
            key_use: Some("sig".to_owned()),
        }
    }

    /// A key set holding just this key's public half.
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: vec![self.jwk()],
        }
    }

    /// An access token for `subject` with `roles`, valid from now for `ttl`.
    pub fn mint(
        &self,
        subject: &str,
        roles: &[&str],
        ttl: Duration,
        issuer: &str,
        audience: &str,
    ) -> String {
        let now = now_seconds();
        let ttl_seconds = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let claims = Claims {
            sub: subject.to_owned(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            iss: issuer.to_owned(),
            aud: audience.to_owned(),
            exp: now.saturating_add(ttl_seconds),
            iat: now,
            nbf: now,
            jti: uuid::Uuid::now_v7().to_string(),
        };
        self.sign(&claims)
    }

    /// Signs arbitrary claims as an access token. [`SigningKey::mint`] is the usual way in;
    /// this one lets tests and tools build tokens with chosen times.
    pub fn sign(&self, claims: &Claims) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding_key)
            .expect("signing with a valid Ed25519 key cannot fail")
    }
}

/// Why a token was refused. Each variant is a different failure, for logs and metrics; the
/// HTTP answer is the same for all of them.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token uses algorithm {0:?}; only EdDSA is accepted")]
    UnsupportedAlgorithm(String),
    #[error("the token is not an access token (typ {0:?})")]
    WrongTokenType(Option<String>),
    #[error("the token names no key id")]
    MissingKeyId,
    #[error("the token was signed by unknown key {0:?}")]
    UnknownKeyId(String),
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by someone else")]
    WrongIssuer,
    #[error("the token is meant for another audience")]
    WrongAudience,
    #[error("the token's claims are invalid: {0}")]
    InvalidClaims(String),
}

/// Checks access tokens against the Ed25519 keys of a key set.
pub struct Verifier {
    keys: HashMap<String, DecodingKey>,
    validation: Validation,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("kids", &self.key_ids())
            .field("iss", &self.validation.iss)
            .field("aud", &self.validation.aud)
            .finish()
    }
}

/// The part of a JOSE header the verifier looks at before it trusts anything.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
}

impl Verifier {
    /// A verifier for tokens from `issuer` to `audience` signed by any Ed25519 key of `jwks`.
    ///
    /// Keys that are not Ed25519 signing keys, or have no `kid`, are skipped (a shared key set
    /// may hold keys for other consumers); an Ed25519 key whose public key is malformed is an
    /// error, because it means the set is broken.
    pub fn new(jwks: &Jwks, issuer: &str, audience: &str) -> anyhow::Result<Self> {
        let mut keys = HashMap::new();
        for jwk in &jwks.keys {
            let is_ed25519 = jwk.kty == "OKP" && jwk.crv.as_deref() == Some("Ed25519");
            let for_eddsa = jwk.alg.as_deref().is_none_or(|alg| alg == ALGORITHM);
            let for_signing = jwk.key_use.as_deref().is_none_or(|u| u == "sig");
            let (Some(kid), true, true, true) = (&jwk.kid, is_ed25519, for_eddsa, for_signing)
            else {
                continue;
            };
            let x = jwk
                .x
                .as_deref()
                .ok_or_else(|| anyhow::anyhow!("Ed25519 key {kid:?} has no \"x\""))?;
            let public = URL_SAFE_NO_PAD
                .decode(x)
                .map_err(|e| anyhow::anyhow!("Ed25519 key {kid:?}: \"x\" is not base64url: {e}"))?;
            let public: [u8; 32] = public.try_into().map_err(|bytes: Vec<u8>| {
                anyhow::anyhow!(
                    "Ed25519 key {kid:?}: \"x\" is {} bytes, not 32",
                    bytes.len()
                )
            })?;
            ed25519_dalek::VerifyingKey::from_bytes(&public)
                .map_err(|e| anyhow::anyhow!("Ed25519 key {kid:?} is not a valid point: {e}"))?;
            keys.insert(kid.clone(), DecodingKey::from_ed_der(&public));
        }

        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.leeway = LEEWAY_SECONDS;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        Ok(Self { keys, validation })
    }

    /// The key ids this verifier trusts.
    pub fn key_ids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        kids
    }

    pub fn has_key(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// The claims of `token` when it is a valid access token for this issuer and audience.
    pub fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let header = raw_header(token)?;
        // The algorithm is checked first and against a constant: the token never chooses how
        // it is verified.
        if header.alg != ALGORITHM {
            return Err(VerifyError::UnsupportedAlgorithm(header.alg));
        }
        if header.typ.as_deref() != Some(ACCESS_TOKEN_TYPE) {
            return Err(VerifyError::WrongTokenType(header.typ));
        }
        let kid = header.kid.ok_or(VerifyError::MissingKeyId)?;
        let key = self
            .keys
            .get(&kid)
            .ok_or_else(|| VerifyError::UnknownKeyId(kid.clone()))?;
        jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.into_kind() {
                ErrorKind::InvalidSignature => VerifyError::BadSignature,
                ErrorKind::ExpiredSignature => VerifyError::Expired,
                ErrorKind::ImmatureSignature => VerifyError::NotYetValid,
                ErrorKind::InvalidIssuer => VerifyError::WrongIssuer,
                ErrorKind::InvalidAudience => VerifyError::WrongAudience,
                ErrorKind::MissingRequiredClaim(claim) => {
                    VerifyError::InvalidClaims(format!("missing {claim}"))
                }
                ErrorKind::InvalidClaimFormat(claim) => {
                    VerifyError::InvalidClaims(format!("malformed {claim}"))
                }
                ErrorKind::Json(e) => VerifyError::InvalidClaims(e.to_string()),
                _ => VerifyError::Malformed,
            })
    }
}

/// Decodes the JOSE header without trusting it.
fn raw_header(token: &str) -> Result<RawHeader, VerifyError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_claims), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed);
    };
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| VerifyError::Malformed)?;
    serde_json::from_slice(&json).map_err(|_| VerifyError::Malformed)
}

fn now_seconds() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn verifier_for(key: &SigningKey) -> Verifier {
        Verifier::new(&key.jwks(), DEFAULT_ISSUER, DEFAULT_AUDIENCE).unwrap()
    }

    fn claims(offset_exp: i64, offset_nbf: i64) -> Claims {
        let now = now_seconds();
        Claims {
            sub: "user-1".into(),
            roles: vec!["customer".into()],
            iss: DEFAULT_ISSUER.into(),
            aud: DEFAULT_AUDIENCE.into(),
            exp: now + offset_exp,
            iat: now,
            nbf: now + offset_nbf,
            jti: "jti-1".into(),
        }
    }

    /// Builds a token from raw JSON parts and a signature of our choosing.
    fn forge(header: serde_json::Value, claims: &Claims, signature: &[u8]) -> String {
        let header = URL_SAFE_NO_PAD.encode(header.to_string());
        let claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
        format!("{header}.{claims}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    #[test]
    fn a_minted_token_verifies_with_its_claims() {
        let key = SigningKey::generate("k1");
        let token = key.mint(
            "user-1",
            &["admin", "customer"],
            HOUR,
            DEFAULT_ISSUER,
            DEFAULT_AUDIENCE,
        );
        let claims = verifier_for(&key).verify(&token).unwrap();
        assert_eq!(claims.sub, "user-1");
        assert_eq!(claims.roles, ["admin", "customer"]);
        assert_eq!(claims.iss, DEFAULT_ISSUER);
        assert_eq!(claims.aud, DEFAULT_AUDIENCE);
        assert_eq!(claims.exp - claims.iat, 3600);
        assert!(!claims.jti.is_empty());
    }

    #[test]
    fn the_header_names_the_algorithm_key_and_type() {
        let key = SigningKey::generate("k1");
        let token = key.mint("u", &[], HOUR, DEFAULT_ISSUER, DEFAULT_AUDIENCE);
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::EdDSA);
        assert_eq!(header.kid.as_deref(), Some("k1"));
        assert_eq!(header.typ.as_deref(), Some(ACCESS_TOKEN_TYPE));
    }

    #[test]
    fn pem_round_trip_keeps_the_key() {
        let key = SigningKey::generate("k1");
        let pem = key.to_pkcs8_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
        let back = SigningKey::from_pkcs8_pem(&pem, "k1").unwrap();
        assert_eq!(back.jwk(), key.jwk());
        let token = back.mint("u", &[], HOUR, DEFAULT_ISSUER, DEFAULT_AUDIENCE);
        assert!(verifier_for(&key).verify(&token).is_ok());
        assert!(SigningKey::from_pkcs8_pem("not a key", "k1").is_err());
    }

    #[test]
    fn the_jwk_is_an_okp_ed25519_signing_key() {
        let key = SigningKey::generate("k1");
        let json: serde_json::Value = serde_json::from_str(&key.jwks().to_json()).unwrap();
        let jwk = &json["keys"][0];
        assert_eq!(jwk["kty"], "OKP");
        assert_eq!(jwk["crv"], "Ed25519");
        assert_eq!(jwk["kid"], "k1");
        assert_eq!(jwk["alg"], "EdDSA");
        assert_eq!(jwk["use"], "sig");
        let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
        assert_eq!(x.len(), 32);
        // jsonwebtoken reads the same document.
        let parsed: jsonwebtoken::jwk::JwkSet = serde_json::from_value(json).unwrap();
        assert!(DecodingKey::from_jwk(&parsed.keys[0]).is_ok());
    }

    #[test]
    fn an_unknown_kid_is_refused() {
        let key = SigningKey::generate("k1");
        let other = SigningKey::generate("k2");
        let token = other.mint("u", &[], HOUR, DEFAULT_ISSUER, DEFAULT_AUDIENCE);
        assert_eq!(
            verifier_for(&key).verify(&token),
            Err(VerifyError::UnknownKeyId("k2".into()))
        );
    }

    #[test]
    fn a_token_signed_by_another_key_with_a_known_kid_is_a_bad_signature() {
        let key = SigningKey::generate("k1");
        let impostor = SigningKey::generate("k1");
        let token = impostor.mint("u", &[], HOUR, DEFAULT_ISSUER, DEFAULT_AUDIENCE);
        assert_eq!(
            verifier_for(&key).verify(&token),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn tampered_claims_are_a_bad_signature() {
        let key = SigningKey::generate("k1");
        let token = key.mint("u", &["customer"], HOUR, DEFAULT_ISSUER, DEFAULT_AUDIENCE);
        let mut parts: Vec<&str> = token.split('.').collect();
        let mut elevated = claims(3600, 0);
        elevated.roles = vec!["admin".into()];
        let forged_claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&elevated).unwrap());
        parts[1] = &forged_claims;
        assert_eq!(
            verifier_for(&key).verify(&parts.join(".")),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn alg_none_is_refused() {
        let key = SigningKey::generate("k1");
        let token = forge(
            serde_json::json!({"alg": "none", "typ": ACCESS_TOKEN_TYPE, "kid": "k1"}),
            &claims(3600, 0),
            b"",
        );
        assert_eq!(
            verifier_for(&key).verify(&token),
            Err(VerifyError::UnsupportedAlgorithm("none".into()))
        );
    }

    #[test]
    fn hs256_with_the_public_key_as_secret_is_refused() {
        let key = SigningKey::generate("k1");
        let public = URL_SAFE_NO_PAD.decode(key.jwk().x.unwrap()).unwrap();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        header.typ = Some(ACCESS_TOKEN_TYPE.into());
        let token = jsonwebtoken::encode(
            &header,
            &claims(3600, 0),
            &EncodingKey::from_secret(&public),
        )
        .unwrap();
        assert_eq!(
            verifier_for(&key).verify(&token),
            Err(VerifyError::UnsupportedAlgorithm("HS256".into()))
        );
    }

    #[test]
    fn expired_tokens_are_refused_beyond_the_leeway() {
        let key = SigningKey::generate("k1");
        let verifier = verifier_for(&key);
        let expired = key.sign(&claims(-(LEEWAY_SECONDS as i64) - 60, -7200));
        assert_eq!(verifier.verify(&expired), Err(VerifyError::Expired));
        // Within the leeway a just-expired token still passes: clocks drift.
        let just_expired = key.sign(&claims(-5, -7200));
        assert!(verifier.verify(&just_expired).is_ok());
    }

    #[test]
    fn tokens_from_the_future_are_refused() {
        let key = SigningKey::generate("k1");
        let token = key.sign(&claims(7200, 600));
        assert_eq!(
            verifier_for(&key).verify(&token),
            Err(VerifyError::NotYetValid)
        );
    }

    #[test]
    fn wrong_issuer_and_audience_are_refused() {
        let key = SigningKey::generate("k1");
        let verifier = verifier_for(&key);
        let token = key.mint("u", &[], HOUR, "someone-else", DEFAULT_AUDIENCE);
        assert_eq!(verifier.verify(&token), Err(VerifyError::WrongIssuer));
        let token = key.mint("u", &[], HOUR, DEFAULT_ISSUER, "another-api");
        assert_eq!(verifier.verify(&token), Err(VerifyError::WrongAudience));
    }

    #[test]
    fn a_missing_kid_and_a_wrong_typ_are_refused() {
        let key = SigningKey::generate("k1");
        let verifier = verifier_for(&key);
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(ACCESS_TOKEN_TYPE.into());
        let token = jsonwebtoken::encode(&header, &claims(3600, 0), &key.encoding_key).unwrap();
        assert_eq!(verifier.verify(&token), Err(VerifyError::MissingKeyId));

        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some("k1".into());
        let token = jsonwebtoken::encode(&header, &claims(3600, 0), &key.encoding_key).unwrap();
        assert_eq!(
            verifier.verify(&token),
            Err(VerifyError::WrongTokenType(Some("JWT".into())))
        );
    }

    #[test]
    fn missing_claims_are_refused() {
        let key = SigningKey::generate("k1");
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some("k1".into());
        header.typ = Some(ACCESS_TOKEN_TYPE.into());
        let now = now_seconds();
        let claims = serde_json::json!({"sub": "u", "exp": now + 60, "iss": DEFAULT_ISSUER, "aud": DEFAULT_AUDIENCE});
        let token = jsonwebtoken::encode(&header, &claims, &key.encoding_key).unwrap();
        assert!(matches!(
            verifier_for(&key).verify(&token),
            Err(VerifyError::InvalidClaims(_))
        ));
    }

    #[test]
    fn garbage_is_malformed() {
        let key = SigningKey::generate("k1");
        let verifier = verifier_for(&key);
        for token in ["", "abc", "a.b", "a.b.c", "a.b.c.d", "!!!.e30.e30"] {
            assert_eq!(
                verifier.verify(token),
                Err(VerifyError::Malformed),
                "{token}"
            );
        }
    }

    #[test]
    fn foreign_keys_in_the_set_are_skipped_and_broken_ed25519_keys_are_errors() {
        let key = SigningKey::generate("k1");
        let mut jwks = key.jwks();
        jwks.keys.push(Jwk {
            kty: "RSA".into(),
            crv: None,
            x: None,
            kid: Some("rsa-1".into()),
            alg: Some("RS256".into()),
            key_use: Some("sig".into()),
        });
        let verifier = Verifier::new(&jwks, DEFAULT_ISSUER, DEFAULT_AUDIENCE).unwrap();
        assert_eq!(verifier.key_ids(), ["k1"]);

        let mut broken = key.jwk();
        broken.kid = Some("k2".into());
        broken.x = Some(URL_SAFE_NO_PAD.encode([1u8; 7]));
        jwks.keys.push(broken);
        assert!(Verifier::new(&jwks, DEFAULT_ISSUER, DEFAULT_AUDIENCE).is_err());
    }

    #[test]
    fn a_jwks_document_round_trips() {
        let key = SigningKey::generate("k1");
        let json = key.jwks().to_json();
        let back = Jwks::from_json(json.as_bytes()).unwrap();
        assert_eq!(back, key.jwks());
        assert!(Jwks::from_json(b"{}").is_err());
    }
}
