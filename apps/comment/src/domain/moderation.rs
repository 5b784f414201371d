//! Moderation: which new reviews wait for a moderator, and the one function that decides
//! every status change.
//!
//! ```text
//!   written ──(no rule matches)──> published ──hide──> hidden
//!      │                            ▲    │               │
//!      └──(a rule matches)──> pending ──approve──────────┘ (approve)
//!                               │ ▲
//!                               └─┴── hide / an edit of a hidden review
//! ```
//!
//! A review is flagged into `pending` when its title or body holds a link (`http://`,
//! `www.`, a bare domain like `example.com`) or a banned word (`--banned-words`, matched as a
//! whole word, ignoring case). An edit is judged again like a new review, except that an edit
//! of a hidden review goes to `pending`, never straight back to `published`: a moderator hid
//! it, a moderator decides again.

use vocab::Problem;

/// Where a review stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    Published,
    Pending,
    Hidden,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Published => "published",
            Self::Pending => "pending",
            Self::Hidden => "hidden",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "published" => Some(Self::Published),
            "pending" => Some(Self::Pending),
            "hidden" => Some(Self::Hidden),
            _ => None,
        }
    }

    /// Whether it counts in the summary and the public listings.
    pub fn is_public(self) -> bool {
        self == Self::Published
    }
}

/// What the rules make of a review's text: publish it, or hold it for a moderator and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Publish,
    Hold { reason: String },
}

/// An admin's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Approve,
    Hide,
}

impl Action {
    pub fn parse(value: &str) -> Result<Self, Problem> {
        match value.trim() {
            "approve" => Ok(Self::Approve),
            "hide" => Ok(Self::Hide),
            _ => Err("must be one of approve, hide".into()),
        }
    }
}

/// The moderators' queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queue {
    /// Flagged when written (or edited after being hidden).
    Pending,
    /// Published, with reports no admin has looked at yet.
    Reported,
    Hidden,
}

impl Queue {
    pub fn parse(value: &str) -> Result<Self, Problem> {
        match value.trim() {
            "pending" => Ok(Self::Pending),
            "reported" => Ok(Self::Reported),
            "hidden" => Ok(Self::Hidden),
            _ => Err("must be one of pending, reported, hidden".into()),
        }
    }
}

/// The status a review has after its author writes it (`previous`: its status before, `None`
/// for a new review) and what the rules made of the text.
pub fn status_after_writing(previous: Option<Status>, verdict: &Verdict) -> Status {
    match (previous, verdict) {
        (_, Verdict::Hold { .. }) | (Some(Status::Hidden), _) => Status::Pending,
        (_, Verdict::Publish) => Status::Published,
    }
}

/// The status `action` moves a review in `from` to, or why it cannot. Approving a published
/// review is legal: it closes the review's open reports and leaves it published.
pub fn decide(from: Status, action: Action) -> Result<Status, String> {
    match (from, action) {
        (_, Action::Approve) => Ok(Status::Published),
        (Status::Hidden, Action::Hide) => Err("the review is hidden already".to_owned()),
        (_, Action::Hide) => Ok(Status::Hidden),
    }
}

/// The rule set new and edited reviews are checked against.
#[derive(Clone, Debug, Default)]
pub struct ModerationRules {
    banned_words: Vec<String>,
}

/// Top-level domains a bare "name.tld" is taken as a link for. Short on purpose: a word
/// followed by a full stop and a common word ("fine.it works") must not read as a link.
const LINK_TLDS: [&str; 14] = [
    "com", "net", "org", "io", "co", "info", "biz", "xyz", "ru", "de", "uk", "me", "app", "shop",
];

impl ModerationRules {
    /// Rules with these banned words: a comma-separated list, each trimmed and lower-cased;
    /// empty entries are ignored.
    pub fn new(banned_words: &str) -> Self {
        Self {
            banned_words: banned_words
                .split(',')
                .map(|w| w.trim().to_lowercase())
                .filter(|w| !w.is_empty())
                .collect(),
        }
    }

    /// What the rules make of a review (or reply) with these texts.
    pub fn judge(&self, texts: &[&str]) -> Verdict {
        for text in texts {
            let lower = text.to_lowercase();
            if contains_link(&lower) {
                return Verdict::Hold {
                    reason: "contains a link".to_owned(),
                };
            }
            if let Some(word) = words(&lower).find(|w| self.banned_words.iter().any(|b| b == w)) {
                return Verdict::Hold {
                    reason: format!("contains the banned word \"{word}\""),
                };
            }
        }
        Verdict::Publish
    }
}

/// The words of `text`: runs of letters, digits and apostrophes.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
}

/// Whether lower-cased `text` holds a URL, a `www.` host or a bare domain name.
fn contains_link(text: &str) -> bool {
    if text.contains("http://") || text.contains("https://") || text.contains("www.") {
        return true;
    }
    // "name.tld" where the tld is a known one and is not followed by another letter.
    text.split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | '"' | ',' | ';'))
        .any(|token| {
            let token = token.trim_end_matches(['.', '!', '?', ':']);
            let Some((host, tld)) = token.rsplit_once('.') else {
                return false;
            };
            let tld = tld.split('/').next().unwrap_or_default();
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
                && LINK_TLDS.contains(&tld)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_held_for_a_moderator() {
        let rules = ModerationRules::new("");
        for text in [
            "see https://spam.example",
            "go to www.deals",
            "cheap at bestdeals.com/now",
            "Visit SHOP.IO!",
        ] {
            assert_eq!(
                rules.judge(&["fine", text]),
                Verdict::Hold {
                    reason: "contains a link".into()
                },
                "{text}"
            );
        }
        for text in [
            "Works fine.It is great",
            "version 2.0 is out",
            "e.g. the lid",
            "3.5 stars",
        ] {
            assert_eq!(rules.judge(&[text]), Verdict::Publish, "{text}");
        }
    }

    #[test]
    fn banned_words_match_whole_words_ignoring_case() {
        let rules = ModerationRules::new(" Scam , ,darn");
        assert_eq!(
            rules.judge(&["A total SCAM."]),
            Verdict::Hold {
                reason: "contains the banned word \"scam\"".into()
            }
        );
        assert_eq!(rules.judge(&["scampi was tasty"]), Verdict::Publish);
        assert_eq!(ModerationRules::new("").judge(&["scam"]), Verdict::Publish);
    }

    #[test]
    fn an_edit_of_a_hidden_review_waits_for_a_moderator() {
        let hold = Verdict::Hold { reason: "x".into() };
        assert_eq!(
            status_after_writing(None, &Verdict::Publish),
            Status::Published
        );
        assert_eq!(status_after_writing(None, &hold), Status::Pending);
        assert_eq!(
            status_after_writing(Some(Status::Pending), &Verdict::Publish),
            Status::Published
        );
        assert_eq!(
            status_after_writing(Some(Status::Published), &hold),
            Status::Pending
        );
        assert_eq!(
            status_after_writing(Some(Status::Hidden), &Verdict::Publish),
            Status::Pending
        );
    }

    #[test]
    fn every_status_can_be_approved_and_only_a_visible_one_hidden() {
        for from in [Status::Published, Status::Pending, Status::Hidden] {
            assert_eq!(decide(from, Action::Approve), Ok(Status::Published));
        }
        assert_eq!(decide(Status::Published, Action::Hide), Ok(Status::Hidden));
        assert_eq!(decide(Status::Pending, Action::Hide), Ok(Status::Hidden));
        assert!(decide(Status::Hidden, Action::Hide).is_err());
    }
}
