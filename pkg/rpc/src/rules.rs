//! The field rules a contract declares (`(emporium.options.field)`), checked before a handler
//! runs.
//!
//! The contracts crate generates a [`Validate`] impl for every message from its declarations;
//! [`crate::Endpoint::bind`] runs it on each request and answers `invalid_argument` naming every
//! field that breaks a rule, in the request's own field names ("price.currency",
//! "items[2].quantity"). The same declarations write the constraints of the OpenAPI document,
//! so what a client is told and what a service enforces cannot drift apart. Services still
//! parse requests into their domain types; the rules are what a value must look like, the
//! service decides what it means.
//!
//! The problems are worded like the services' own ("is required", "must have at most 200
//! characters"), so a client sees one voice whichever side refused.

use std::sync::OnceLock;

use crate::error::Violations;

/// A request message whose fields follow declared rules.
pub trait Validate {
    /// Records every broken rule, naming fields with `at` (the path to this message, "" at
    /// the top, "price." or "items[2]." below) in front.
    fn validate(&self, at: &str, violations: &mut Violations);
}

/// A named string format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Hyphenated, any case.
    Uuid,
    /// Local part, @, a domain containing a dot; no white space or control characters.
    Email,
    /// An absolute http or https URL.
    Uri,
    /// YYYY-MM-DD, a real calendar date.
    Date,
}

impl Format {
    fn check(self, value: &str) -> Result<(), &'static str> {
        let ok = match self {
            Format::Uuid => uuid::Uuid::try_parse(value).is_ok() && value.len() == 36,
            Format::Email => is_email(value),
            Format::Uri => is_url(value),
            Format::Date => is_date(value),
        };
        if ok {
            Ok(())
        } else {
            Err(match self {
                Format::Uuid => "must be a UUID",
                Format::Email => "must be an email address",
                Format::Uri => "must be an absolute http or https URL",
                Format::Date => "must be a date, YYYY-MM-DD",
            })
        }
    }
}

fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn is_url(value: &str) -> bool {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    rest.is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !value.chars().any(|c| c.is_whitespace() || c.is_control())
    })
}

fn is_date(value: &str) -> bool {
    let bytes = value.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return false;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        value
            .get(range)
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))?
            .parse()
            .ok()
    };
    let (Some(year), Some(month), Some(day)) = (number(0..4), number(5..7), number(8..10)) else {
        return false;
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

/// A regular expression the whole value must match, compiled on first use.
#[derive(Debug)]
pub struct Pattern {
    source: &'static str,
    compiled: OnceLock<regex::Regex>,
}

impl Pattern {
    pub const fn new(source: &'static str) -> Self {
        Self {
            source,
            compiled: OnceLock::new(),
        }
    }

    fn is_match(&self, value: &str) -> bool {
        self.compiled
            .get_or_init(|| {
                // Anchored, whatever the declaration wrote; the build checked it compiles.
                regex::Regex::new(&format!("^(?:{})$", self.source))
                    .expect("a declared pattern compiles")
            })
            .is_match(value)
    }
}

/// The rules of a string field.
#[derive(Debug)]
pub struct Text {
    pub required: bool,
    /// The most characters; 0 for no bound.
    pub max_len: u32,
    /// The fewest characters of a non-empty value; 0 for no bound.
    pub min_len: u32,
    /// Surrounding white space is part of the value (a password).
    pub verbatim: bool,
    pub no_control: bool,
    pub multiline: bool,
    pub format: Option<Format>,
    pub pattern: Option<&'static Pattern>,
    /// What a value that does not match the pattern is told; "" for "must match <pattern>".
    pub pattern_problem: &'static str,
    pub one_of: &'static [&'static str],
}

impl Text {
    pub const NONE: Text = Text {
        required: false,
        max_len: 0,
        min_len: 0,
        verbatim: false,
        no_control: false,
        multiline: false,
        format: None,
        pattern: None,
        pattern_problem: "",
        one_of: &[],
    };

    pub fn check(&self, value: &str, at: &str, name: &str, violations: &mut Violations) {
        if let Err(problem) = self.problem(value) {
            violations.add(format!("{at}{name}"), problem);
        }
    }

