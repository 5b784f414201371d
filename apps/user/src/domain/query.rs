//! The admin queries: pages of profiles, searches and batch reads.

use api::user::{BatchGetUsersRequest, ListUsersRequest, SearchUsersRequest};
use uuid::Uuid;
use vocab::page::{self, PageSize};
use vocab::{Fields, Problem};

use super::UserId;

pub const SEARCH_MAX_CHARS: usize = 100;
pub const BATCH_MAX_IDS: usize = 100;

/// One page of the listing: profiles in user id order (registration order, the ids being
/// UUID v7), after the cursor, a page token holding the last user id of the previous page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub size: PageSize,
    pub after: Option<UserId>,
}

impl Page {
    pub fn parse(request: &ListUsersRequest) -> Result<Self, rpc::Error> {
        let mut fields = Fields::default();
        let size = fields.parse("page_size", PageSize::parse(request.page_size));
        let after = fields.parse("cursor", parse_cursor(&request.cursor));
        fields.finish(|| {
            Some(Self {
                size: size?,
                after: after?,
            })
        })
    }
}

/// The page token in `cursor`, or, for a while, a bare user id: the `next_cursor` the service
/// handed out before it used page tokens. Accepting those keeps an admin who is paging through
/// the list while the new version rolls out from getting an error; once every replica issues
/// tokens, a bare id lives only as long as someone's half-read listing, and this fallback can go.
fn parse_cursor(cursor: &str) -> Result<Option<UserId>, Problem> {
    page::parse_token::<UserId>(cursor).or_else(|problem| {
        Uuid::try_parse(cursor)
            .map(|id| Some(UserId::from_uuid(id)))
            .map_err(|_| problem)
    })
}

/// What to look for: 1 to 100 characters (after trimming), no control characters, kept in
/// lower case because the search ignores case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchText(String);

impl SearchText {
    pub fn parse(value: &str) -> Result<Self, Problem> {
        let value = value.trim();
        if value.is_empty() {
            return Err("is required".into());
        }
        if value.chars().count() > SEARCH_MAX_CHARS {
            return Err(format!("must have at most {SEARCH_MAX_CHARS} characters").into());
        }
        // Also what keeps a query from matching across two fields of the stored search text,
        // which are separated by line breaks.
        if value.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(value.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A SQL `LIKE ... ESCAPE '\'` pattern matching any text that contains this one: its own
    /// `%`, `_` and `\` match only themselves.
    pub fn like_pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.0.len() + 2);
        pattern.push('%');
        for c in self.0.chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        pattern
    }

    /// A regular expression (PCRE, as MongoDB's `$regex` takes) matching this text literally:
    /// every ASCII punctuation character is escaped, which is always allowed in PCRE.
    pub fn regex_pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.0.len() * 2);
        for c in self.0.chars() {
            if c.is_ascii_punctuation() || c == ' ' {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern
    }
}

/// A search: what to look for and how many profiles to answer with at most.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Search {
    pub text: SearchText,
    pub size: PageSize,
}

impl Search {
    pub fn parse(request: &SearchUsersRequest) -> Result<Self, rpc::Error> {
        let mut fields = Fields::default();
        let text = fields.parse("q", SearchText::parse(&request.q));
        let size = fields.parse("page_size", PageSize::parse(request.page_size));
        fields.finish(|| {
            Some(Self {
                text: text?,
                size: size?,
            })
        })
    }
}

/// 1 to 100 user ids, each asked once, in the order first asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchIds(Vec<UserId>);

impl BatchIds {
    pub fn parse(request: &BatchGetUsersRequest) -> Result<Self, rpc::Error> {
        let count = request.user_ids.len();
        if count == 0 || count > BATCH_MAX_IDS {
            return Err(rpc::Error::invalid_field(
                "user_ids",
                format!("must hold 1 to {BATCH_MAX_IDS} ids"),
            ));
        }
        let mut fields = Fields::default();
        let mut ids: Vec<UserId> = Vec::with_capacity(count);
        for (index, value) in request.user_ids.iter().enumerate() {
            if let Some(id) = fields.parse(&format!("user_ids[{index}]"), UserId::parse(value))
                && !ids.contains(&id)
            {
                ids.push(id);
            }
        }
        fields.finish(|| Some(Self(ids)))
    }

