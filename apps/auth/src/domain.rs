//! The rules of accounts and credentials, free of storage and transport.
//!
//! Requests are parsed here once, at the edge, into types that can only hold valid values
//! ("parse, don't validate"): an [`Email`] is always trimmed, lower case and syntactically
//! plausible; a [`NewPassword`] always meets the password policy; a [`Role`] is one of the
//! platform's three roles. Parsing names every bad field at once (`rpc::Violations`), with the
//! request's own field names. Nothing here does I/O, reads the clock or draws random numbers,
//! so it is all unit-tested in place.

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use api::auth::{LoginRequest, RegisterRequest, ResetPasswordRequest};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// RFC 5321's limit on a whole address (a path is 256 octets including the angle brackets).
pub const EMAIL_MAX_CHARS: usize = 254;
/// RFC 5321's limit on the part before the `@`.
pub const EMAIL_LOCAL_MAX_CHARS: usize = 64;
/// OWASP's minimum for passwords without other composition rules.
pub const PASSWORD_MIN_CHARS: usize = 12;
/// Long enough for passphrases, short enough that nobody feeds megabytes to the hasher.
pub const PASSWORD_MAX_CHARS: usize = 128;
/// A local part shorter than this is not looked for inside the password: "jo" is in too many
/// good passphrases for the rule to mean anything.
const LOCAL_PART_MIN_CHARS_TO_SEARCH: usize = 3;
/// Refresh tokens are 43 characters; anything much longer is not one and is not hashed.
pub const REFRESH_TOKEN_MAX_CHARS: usize = 256;

/// Passwords everybody tries first, lower case, one per line (the usual top lists, plus the
/// padded variants that pass a 12-character minimum).
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common_passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect()
});

/// The id of an account: a UUID v7, so ids sort in creation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(Uuid);

impl UserId {
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// Parses the request field `field`, or says why it is not an id.
    pub fn parse(field: &str, value: &str) -> Result<Self, rpc::Error> {
        if value.is_empty() {
            return Err(rpc::Error::invalid_field(field, "is required"));
        }
        Uuid::try_parse(value)
            .map(Self)
            .map_err(|_| rpc::Error::invalid_field(field, "must be a UUID"))
    }

    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An email address: trimmed, lower case, at most 254 characters, one `@` between a non-empty
/// local part and a domain with a dot, no whitespace or control characters.
///
/// Lower-casing the local part is not what RFC 5321 says, but it is what every mailbox
/// provider does, and it keeps `Bob@x.org` and `bob@x.org` from being two accounts.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(value: &str) -> Result<Self, &'static str> {
        let email = value.trim().to_lowercase();
        if email.is_empty() {
            return Err("is required");
        }
        if email.chars().count() > EMAIL_MAX_CHARS {
            return Err("must be at most 254 characters");
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain spaces");
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err("must be an email address like name@example.com");
        };
        if domain.contains('@') {
            return Err("must contain exactly one @");
        }
        if local.is_empty() || local.chars().count() > EMAIL_LOCAL_MAX_CHARS {
            return Err("must have 1 to 64 characters before the @");
        }
        let labels_ok = domain.split('.').all(|label| !label.is_empty());
        if !domain.contains('.') || !labels_ok {
            return Err("must have a domain like example.com after the @");
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the `@`.
    pub fn local_part(&self) -> &str {
        self.0.split_once('@').map_or(&self.0, |(local, _)| local)
    }

    /// A stable, non-reversible name for the address (SHA-256, hex), for Redis keys that must
    /// not hold the address itself.
    pub fn fingerprint(&self) -> String {
        sha256_hex(self.0.as_bytes())
    }
}

/// Addresses are personal data: logs get the fingerprint's start, never the address.
impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({}…)", &self.fingerprint()[..12])
    }
}