    /// Checks an `optional` string: nothing when absent; when present, `required` means it
    /// must not be blank.
    pub fn check_optional(
        &self,
        value: Option<&str>,
        at: &str,
        name: &str,
        violations: &mut Violations,
    ) {
        let Some(value) = value else { return };
        if self.required && value.trim().is_empty() {
            violations.add(format!("{at}{name}"), "must not be empty");
        } else {
            self.check(value, at, name, violations);
        }
    }

    /// Surrounding white space is not part of a value (services trim it) unless the rule is
    /// `verbatim`, so emptiness,
    /// the least length, control characters, formats, patterns and choices are checked on the
    /// trimmed value; the most length bounds what was sent.
    fn problem(&self, value: &str) -> Result<(), String> {
        if self.max_len > 0 && value.chars().count() > self.max_len as usize {
            return Err(format!("must have at most {} characters", self.max_len));
        }
        let value = if self.verbatim { value } else { value.trim() };
        if value.is_empty() {
            return if self.required {
                Err("is required".to_owned())
            } else {
                Ok(())
            };
        }
        if self.min_len > 0 && value.chars().count() < self.min_len as usize {
            return Err(format!("must have at least {} characters", self.min_len));
        }
        let allowed =
            |c: char| !c.is_control() || (self.multiline && matches!(c, '\n' | '\r' | '\t'));
        if self.no_control && !value.chars().all(allowed) {
            return Err("must not contain control characters".to_owned());
        }
        if let Some(format) = self.format {
            format.check(value).map_err(str::to_owned)?;
        }
        if let Some(pattern) = self.pattern
            && !pattern.is_match(value)
        {
            return Err(if self.pattern_problem.is_empty() {
                format!("must match {}", pattern.source)
            } else {
                self.pattern_problem.to_owned()
            });
        }
        if !self.one_of.is_empty() && !self.one_of.contains(&value) {
            return Err(format!("must be one of {}", self.one_of.join(", ")));
        }
        Ok(())
    }
}

/// The bounds of an integer field, inclusive.
#[derive(Debug)]
pub struct Int {
    pub minimum: Option<i64>,
    pub maximum: Option<i64>,
}

impl Int {
    pub fn check(&self, value: impl Into<i128>, at: &str, name: &str, violations: &mut Violations) {
        let value = value.into();
        let problem = match (self.minimum, self.maximum) {
            (Some(min), Some(max)) if value < min.into() || value > max.into() => {
                format!("must be from {min} to {max}")
            }
            (Some(min), None) if value < min.into() => format!("must be at least {min}"),
            (None, Some(max)) if value > max.into() => format!("must be at most {max}"),
            _ => return,
        };
        violations.add(format!("{at}{name}"), problem);
    }
}

/// The rules of a repeated field as a whole.
#[derive(Debug)]
pub struct Items {
    pub required: bool,
    /// The most items; 0 for no bound.
    pub max_items: u32,
}

impl Items {
    /// Whether the items are worth checking one by one: false when the list itself is bad.
    pub fn check(&self, len: usize, at: &str, name: &str, violations: &mut Violations) -> bool {
        if self.required && len == 0 {
            violations.add(format!("{at}{name}"), "must have at least one item");
            return false;
        }
        if self.max_items > 0 && len > self.max_items as usize {
            violations.add(
                format!("{at}{name}"),
                format!("must have at most {} items", self.max_items),
            );
            return false;
        }
        true
    }
}

