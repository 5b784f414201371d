//! The rules of a user: what a valid one looks like. Pure functions, no I/O; each parser
//! returns a type that can only hold a valid value, and names every bad field at once.
//!
//! Written once by `cargo xtask new-service user`; from now on it belongs to the service.

use api::user::{CreateUserRequest, ListUsersRequest, UpdateUserRequest};
use uuid::Uuid;

pub const NAME_MAX_CHARS: usize = 200;
pub const DESCRIPTION_MAX_CHARS: usize = 5000;
pub const DEFAULT_PAGE_SIZE: usize = 20;
pub const MAX_PAGE_SIZE: usize = 100;

/// The id of a stored user: a UUID v7, so ids sort in creation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub Uuid);

impl UserId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// Parses the request field `field`, or says why it is not an id.
    pub fn parse(field: &str, value: &str) -> Result<Self, rpc::Error> {
        Uuid::parse_str(value)
            .map(Self)
            .map_err(|_| rpc::Error::invalid_field(field, "must be a UUID"))
    }
}

impl Default for UserId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A new user, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUser {
    pub name: String,
    pub description: String,
}

impl NewUser {
    pub fn parse(request: &CreateUserRequest) -> Result<Self, rpc::Error> {
        let mut violations = rpc::Violations::new();
        let name = request.name.trim();
        check_name(&mut violations, name);
        check_description(&mut violations, &request.description);
        violations.into_result()?;
        Ok(Self {
            name: name.to_owned(),
            description: request.description.clone(),
        })
    }
}

/// The fields an update sets; `None` leaves a field as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserChanges {
    pub id: UserId,
    pub name: Option<String>,
    pub description: Option<String>,
}

impl UserChanges {
    pub fn parse(request: &UpdateUserRequest) -> Result<Self, rpc::Error> {
        let id = UserId::parse("id", &request.id)?;
        let mut violations = rpc::Violations::new();
        let name = request.name.as_deref().map(str::trim);
        if let Some(name) = name {
            check_name(&mut violations, name);
        }
        if let Some(description) = &request.description {
            check_description(&mut violations, description);
        }
        violations.into_result()?;
        Ok(Self {
            id,
            name: name.map(str::to_owned),
            description: request.description.clone(),
        })
    }
}

/// One page of a listing: at most `size` users with ids after `after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub size: usize,
    pub after: Option<UserId>,
}

impl Page {
    pub fn parse(request: &ListUsersRequest) -> Result<Self, rpc::Error> {
        let size = match request.page_size {
            0 => DEFAULT_PAGE_SIZE,
            size if (1..=MAX_PAGE_SIZE as i32).contains(&size) => size as usize,
            _ => {
                return Err(rpc::Error::invalid_field(
                    "page_size",
                    format!("must be between 1 and {MAX_PAGE_SIZE}"),
                ));
            }
        };
        let after = match request.cursor.as_str() {
            "" => None,
            cursor => Some(UserId::parse("cursor", cursor)?),
        };
        Ok(Self { size, after })
    }
}

fn check_name(violations: &mut rpc::Violations, name: &str) {
    violations.check(!name.is_empty(), "name", "must not be empty");
    violations.check(
        name.chars().count() <= NAME_MAX_CHARS,
        "name",
        "must be at most 200 characters",
    );
}

fn check_description(violations: &mut rpc::Violations, description: &str) {
    violations.check(
        description.chars().count() <= DESCRIPTION_MAX_CHARS,
        "description",
        "must be at most 5000 characters",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(error: rpc::Error) -> Vec<String> {
        error.details().iter().map(|d| d.field.clone()).collect()
    }

    #[test]
    fn a_name_is_trimmed_and_required() {
        let parsed = NewUser::parse(&CreateUserRequest {
            name: "  First  ".into(),
            description: String::new(),
        })
        .unwrap();
        assert_eq!(parsed.name, "First");

        let error = NewUser::parse(&CreateUserRequest {
            name: "   ".into(),
            description: "x".repeat(DESCRIPTION_MAX_CHARS + 1),
        })
        .unwrap_err();
        assert_eq!(fields(error), ["name", "description"]);
    }

    #[test]
    fn an_update_changes_only_the_fields_present() {
        let id = UserId::new();
        let changes = UserChanges::parse(&UpdateUserRequest {
            id: id.to_string(),
            name: None,
            description: Some("new".into()),
        })
        .unwrap();
        assert_eq!(changes.id, id);
        assert_eq!(changes.name, None);
        assert_eq!(changes.description.as_deref(), Some("new"));
        assert!(
            UserChanges::parse(&UpdateUserRequest {
                id: "nope".into(),
                ..Default::default()
            })
            .is_err()
        );
    }

    #[test]
    fn pages_default_to_twenty_and_reject_out_of_range_sizes() {
        let page = Page::parse(&ListUsersRequest::default()).unwrap();
        assert_eq!(
            page,
            Page {
                size: DEFAULT_PAGE_SIZE,
                after: None
            }
        );
        for size in [-1, MAX_PAGE_SIZE as i32 + 1] {
            let request = ListUsersRequest {
                page_size: size,
                ..Default::default()
            };
            assert_eq!(fields(Page::parse(&request).unwrap_err()), ["page_size"]);
        }
        let request = ListUsersRequest {
            cursor: "x".into(),
            ..Default::default()
        };
        assert_eq!(fields(Page::parse(&request).unwrap_err()), ["cursor"]);
    }
}
