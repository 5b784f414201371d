//! The rules of a settings: what a valid one looks like. Pure functions, no I/O; each parser
//! returns a type that can only hold a valid value, and names every bad field at once.
//!
//! Written once by `cargo xtask new-service settings`; from now on it belongs to the service.

use api::settings::{CreateSettingsRequest, ListSettingsesRequest, UpdateSettingsRequest};
use uuid::Uuid;
use vocab::page::{self, Keyset, PageSize};
use vocab::{Fields, LineBreaks, Problem, bounded_text};

pub const NAME_MAX_CHARS: usize = 200;
pub const DESCRIPTION_MAX_CHARS: usize = 5000;

/// The id of a stored settings: a UUID v7, so ids sort in creation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SettingsId(pub Uuid);

impl SettingsId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// Parses the request field `field`, or says why it is not an id.
    pub fn parse(field: &str, value: &str) -> Result<Self, rpc::Error> {
        Self::parse_value(value).map_err(|problem| rpc::Error::invalid_field(field, problem))
    }

    fn parse_value(value: &str) -> Result<Self, Problem> {
        Uuid::try_parse(value)
            .map(Self)
            .map_err(|_| "must be a UUID".into())
    }
}

impl Default for SettingsId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for SettingsId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Listings are in id order, so the last id of a page is where the next one starts.
impl Keyset for SettingsId {
    const VERSION: u32 = 1;

    fn write(&self) -> String {
        self.0.to_string()
    }

    fn read(text: &str) -> Option<Self> {
        Uuid::try_parse(text).ok().map(Self)
    }
}

fn name(value: &str) -> Result<String, Problem> {
    bounded_text(value, 1..=NAME_MAX_CHARS, LineBreaks::Refused)
}

fn description(value: &str) -> Result<String, Problem> {
    bounded_text(value, 0..=DESCRIPTION_MAX_CHARS, LineBreaks::Allowed)
}

/// A new settings, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSettings {
    pub name: String,
    pub description: String,
}

impl NewSettings {
    pub fn parse(request: &CreateSettingsRequest) -> Result<Self, rpc::Error> {
        let mut fields = Fields::new();
        let name = fields.parse("name", name(&request.name));
        let description = fields.parse("description", description(&request.description));
        fields.finish(|| {
            Some(Self {
                name: name?,
                description: description?,
            })
        })
    }
}

/// The fields an update sets; `None` leaves a field as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingsChanges {
    pub id: SettingsId,
    pub name: Option<String>,
    pub description: Option<String>,
}

impl SettingsChanges {
    pub fn parse(request: &UpdateSettingsRequest) -> Result<Self, rpc::Error> {
        let mut fields = Fields::new();
        let id = fields.parse("id", SettingsId::parse_value(&request.id));
        let name = fields.optional("name", request.name.as_deref(), name);
        let description =
            fields.optional("description", request.description.as_deref(), description);
        fields.finish(|| {
            Some(Self {
                id: id?,
                name: name?,
                description: description?,
            })
        })
    }
}

/// One page of a listing: at most `size` settingses with ids after `after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub size: usize,
    pub after: Option<SettingsId>,
}

impl Page {
    pub fn parse(request: &ListSettingsesRequest) -> Result<Self, rpc::Error> {
        let mut fields = Fields::new();
        let size = fields.parse("page_size", PageSize::parse(request.page_size));
        let after = fields.parse("cursor", page::parse_token(&request.cursor));
        fields.finish(|| {
            Some(Self {
                size: size?.get(),
                after: after?,
            })
        })
    }

    /// The `next_cursor` of a page whose last settings is `last`.
    pub fn cursor_after(last: SettingsId) -> String {
        page::encode_token(&last)
    }
}

#[cfg(test)]
mod tests {
    use testkit::bad_fields;

    use super::*;

    #[test]
    fn a_name_is_trimmed_and_required() {
        let parsed = NewSettings::parse(&CreateSettingsRequest {
            name: "  First  ".into(),
            description: String::new(),
        })
        .unwrap();
        assert_eq!(parsed.name, "First");

        let error = NewSettings::parse(&CreateSettingsRequest {
            name: "   ".into(),
            description: "x".repeat(DESCRIPTION_MAX_CHARS + 1),
        })
        .unwrap_err();
        assert_eq!(bad_fields(&error), ["name", "description"]);
    }

    #[test]
    fn an_update_changes_only_the_fields_present() {
        let id = SettingsId::new();
        let changes = SettingsChanges::parse(&UpdateSettingsRequest {
            id: id.to_string(),
            name: None,
            description: Some("new".into()),
        })
        .unwrap();
        assert_eq!(changes.id, id);
        assert_eq!(changes.name, None);
        assert_eq!(changes.description.as_deref(), Some("new"));
        let error = SettingsChanges::parse(&UpdateSettingsRequest {
            id: "nope".into(),
            name: Some(String::new()),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(bad_fields(&error), ["id", "name"]);
    }

    #[test]
    fn pages_default_to_twenty_and_reject_out_of_range_sizes_and_foreign_cursors() {
        let page = Page::parse(&ListSettingsesRequest::default()).unwrap();
        assert_eq!(
            page,
            Page {
                size: PageSize::DEFAULT.get(),
                after: None
            }
        );
        for size in [-1, PageSize::MAX.get() as i32 + 1] {
            let request = ListSettingsesRequest {
                page_size: size,
                ..Default::default()
            };
            assert_eq!(
                bad_fields(&Page::parse(&request).unwrap_err()),
                ["page_size"]
            );
        }
        let request = ListSettingsesRequest {
            cursor: "x".into(),
            ..Default::default()
        };
        assert_eq!(bad_fields(&Page::parse(&request).unwrap_err()), ["cursor"]);

        let last = SettingsId::new();
        let request = ListSettingsesRequest {
            cursor: Page::cursor_after(last),
            ..Default::default()
        };
        assert_eq!(Page::parse(&request).unwrap().after, Some(last));
    }
}
