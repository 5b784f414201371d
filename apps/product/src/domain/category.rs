//! Categories: names, the slugs derived from them, and the create request.

use api::product::CreateCategoryRequest;

use vocab::{Fields, LineBreaks, Problem, bounded_text};

use super::{CategoryId, Description};

/// A category's name: 1 to 100 characters once trimmed, with at least one letter or digit so
/// that it has a slug.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CategoryName(String);

impl CategoryName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(value: &str) -> Result<Self, Problem> {
        let name = bounded_text(value, 1..=Self::MAX_CHARS, LineBreaks::Refused)?;
        if !name.chars().any(char::is_alphanumeric) {
            return Err("must contain a letter or a digit".into());
        }
        Ok(CategoryName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL-friendly form: "Home & Garden" is "home-and-garden", "Men's Shoes" is
    /// "mens-shoes". Letters are lower-cased, apostrophes dropped, every other run of
    /// non-alphanumeric characters becomes one dash.
    pub fn slug(&self) -> Slug {
        let mut slug = String::with_capacity(self.0.len());
        let mut pending_dash = false;
        let push_word_char = |slug: &mut String, c: char, pending_dash: &mut bool| {
            if *pending_dash && !slug.is_empty() {
                slug.push('-');
            }
            *pending_dash = false;
            slug.extend(c.to_lowercase());
        };
        for c in self.0.chars() {
            match c {
                '\'' | '\u{2019}' => {}
                '&' => {
                    pending_dash = true;
                    for c in "and".chars() {
                        push_word_char(&mut slug, c, &mut pending_dash);
                    }
                    pending_dash = true;
                }
                c if c.is_alphanumeric() => push_word_char(&mut slug, c, &mut pending_dash),
                _ => pending_dash = true,
            }
        }
        Slug(slug)
    }
}

/// A category's unique, URL-friendly key, derived from its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slug(String);

impl Slug {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A category to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCategory {
    pub name: CategoryName,
    pub slug: Slug,
    pub parent_id: Option<CategoryId>,
    pub description: Description,
}

impl NewCategory {
    pub fn parse(request: &CreateCategoryRequest) -> Result<Self, rpc::Error> {
        let mut fields = Fields::default();
        let name = fields.parse("name", CategoryName::parse(&request.name));
        let parent_id = fields.parse("parent_id", CategoryId::parse_optional(&request.parent_id));
        let description = fields.parse("description", Description::parse(&request.description));
        fields.finish(|| {
            let name = name?;
            Some(NewCategory {
                slug: name.slug(),
                name,
                parent_id: parent_id?,
                description: description?,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_url_friendly() {
        let slug = |name: &str| {
            CategoryName::parse(name)
                .unwrap()
                .slug()
                .as_str()
                .to_owned()
        };
        assert_eq!(slug("Home & Garden"), "home-and-garden");
        assert_eq!(slug("  Men's   Shoes!! "), "mens-shoes");
        assert_eq!(slug("Gadgets"), "gadgets");
        assert_eq!(slug("4K TVs / Monitors"), "4k-tvs-monitors");
        assert_eq!(slug("Café Crème"), "café-crème");
        assert!(CategoryName::parse("!!!").is_err());
    }
}