/// A password as typed. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// A password as an operator typed it (the bootstrap command); requests go through
    /// [`Credentials::parse`].
    pub fn new(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A password that meets the policy: 12 to 128 characters, not the email's local part nor
/// containing it, not a commonly used password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPassword(Password);

impl NewPassword {
    /// Checks `value` against the policy; `email` is the account's address when it parsed.
    pub fn parse(value: &str, email: Option<&Email>) -> Result<Self, &'static str> {
        let chars = value.chars().count();
        if chars < PASSWORD_MIN_CHARS {
            return Err("must be at least 12 characters");
        }
        if chars > PASSWORD_MAX_CHARS {
            return Err("must be at most 128 characters");
        }
        let lower = value.to_lowercase();
        if let Some(email) = email {
            let local = email.local_part();
            let contains_local =
                local.chars().count() >= LOCAL_PART_MIN_CHARS_TO_SEARCH && lower.contains(local);
            if lower == local || lower == email.as_str() || contains_local {
                return Err("must not contain the email address");
            }
        }
        if COMMON_PASSWORDS.contains(lower.as_str()) {
            return Err("is too common; choose a less guessable password");
        }
        Ok(Self(Password(value.to_owned())))
    }

    pub fn password(&self) -> &Password {
        &self.0
    }
}

/// A valid registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    pub email: Email,
    pub password: NewPassword,
}

impl Registration {
    pub fn parse(request: &RegisterRequest) -> Result<Self, rpc::Error> {
        let mut violations = rpc::Violations::new();
        let email = Email::parse(&request.email)
            .map_err(|problem| violations.add("email", problem))
            .ok();
        let password = NewPassword::parse(&request.password, email.as_ref())
            .map_err(|problem| violations.add("password", problem))
            .ok();
        violations.into_result()?;
        match (email, password) {
            (Some(email), Some(password)) => Ok(Self { email, password }),
            _ => unreachable!("a field that failed to parse was recorded as a violation"),
        }
    }
}

/// Credentials as presented at login. Only their shape is checked: the policy is for new
/// passwords, and an old account's password is whatever it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub email: Email,
    pub password: Password,
}

impl Credentials {
    pub fn parse(request: &LoginRequest) -> Result<Self, rpc::Error> {
        let mut violations = rpc::Violations::new();
        let email = Email::parse(&request.email)
            .map_err(|problem| violations.add("email", problem))
            .ok();
        if request.password.is_empty() {
            violations.add("password", "is required");
        } else if request.password.chars().count() > PASSWORD_MAX_CHARS {
            // No password longer than this was ever accepted, so it cannot be right.
            violations.add("password", "must be at most 128 characters");
        }
        violations.into_result()?;
        Ok(Self {
            email: email.expect("a field that failed to parse was recorded as a violation"),
            password: Password(request.password.clone()),
        })
    }
}

/// A role of the platform, as carried in access tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Customer,
    Seller,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Customer, Role::Seller, Role::Admin];

    pub fn parse(value: &str) -> Result<Self, &'static str> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == value)
            .ok_or("must be one of customer, seller, admin")
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => rpc::roles::CUSTOMER,
            Role::Seller => rpc::roles::SELLER,
            Role::Admin => rpc::roles::ADMIN,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The roles a registration starts with: customer, whatever the address. Nobody becomes an
/// admin by registering: the first admin is made by `auth-service bootstrap-admin`, and the
/// others by an admin (GrantRole).
pub fn initial_roles() -> Vec<Role> {
    vec![Role::Customer]
}

/// The roles of the account `bootstrap-admin` creates.
pub fn bootstrap_admin_roles() -> Vec<Role> {
    vec![Role::Admin, Role::Customer]
}

/// A parsed `(user_id, role)` pair of GrantRole and RevokeRole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleChange {
    pub user_id: UserId,
    pub role: Role,
}

impl RoleChange {
    pub fn parse(user_id: &str, role: &str) -> Result<Self, rpc::Error> {
        let mut violations = rpc::Violations::new();
        let user = UserId::parse("user_id", user_id)
            .map_err(|error| {
                for detail in error.details() {
                    violations.add(detail.field.clone(), detail.problem.clone());
                }
            })
            .ok();
        let role = Role::parse(role)
            .map_err(|problem| violations.add("role", problem))
            .ok();
        violations.into_result()?;
        match (user, role) {
            (Some(user_id), Some(role)) => Ok(Self { user_id, role }),
            _ => unreachable!("a field that failed to parse was recorded as a violation"),
        }
    }
}

