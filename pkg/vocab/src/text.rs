//! The one rule for free text a person types: names, address lines, descriptions.

use std::ops::RangeInclusive;

use crate::Problem;

/// Whether a text may span lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineBreaks {
    /// One line: a name, a city, an address line. A line break there is always a mistake
    /// (and would break labels and search text built from the value).
    Refused,
    /// Paragraphs: `\n`, `\r` and `\t` are allowed (a description's line breaks and
    /// indentation); every other control character is still refused.
    Allowed,
}

/// Trims `value` and checks that it has `chars` characters, as PostgreSQL's `char_length`
/// counts them (Unicode scalar values, not bytes), and no control characters.
///
/// Control characters are refused because PostgreSQL text cannot hold NUL (it would become a
/// database error instead of a field problem) and the others are never meant in a name.
///
/// The problems: "must not be empty" when fewer than one character is required and none is
/// given, "must have at least N characters", "must have at most N characters", "must not
/// contain control characters".
pub fn bounded_text(
    value: &str,
    chars: RangeInclusive<usize>,
    line_breaks: LineBreaks,
) -> Result<String, Problem> {
    let (min_chars, max_chars) = (*chars.start(), *chars.end());
    let value = value.trim();
    let count = value.chars().count();
    if count < min_chars {
        return Err(if min_chars == 1 {
            "must not be empty".into()
        } else {
            format!("must have at least {min_chars} characters").into()
        });
    }
    if count > max_chars {
        return Err(format!("must have at most {max_chars} characters").into());
    }
    let allowed = |c: char| {
        !c.is_control() || (line_breaks == LineBreaks::Allowed && matches!(c, '\n' | '\r' | '\t'))
    };
    if !value.chars().all(allowed) {
        return Err("must not contain control characters".into());
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_and_counted_in_characters_not_bytes() {
        assert_eq!(
            bounded_text("  Zoë  ", 1..=3, LineBreaks::Refused).unwrap(),
            "Zoë"
        );
        assert_eq!(
            bounded_text("ÅÉÎ", 0..=3, LineBreaks::Refused).unwrap(),
            "ÅÉÎ"
        );
        assert_eq!(
            bounded_text(&"é".repeat(201), 1..=200, LineBreaks::Refused).unwrap_err(),
            "must have at most 200 characters"
        );
        assert_eq!(bounded_text("   ", 0..=5, LineBreaks::Refused).unwrap(), "");
    }

    #[test]
    fn too_short_text_says_how_short() {
        assert_eq!(
            bounded_text(" \t ", 1..=5, LineBreaks::Refused).unwrap_err(),
            "must not be empty"
        );
        assert_eq!(
            bounded_text("ab", 3..=5, LineBreaks::Refused).unwrap_err(),
            "must have at least 3 characters"
        );
    }

    #[test]
    fn control_characters_are_refused_and_line_breaks_only_where_allowed() {
        let refused = "must not contain control characters";
        assert_eq!(
            bounded_text("nul\0byte", 0..=20, LineBreaks::Allowed).unwrap_err(),
            refused
        );
        assert_eq!(
            bounded_text("bell\u{7}", 0..=20, LineBreaks::Allowed).unwrap_err(),
            refused
        );
        assert_eq!(
            bounded_text("one\ntwo", 0..=20, LineBreaks::Refused).unwrap_err(),
            refused
        );
        assert_eq!(
            bounded_text("one\r\n\ttwo", 0..=20, LineBreaks::Allowed).unwrap(),
            "one\r\n\ttwo"
        );
    }
}