/// A required message field that is absent.
pub fn missing(at: &str, name: &str, violations: &mut Violations) {
    violations.add(format!("{at}{name}"), "is required");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(rule: &Text, values: &[&str]) -> Vec<Option<String>> {
        values.iter().map(|v| rule.problem(v).err()).collect()
    }

    #[test]
    fn empty_is_no_value_unless_required() {
        let optional = Text {
            format: Some(Format::Uuid),
            ..Text::NONE
        };
        assert_eq!(optional.problem(""), Ok(()));
        let required = Text {
            required: true,
            ..Text::NONE
        };
        assert_eq!(required.problem("").unwrap_err(), "is required");
        assert_eq!(required.problem("  \t").unwrap_err(), "is required");
        assert_eq!(required.problem(" x "), Ok(()));
        // Surrounding white space is trimmed before formats and lengths are checked.
        let email = Text {
            format: Some(Format::Email),
            min_len: 5,
            ..Text::NONE
        };
        assert_eq!(email.problem("  Ada@Example.COM "), Ok(()));
        assert_eq!(
            email.problem(" a@ ").unwrap_err(),
            "must have at least 5 characters"
        );
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        let rule = Text {
            max_len: 3,
            ..Text::NONE
        };
        assert_eq!(
            problems(&rule, &["ÅÉÎ", "abcd"]),
            [None, Some("must have at most 3 characters".to_owned())]
        );
    }

    #[test]
    fn control_characters_are_refused_and_line_breaks_only_when_multiline() {
        let single = Text {
            no_control: true,
            ..Text::NONE
        };
        let multi = Text {
            no_control: true,
            multiline: true,
            ..Text::NONE
        };
        assert!(single.problem("a\nb").is_err());
        assert!(multi.problem("a\nb\tc").is_ok());
        assert!(multi.problem("a\u{0}b").is_err());
    }

    #[test]
    fn formats() {
        assert!(
            Format::Uuid
                .check("0190F5C6-1E2B-7A1C-9D3E-4F5A6B7C8D9E")
                .is_ok()
        );
        assert!(
            Format::Uuid
                .check("0190f5c61e2b7a1c9d3e4f5a6b7c8d9e")
                .is_err()
        );
        assert!(Format::Email.check("ada@example.com").is_ok());
        for bad in [
            "ada",
            "ada@",
            "@example.com",
            "ada@localhost",
            "a da@example.com",
            "two@@example.com",
        ] {
            assert!(Format::Email.check(bad).is_err(), "{bad}");
        }
        assert!(Format::Uri.check("https://cdn.example.com/a.png").is_ok());
        for bad in ["ftp://x.org", "https://", "//x.org/a", "https://x.org/a b"] {
            assert!(Format::Uri.check(bad).is_err(), "{bad}");
        }
        assert!(Format::Date.check("2024-02-29").is_ok());
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-1-01",
            "24-01-01",
            "2024-04-31",
        ] {
            assert!(Format::Date.check(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn patterns_match_the_whole_value() {
        static CODE: Pattern = Pattern::new("[A-Z]{2}");
        let rule = Text {
            pattern: Some(&CODE),
            ..Text::NONE
        };
        assert!(rule.problem("DE").is_ok());
        assert!(rule.problem("DEU").is_err());
        assert_eq!(rule.problem("xDE").unwrap_err(), "must match [A-Z]{2}");
        let worded = Text {
            pattern: Some(&CODE),
            pattern_problem: "must be two capital letters",
            ..Text::NONE
        };
        assert_eq!(
            worded.problem("d").unwrap_err(),
            "must be two capital letters"
        );
    }

    #[test]
    fn one_of_names_the_choices() {
        let rule = Text {
            one_of: &["draft", "active"],
            ..Text::NONE
        };
        assert!(rule.problem("active").is_ok());
        assert_eq!(
            rule.problem("gone").unwrap_err(),
            "must be one of draft, active"
        );
    }

    #[test]
    fn integer_bounds_and_item_counts() {
        let mut violations = Violations::new();
        let quantity = Int {
            minimum: Some(1),
            maximum: Some(1000),
        };
        quantity.check(0i64, "items[0].", "quantity", &mut violations);
        quantity.check(5i64, "items[1].", "quantity", &mut violations);
        Int {
            minimum: Some(0),
            maximum: None,
        }
        .check(u64::MAX, "", "stock", &mut violations);
        let items = Items {
            required: true,
            max_items: 2,
        };
        assert!(!items.check(0, "", "items", &mut violations));
        assert!(!items.check(3, "", "ids", &mut violations));
        assert!(items.check(2, "", "ok", &mut violations));
        let error = violations.into_result().unwrap_err();
        let fields: Vec<_> = error.details().iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["items[0].quantity", "items", "ids"]);
    }
}