/// A refresh token as presented: non-empty, not absurdly long. Whether it is real is for the
/// session store to say.
pub fn parse_refresh_token(value: &str) -> Result<&str, rpc::Error> {
    let value = value.trim();
    if value.is_empty() {
        return Err(rpc::Error::invalid_field("refresh_token", "is required"));
    }
    if value.len() > REFRESH_TOKEN_MAX_CHARS {
        return Err(rpc::Error::invalid_field(
            "refresh_token",
            "is not a refresh token",
        ));
    }
    Ok(value)
}

/// Email link tokens are 32 random bytes in base64url without padding.
pub const LINK_TOKEN_CHARS: usize = 43;
/// How long an email verification link works.
pub const EMAIL_VERIFICATION_TTL: chrono::Duration = chrono::Duration::hours(24);
/// How long a password reset link works.
pub const PASSWORD_RESET_TTL: chrono::Duration = chrono::Duration::minutes(30);
/// Verification links an account may ask for (registering counts as one) per minute...
pub const VERIFICATION_REQUESTS_PER_MINUTE: i64 = 1;
/// ...and per day.
pub const VERIFICATION_REQUESTS_PER_DAY: i64 = 5;
/// What a refused link token is told, whatever the reason (used, expired, superseded, bound
/// to an address the account no longer has, or never issued): nothing about the account.
pub const INVALID_LINK_TOKEN: &str = "is invalid, expired or already used; ask for a new link";

/// What an email link is for. Each purpose has its own tokens: a verification token is no
/// reset token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkPurpose {
    VerifyEmail,
    ResetPassword,
}

impl LinkPurpose {
    /// As stored (`email_link_tokens.purpose`) and used in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkPurpose::VerifyEmail => "verify_email",
            LinkPurpose::ResetPassword => "reset_password",
        }
    }

    /// How long a link of this purpose works.
    pub fn ttl(self) -> chrono::Duration {
        match self {
            LinkPurpose::VerifyEmail => EMAIL_VERIFICATION_TTL,
            LinkPurpose::ResetPassword => PASSWORD_RESET_TTL,
        }
    }
}

/// The token of an email link as presented: 43 characters of base64url. Whether it was issued
/// is for the store to say. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkToken(String);

impl LinkToken {
    /// Checks the shape only; anything that cannot be a token gets the answer every refused
    /// token gets.
    pub fn parse(value: &str) -> Result<Self, &'static str> {
        let value = value.trim();
        if value.is_empty() {
            return Err("is required");
        }
        let shaped = value.len() == LINK_TOKEN_CHARS
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !shaped {
            return Err(INVALID_LINK_TOKEN);
        }
        Ok(Self(value.to_owned()))
    }

    /// A token just drawn (see `email_links.rs`), already in its textual form.
    pub fn from_issued(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What is stored instead of the token: SHA-256, hex.
    pub fn hash(&self) -> String {
        sha256_hex(self.0.as_bytes())
    }
}

impl fmt::Debug for LinkToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkToken(<redacted>)")
    }
}

/// A reset link's token and the new password, as far as they can be checked before the
/// token's account is known: the password is checked against that account's email once it is
/// (see [`NewPassword::parse`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordReset {
    pub token: LinkToken,
    pub new_password: NewPassword,
}

impl PasswordReset {
    pub fn parse(request: &ResetPasswordRequest) -> Result<Self, rpc::Error> {
        let mut violations = rpc::Violations::new();
        let token = LinkToken::parse(&request.token)
            .map_err(|problem| violations.add("token", problem))
            .ok();
        let new_password = NewPassword::parse(&request.new_password, None)
            .map_err(|problem| violations.add("new_password", problem))
            .ok();
        violations.into_result()?;
        match (token, new_password) {
            (Some(token), Some(new_password)) => Ok(Self {
                token,
                new_password,
            }),
            _ => unreachable!("a field that failed to parse was recorded as a violation"),
        }
    }
}

