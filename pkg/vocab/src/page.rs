//! Keyset pagination: the page size a listing accepts, and the opaque page token
//! (`next_cursor` in the contracts) that says where the next page starts.
//!
//! A listing is ordered by a key that never ties (a timestamp or rank, then an id), and a page
//! is "the first N rows after this key". Unlike OFFSET, pages then neither skip nor repeat rows
//! when others are added meanwhile, and each page costs the same however deep it is.
//!
//! The token carries the last key of the previous page. It is opaque to callers, so a service
//! can change what it holds: it is the base64url (no padding) of `<version>:<position>`, where
//! the position's type ([`Keyset`]) writes its own text and owns its version. A token written
//! under another version, or by another listing, does not parse, and the caller gets a field
//! problem instead of a silently wrong page. Tokens are not signed: one a caller forged can
//! only say "start after this key", which a caller may ask for anyway.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::Problem;

/// How many items one page holds: 1 to 100, 20 when the request says 0 (proto3's default, so
/// a request that does not mention the size gets a sensible one). The contracts document
/// these bounds for every listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageSize(u8);

impl PageSize {
    pub const DEFAULT: PageSize = PageSize(20);
    pub const MAX: PageSize = PageSize(100);

    pub fn parse(value: i32) -> Result<Self, Problem> {
        match u8::try_from(value) {
            Ok(0) => Ok(Self::DEFAULT),
            Ok(items) if items <= Self::MAX.0 => Ok(PageSize(items)),
            _ => Err(format!("must be between 1 and {}", Self::MAX.0).into()),
        }
    }

    pub const fn get(self) -> usize {
        self.0 as usize
    }

    /// The size as SQL `LIMIT` takes it.
    pub const fn as_i64(self) -> i64 {
        self.0 as i64
    }
}

/// A position in one listing's order, as a page token carries it.
pub trait Keyset: Sized {
    /// Written before the position in every token. Change it whenever [`Keyset::write`]'s
    /// format changes, so tokens handed out before are refused instead of misread.
    const VERSION: u32;

    /// The position as text. It may contain any characters, `:` included: the token encodes
    /// it whole.
    fn write(&self) -> String;

    /// The position [`Keyset::write`] wrote, or `None` for anything else.
    fn read(text: &str) -> Option<Self>;
}

/// The longest token accepted. Tokens this crate writes are far shorter (a timestamp or rank
/// and a UUID); the bound keeps a garbage cursor from costing a large decode.
const MAX_TOKEN_CHARS: usize = 512;

/// The opaque token for `position`: URL-safe (`A-Z a-z 0-9 - _`), so it can go in a query
/// string as it is.
pub fn encode_token<K: Keyset>(position: &K) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", K::VERSION, position.write()))
}

/// The position in a token that [`encode_token`] wrote for `K`; `None` for the empty string,
/// which the contracts use for "from the first page".
pub fn parse_token<K: Keyset>(token: &str) -> Result<Option<K>, Problem> {
    if token.is_empty() {
        return Ok(None);
    }
    decode::<K>(token)
        .map(Some)
        .ok_or_else(|| "is not a cursor this service issued".into())
}

fn decode<K: Keyset>(token: &str) -> Option<K> {
    if token.len() > MAX_TOKEN_CHARS {
        return None;
    }
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    let (version, position) = text.split_once(':')?;
    // Compared as text so that only the canonical spelling ("1", not "01") is accepted.
    if version != K::VERSION.to_string() {
        return None;
    }
    K::read(position)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A position of (score, id) in descending order, like a relevance listing.
    #[derive(Debug, PartialEq)]
    struct ScoreThenId {
        score: u32,
        id: String,
    }

    impl Keyset for ScoreThenId {
        const VERSION: u32 = 3;

        fn write(&self) -> String {
            format!("{}:{}", self.score, self.id)
        }

        fn read(text: &str) -> Option<Self> {
            let (score, id) = text.split_once(':')?;
            Some(ScoreThenId {
                score: score.parse().ok()?,
                id: id.to_owned(),
            })
        }
    }

    /// Another listing's position, with the same version: its tokens must not be taken for
    /// `ScoreThenId`'s just because the version matches.
    struct Plain(u32);

    impl Keyset for Plain {
        const VERSION: u32 = 3;

        fn write(&self) -> String {
            self.0.to_string()
        }

        fn read(text: &str) -> Option<Self> {
            text.parse().ok().map(Plain)
        }
    }

    fn raw(text: &str) -> String {
        URL_SAFE_NO_PAD.encode(text)
    }

    #[test]
    fn page_size_defaults_to_20_and_stays_within_1_to_100() {
        assert_eq!(PageSize::parse(0), Ok(PageSize::DEFAULT));
        assert_eq!(PageSize::DEFAULT.get(), 20);
        assert_eq!(PageSize::parse(1).unwrap().get(), 1);
        assert_eq!(PageSize::parse(100), Ok(PageSize::MAX));
        assert_eq!(PageSize::MAX.as_i64(), 100);
        for bad in [101, -1, i32::MIN, i32::MAX] {
            assert_eq!(
                PageSize::parse(bad).unwrap_err(),
                "must be between 1 and 100",
                "{bad}"
            );
        }
    }

    #[test]
    fn tokens_round_trip_and_are_url_safe() {
        let position = ScoreThenId {
            score: 42,
            id: "0190f5c6-1e2b-7a1c-9d3e-4f5a6b7c8d9e".into(),
        };
        let token = encode_token(&position);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{token}"
        );
        assert_eq!(parse_token::<ScoreThenId>(&token), Ok(Some(position)));
        assert_eq!(
            raw("3:42:x"),
            encode_token(&ScoreThenId {
                score: 42,
                id: "x".into()
            })
        );
    }

    #[test]
    fn the_empty_token_is_the_first_page() {
        assert_eq!(parse_token::<ScoreThenId>(""), Ok(None));
    }

    #[test]
    fn garbage_other_versions_and_other_listings_are_refused() {
        let too_long = "A".repeat(MAX_TOKEN_CHARS + 1);
        for bad in [
            "!!!".to_owned(),
            "bm9wZQ".to_owned(),
            "3:1:x".to_owned(),
            raw("2:42:x"),
            raw("03:42:x"),
            raw(":42:x"),
            raw("3:NaN:x"),
            encode_token(&Plain(7)),
            URL_SAFE_NO_PAD.encode([0xff, 0xfe, b':']),
            too_long,
        ] {
            assert_eq!(
                parse_token::<ScoreThenId>(&bad).unwrap_err(),
                "is not a cursor this service issued",
                "{bad:?}"
            );
        }
    }
}
