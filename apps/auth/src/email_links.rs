//! The tokens of the links auth has the notification service email: verifying an address and
//! resetting a password.
//!
//! A token is 32 random bytes from the operating system (base64url, 43 characters), stored
//! only as its SHA-256 in `email_link_tokens`, beside the account, the address it was sent to,
//! its purpose and its expiry. Random-and-stored rather than signed: single use, a newer reset
//! link superseding older ones, and "only while the account still has this address" all need
//! a stored record anyway, and a record that holds only a hash needs no key that could leak
//! or be rotated (a stolen copy of the table opens nothing). 256 random bits cannot be
//! guessed, and a plain SHA-256 suffices for a secret of that entropy (argon2 is for
//! passwords, which can be guessed).
//!
//! Issuing writes the record and its event (`user.email_verification_requested` or
//! `user.password_reset_requested`, carrying the token) in the caller's transaction, through
//! the outbox, so a link is emailed exactly when its record committed. The token itself is
//! never logged and never stored in clear by auth; the event is its only copy.

use chrono::{DateTime, Utc};
use events::TraceHeaders;
use sqlx::PgConnection;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;

use crate::domain::{LinkPurpose, LinkToken, UserId};
use crate::error::Error;
use crate::store;

/// Rows of an account that stopped working more than this long ago are deleted when the
/// account is issued a new link (the limits count a day back).
const KEEP_FOR: chrono::Duration = chrono::Duration::days(7);

/// A new token: 32 bytes from the operating system's generator.
pub fn generate() -> LinkToken {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    LinkToken::from_issued(URL_SAFE_NO_PAD.encode(bytes))
}

/// Issues `token` for `purpose` to `account` at `email` (the account's address now, lower
/// case), valid from `now` for the purpose's lifetime, and appends the event that gets it
/// emailed; all in the caller's transaction. A reset link supersedes the account's earlier
/// reset links. Answers when the link expires.
pub async fn issue(
    conn: &mut PgConnection,
    trace: &TraceHeaders,
    purpose: LinkPurpose,
    account: UserId,
    email: &str,
    token: &LinkToken,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, Error> {
    let expires_at = now + purpose.ttl();
    store::delete_stale_link_tokens(conn, account, now - KEEP_FOR).await?;
    if purpose == LinkPurpose::ResetPassword {
        store::revoke_link_tokens(conn, account, purpose, now).await?;
    }
    store::insert_link_token(
        conn,
        &token.hash(),
        purpose,
        account,
        email,
        now,
        expires_at,
    )
    .await?;
    let user_id = account.to_string();
    let expires = api::timestamp(expires_at);
    match purpose {
        LinkPurpose::VerifyEmail => {
            let event = api::auth::EmailVerificationRequested {
                user_id: user_id.clone(),
                email: email.to_owned(),
                token: token.expose().to_owned(),
                expires_at: expires,
            };
            events::Outbox::append(conn, trace, &user_id, &event).await?;
        }
        LinkPurpose::ResetPassword => {
            let event = api::auth::PasswordResetRequested {
                user_id: user_id.clone(),
                email: email.to_owned(),
                token: token.expose().to_owned(),
                expires_at: expires,
            };
            events::Outbox::append(conn, trace, &user_id, &event).await?;
        }
    }
    metrics::counter!("auth_email_links_issued_total", "purpose" => purpose.as_str()).increment(1);
    Ok(expires_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_32_random_bytes_in_base64url() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), crate::domain::LINK_TOKEN_CHARS);
        assert_eq!(URL_SAFE_NO_PAD.decode(a.expose()).unwrap().len(), 32);
        // What is drawn is what a request may present.
        assert_eq!(LinkToken::parse(a.expose()).unwrap(), a);
    }
}