/// Parses a link token from the request field `field`.
pub fn parse_link_token(field: &str, value: &str) -> Result<LinkToken, rpc::Error> {
    LinkToken::parse(value).map_err(|problem| rpc::Error::invalid_field(field, problem))
}

/// Whether an account that asked for `in_last_minute` and `in_last_day` verification links
/// (counting registration's) may have another.
pub fn may_request_verification(in_last_minute: i64, in_last_day: i64) -> bool {
    in_last_minute < VERIFICATION_REQUESTS_PER_MINUTE && in_last_day < VERIFICATION_REQUESTS_PER_DAY
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        use std::fmt::Write as _;
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(error: &rpc::Error) -> Vec<&str> {
        error.details().iter().map(|d| d.field.as_str()).collect()
    }

    fn email(value: &str) -> Email {
        Email::parse(value).unwrap()
    }

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            email("  Ada.Lovelace@Example.COM ").as_str(),
            "ada.lovelace@example.com"
        );
        assert_eq!(email("ada@example.com").local_part(), "ada");
    }

    #[test]
    fn malformed_emails_are_refused() {
        let too_long = format!("{}@example.com", "a".repeat(250));
        let long_local = format!("{}@example.com", "a".repeat(65));
        for bad in [
            "",
            "   ",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "ada@exa@mple.com",
            "ada lovelace@example.com",
            "ada@example..com",
            "ada@.example.com",
            "ada@example.com.",
            "ada\t@example.com",
            too_long.as_str(),
            long_local.as_str(),
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let longest = format!("{}@{}.com", "a".repeat(64), "b".repeat(185));
        assert_eq!(longest.len(), 254);
        assert!(Email::parse(&longest).is_ok());
    }

    #[test]
    fn the_email_never_appears_in_debug_output() {
        let shown = format!("{:?}", email("secret.person@example.com"));
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn passwords_must_be_12_to_128_characters() {
        assert!(NewPassword::parse("short pass!", None).is_err());
        assert!(NewPassword::parse("twelve chars", None).is_ok());
        // Characters, not bytes: twelve two-byte letters are long enough.
        assert!(NewPassword::parse(&"é".repeat(12), None).is_ok());
        assert!(NewPassword::parse(&"x".repeat(128), None).is_ok());
        assert!(NewPassword::parse(&"x".repeat(129), None).is_err());
    }

    #[test]
    fn passwords_must_not_contain_the_email_local_part() {
        let ada = email("ada.lovelace@example.com");
        assert!(NewPassword::parse("ada.lovelace", Some(&ada)).is_err());
        assert!(NewPassword::parse("ada.lovelace@example.com", Some(&ada)).is_err());
        assert!(NewPassword::parse("my name is Ada.Lovelace!", Some(&ada)).is_err());
        assert!(NewPassword::parse("analytical engine notes", Some(&ada)).is_ok());
        // A two-letter local part is too short to search for.
        let jo = email("jo@example.com");
        assert!(NewPassword::parse("major joy of cooking", Some(&jo)).is_ok());
    }

    #[test]
    fn common_passwords_are_refused_whatever_their_case() {
        for common in [
            "password1234",
            "PassWord1234",
            "qwerty123456",
            "123456789012",
        ] {
            assert_eq!(
                NewPassword::parse(common, None),
                Err("is too common; choose a less guessable password"),
                "{common}"
            );
        }
        assert!(COMMON_PASSWORDS.len() >= 100);
        assert!(COMMON_PASSWORDS.iter().all(|p| *p == p.to_lowercase()));
    }

    #[test]
    fn a_registration_names_every_bad_field() {
        let error = Registration::parse(&RegisterRequest {
            email: "not an email".into(),
            password: "short".into(),
        })
        .unwrap_err();
        assert_eq!(fields(&error), ["email", "password"]);

        let ok = Registration::parse(&RegisterRequest {
            email: " Grace@Example.org".into(),
            password: "a long enough passphrase".into(),
        })
        .unwrap();
        assert_eq!(ok.email.as_str(), "grace@example.org");
    }

    #[test]
    fn login_checks_only_the_shape_of_credentials() {
        let ok = Credentials::parse(&LoginRequest {
            email: "Grace@Example.org".into(),
            password: "short".into(),
        })
        .unwrap();
        assert_eq!(ok.email.as_str(), "grace@example.org");
        let error = Credentials::parse(&LoginRequest {
            email: String::new(),
            password: String::new(),
        })
        .unwrap_err();
        assert_eq!(fields(&error), ["email", "password"]);
    }

    #[test]
    fn roles_are_the_three_platform_roles() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Ok(role));
        }
        assert!(Role::parse("Admin").is_err());
        assert!(Role::parse("root").is_err());
        let error = RoleChange::parse("nope", "root").unwrap_err();
        assert_eq!(fields(&error), ["user_id", "role"]);
    }

    #[test]
    fn registrations_start_as_customers_only() {
        assert_eq!(initial_roles(), [Role::Customer]);
        assert!(bootstrap_admin_roles().contains(&Role::Admin));
    }

    #[test]
    fn refresh_tokens_are_required_and_bounded() {
        assert!(parse_refresh_token("").is_err());
        assert!(parse_refresh_token(&"x".repeat(REFRESH_TOKEN_MAX_CHARS + 1)).is_err());
        assert_eq!(parse_refresh_token(" abc ").unwrap(), "abc");
    }

    #[test]
    fn link_tokens_are_43_base64url_characters() {
        let good = "a".repeat(LINK_TOKEN_CHARS);
        assert!(LinkToken::parse(&good).is_ok());
        assert!(LinkToken::parse(&format!(" {good} ")).is_ok());
        assert!(LinkToken::parse("abc-_DEF0123456789abcdefghijklmnopqrstuvwxy").is_ok());
        assert_eq!(LinkToken::parse(""), Err("is required"));
        for bad in [
            "a".repeat(42),
            "a".repeat(44),
            format!("{}=", "a".repeat(42)),
            format!("{}+", "a".repeat(42)),
            format!("{}é", "a".repeat(41)),
        ] {
            assert_eq!(LinkToken::parse(&bad), Err(INVALID_LINK_TOKEN), "{bad}");
        }
    }

    #[test]
    fn a_link_token_never_appears_in_debug_output_and_is_stored_hashed() {
        let token = LinkToken::parse(&"s".repeat(LINK_TOKEN_CHARS)).unwrap();
        assert!(!format!("{token:?}").contains("sss"));
        assert_eq!(token.hash().len(), 64);
        assert!(!token.hash().contains("sss"));
    }

    #[test]
    fn links_expire_after_a_day_or_half_an_hour() {
        assert_eq!(LinkPurpose::VerifyEmail.ttl(), chrono::Duration::hours(24));
        assert_eq!(
            LinkPurpose::ResetPassword.ttl(),
            chrono::Duration::minutes(30)
        );
        assert_ne!(
            LinkPurpose::VerifyEmail.as_str(),
            LinkPurpose::ResetPassword.as_str()
        );
    }

    #[test]
    fn a_reset_names_every_bad_field_and_uses_the_registration_rules() {
        let error = PasswordReset::parse(&ResetPasswordRequest {
            token: "nope".into(),
            new_password: "password1234".into(),
        })
        .unwrap_err();
        assert_eq!(fields(&error), ["token", "new_password"]);
        let ok = PasswordReset::parse(&ResetPasswordRequest {
            token: "t".repeat(LINK_TOKEN_CHARS),
            new_password: "a brand new passphrase".into(),
        })
        .unwrap();
        assert_eq!(
            ok.new_password.password().expose(),
            "a brand new passphrase"
        );
    }

    #[test]
    fn verification_requests_are_one_a_minute_and_five_a_day() {
        assert!(may_request_verification(0, 0));
        assert!(may_request_verification(0, 4));
        assert!(!may_request_verification(1, 1));
        assert!(!may_request_verification(0, 5));
    }

    #[test]
    fn sha256_is_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