    pub fn ids(&self) -> &[UserId] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use testkit::bad_fields;

    use super::*;

    const A: &str = "0190f5c6-1e2b-7a1c-9d3e-4f5a6b7c8d9e";
    const B: &str = "0190f5c6-1e2b-7a1c-9d3e-4f5a6b7c8d9f";

    #[test]
    fn pages_default_to_twenty_and_refuse_out_of_range_sizes_and_bad_cursors() {
        let page = Page::parse(&ListUsersRequest::default()).unwrap();
        assert_eq!(page.size, PageSize::DEFAULT);
        assert_eq!(page.after, None);
        let a = UserId::parse(A).unwrap();
        let page = Page::parse(&ListUsersRequest {
            page_size: 100,
            cursor: page::encode_token(&a),
        })
        .unwrap();
        assert_eq!(page.size.get(), 100);
        assert_eq!(page.after, Some(a));
        let error = Page::parse(&ListUsersRequest {
            page_size: 101,
            cursor: "garbage".into(),
        })
        .unwrap_err();
        assert_eq!(bad_fields(&error), ["page_size", "cursor"]);
        assert_eq!(
            error.details()[1].problem,
            "is not a cursor this service issued"
        );
    }

    #[test]
    fn a_bare_user_id_from_before_page_tokens_is_still_a_cursor() {
        let page = Page::parse(&ListUsersRequest {
            page_size: 0,
            cursor: A.into(),
        })
        .unwrap();
        assert_eq!(page.after.unwrap().to_string(), A);
    }

    #[test]
    fn search_text_is_trimmed_lower_cased_and_bounded() {
        assert_eq!(SearchText::parse("  Ada ").unwrap().as_str(), "ada");
        assert!(SearchText::parse("x".repeat(100).as_str()).is_ok());
        for bad in ["", "   ", &"x".repeat(101), "a\nb"] {
            assert!(SearchText::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let error = Search::parse(&SearchUsersRequest {
            q: String::new(),
            page_size: 1000,
        })
        .unwrap_err();
        assert_eq!(bad_fields(&error), ["q", "page_size"]);
    }

    #[test]
    fn metacharacters_match_only_themselves() {
        let text = SearchText::parse(r"50%_off\.*").unwrap();
        assert_eq!(text.like_pattern(), r"%50\%\_off\\.*%");
        assert_eq!(text.regex_pattern(), r"50\%\_off\\\.\*");
        assert_eq!(SearchText::parse("a b").unwrap().regex_pattern(), r"a\ b");
    }

    #[test]
    fn batches_hold_one_to_a_hundred_valid_ids_each_once_in_order() {
        let ids = BatchIds::parse(&BatchGetUsersRequest {
            user_ids: vec![B.into(), A.into(), B.into()],
        })
        .unwrap();
        let ids: Vec<String> = ids.ids().iter().map(ToString::to_string).collect();
        assert_eq!(ids, [B, A]);

        let error = BatchIds::parse(&BatchGetUsersRequest { user_ids: vec![] }).unwrap_err();
        assert_eq!(bad_fields(&error), ["user_ids"]);
        let error = BatchIds::parse(&BatchGetUsersRequest {
            user_ids: vec![A.into(); 101],
        })
        .unwrap_err();
        assert_eq!(bad_fields(&error), ["user_ids"]);
        let error = BatchIds::parse(&BatchGetUsersRequest {
            user_ids: vec![A.into(), "nope".into(), String::new()],
        })
        .unwrap_err();
        assert_eq!(bad_fields(&error), ["user_ids[1]", "user_ids[2]"]);
    }
}
