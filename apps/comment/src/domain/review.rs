//! What a customer writes: a rating of 1 to 5 stars, a title and a body, in plain text; a
//! seller's reply; a report.
//!
//! Text is kept as plain text, never as markup: a value with something that reads as an HTML
//! tag (`<b>`, `</p>`, `<!-- -->`, `<script`) is refused with the field named, rather than
//! silently stripped, so what the author sees is exactly what was stored. A lone `<` ("3 < 5",
//! "<3") is text and stays. Control characters are refused (line breaks are allowed in bodies).

use api::comment::{PutMyReviewRequest, ReplyToReviewRequest, ReportReviewRequest};
use uuid::Uuid;
use vocab::{Fields, LineBreaks, Problem, bounded_text};

use super::parse_uuid;

pub const TITLE_MAX_CHARS: usize = 150;
pub const BODY_MAX_CHARS: usize = 5000;
pub const REPLY_MAX_CHARS: usize = 2000;
pub const NOTE_MAX_CHARS: usize = 500;
pub const REPORT_REASONS: [&str; 5] = ["spam", "offensive", "off_topic", "fake", "other"];

/// 1 to 5 stars.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rating(u8);

impl Rating {
    pub fn parse(value: i32) -> Result<Self, Problem> {
        match u8::try_from(value) {
            Ok(stars @ 1..=5) => Ok(Self(stars)),
            _ => Err("must be between 1 and 5".into()),
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

/// Whether `value` holds something a browser would read as an HTML tag, comment or
/// declaration: `<` followed by a letter, `/`, `!` or `?`.
pub fn contains_markup(value: &str) -> bool {
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '<'
            && let Some(&next) = chars.peek()
            && (next.is_ascii_alphabetic() || matches!(next, '/' | '!' | '?'))
        {
            return true;
        }
    }
    false
}

/// Plain text of `min..=max` characters: bounded, no control characters, no markup.
fn plain_text(
    value: &str,
    chars: std::ops::RangeInclusive<usize>,
    line_breaks: LineBreaks,
) -> Result<String, Problem> {
    let text = bounded_text(value, chars, line_breaks)?;
    if contains_markup(&text) {
        return Err("must be plain text: HTML tags are not allowed".into());
    }
    Ok(text)
}

/// A review as its author writes it, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    pub product_id: Uuid,
    pub rating: Rating,
    pub title: String,
    pub body: String,
}

impl Draft {
    pub fn parse(request: &PutMyReviewRequest) -> Result<Self, rpc::Error> {
        let mut fields = Fields::new();
        let product_id = fields.parse("id", parse_uuid(&request.id));
        let rating = fields.parse("rating", Rating::parse(request.rating));
        let title = fields.parse(
            "title",
            plain_text(&request.title, 1..=TITLE_MAX_CHARS, LineBreaks::Refused),
        );
        let body = fields.parse(
            "body",
            plain_text(&request.body, 0..=BODY_MAX_CHARS, LineBreaks::Allowed),
        );
        fields.finish(|| {
            Some(Self {
                product_id: product_id?,
                rating: rating?,
                title: title?,
                body: body?,
            })
        })
    }
}

/// A seller's reply, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub review_id: Uuid,
    pub body: String,
}

impl Reply {
    pub fn parse(request: &ReplyToReviewRequest) -> Result<Self, rpc::Error> {
        let mut fields = Fields::new();
        let review_id = fields.parse("id", parse_uuid(&request.id));
        let body = fields.parse(
            "body",
            plain_text(&request.body, 1..=REPLY_MAX_CHARS, LineBreaks::Allowed),
        );
        fields.finish(|| {
            Some(Self {
                review_id: review_id?,
                body: body?,
            })
        })
    }
}

/// A customer's report of a review, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub review_id: Uuid,
    pub reason: &'static str,
    pub note: String,
}

impl Report {
    pub fn parse(request: &ReportReviewRequest) -> Result<Self, rpc::Error> {
        let mut fields = Fields::new();
        let review_id = fields.parse("id", parse_uuid(&request.id));
        let reason = fields.parse(
            "reason",
            REPORT_REASONS
                .iter()
                .find(|r| **r == request.reason.trim())
                .copied()
                .ok_or_else(|| {
                    Problem::from(format!("must be one of {}", REPORT_REASONS.join(", ")))
                }),
        );
        let note = fields.parse(
            "note",
            plain_text(&request.note, 0..=NOTE_MAX_CHARS, LineBreaks::Allowed),
        );
        fields.finish(|| {
            Some(Self {
                review_id: review_id?,
                reason: reason?,
                note: note?,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use testkit::bad_fields;

    use super::*;

    fn request(rating: i32, title: &str, body: &str) -> PutMyReviewRequest {
        PutMyReviewRequest {
            id: Uuid::now_v7().to_string(),
            rating,
            title: title.into(),
            body: body.into(),
        }
    }

    #[test]
    fn a_review_is_trimmed_and_keeps_its_line_breaks() {
        let draft = Draft::parse(&request(5, "  Great  ", "Works.\nWould buy again.")).unwrap();
        assert_eq!(draft.rating.get(), 5);
        assert_eq!(draft.title, "Great");
        assert_eq!(draft.body, "Works.\nWould buy again.");
    }

    #[test]
    fn ratings_outside_one_to_five_are_refused() {
        for rating in [0, 6, -1, 256] {
            let error = Draft::parse(&request(rating, "t", "")).unwrap_err();
            assert_eq!(bad_fields(&error), ["rating"], "rating {rating}");
        }
    }

    #[test]
    fn markup_oversized_text_and_control_characters_are_refused_by_field() {
        let error =
            Draft::parse(&request(3, "<b>bold</b>", &"x".repeat(BODY_MAX_CHARS + 1))).unwrap_err();
        assert_eq!(bad_fields(&error), ["title", "body"]);
        let error =
            Draft::parse(&request(3, "fine", "nice <script>alert(1)</script>")).unwrap_err();
        assert_eq!(bad_fields(&error), ["body"]);
        let error = Draft::parse(&request(3, "bell\u{7}", "ok")).unwrap_err();
        assert_eq!(bad_fields(&error), ["title"]);
        let error = Draft::parse(&request(3, "   ", "ok")).unwrap_err();
        assert_eq!(bad_fields(&error), ["title"]);
    }

    #[test]
    fn a_lone_angle_bracket_is_text() {
        assert!(!contains_markup("3 < 5 and <3"));
        assert!(!contains_markup("a<"));
        for markup in ["<p>", "</p>", "<!-- x -->", "<?xml", "<IMG src=x>"] {
            assert!(contains_markup(markup), "{markup}");
        }
    }

    #[test]
    fn a_report_names_one_of_the_reasons() {
        let error = Report::parse(&ReportReviewRequest {
            id: "x".into(),
            reason: "boring".into(),
            note: String::new(),
        })
        .unwrap_err();
        assert_eq!(bad_fields(&error), ["id", "reason"]);
    }
}
