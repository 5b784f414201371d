//! A profile, its defaults, and the changes a user may make to their own.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use vocab::{Fields, LineBreaks, Problem, bounded_text};

use super::{PreferredCurrency, UserId};

pub const USERNAME_MIN_CHARS: usize = 3;
pub const USERNAME_MAX_CHARS: usize = 30;
pub const NAME_MAX_CHARS: usize = 100;
pub const AVATAR_URL_MAX_CHARS: usize = 2048;
pub const EMAIL_MAX_CHARS: usize = 320;
pub const PHONE_MIN_DIGITS: usize = 8;
pub const PHONE_MAX_DIGITS: usize = 15;
/// The earliest date of birth accepted: anything before is a typing mistake.
pub const EARLIEST_DATE_OF_BIRTH: NaiveDate = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap();
pub const DEFAULT_LANGUAGE: &str = "en";

/// Where an account stands. Only `active` is made here; the others are set by moderation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileStatus {
    Active,
    Suspended,
    Deleted,
}

impl ProfileStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileStatus::Active => "active",
            ProfileStatus::Suspended => "suspended",
            ProfileStatus::Deleted => "deleted",
        }
    }
}

/// A profile as it is stored: one document per account, keyed by its [`UserId`]. Every field
/// holds a value its parser accepted; the empty string means "not given".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub email: String,
    pub username: String,
    pub status: ProfileStatus,
    pub first_name: String,
    pub last_name: String,
    pub phone: String,
    pub avatar_url: String,
    pub date_of_birth: String,
    pub gender: String,
    pub preferences: Preferences,
}

impl Profile {
    /// The profile a new account starts with.
    fn new(email: String) -> Self {
        Self {
            email,
            username: String::new(),
            status: ProfileStatus::Active,
            first_name: String::new(),
            last_name: String::new(),
            phone: String::new(),
            avatar_url: String::new(),
            date_of_birth: String::new(),
            gender: String::new(),
            preferences: Preferences::default(),
        }
    }
}

/// How the user wants to be served and told about things.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preferences {
    /// A [`LanguageTag`].
    pub language: String,
    /// A [`PreferredCurrency`].
    pub currency: String,
    pub notifications: Notifications,
}

impl Default for Preferences {
    /// English, US dollars, email only.
    fn default() -> Self {
        Self {
            language: DEFAULT_LANGUAGE.to_owned(),
            currency: PreferredCurrency::USD.as_str().to_owned(),
            notifications: Notifications {
                email: true,
                sms: false,
                push: false,
            },
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notifications {
    pub email: bool,
    pub sms: bool,
    pub push: bool,
}

/// The profile a `user.registered` event creates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewProfile {
    pub user_id: UserId,
    pub profile: Profile,
}

impl NewProfile {
    /// The profile of a newly registered account, with the defaults; or why the event cannot
    /// make one (no retry can fix that: the caller terminates the message with the reason).
    pub fn from_event(event: &api::auth::UserRegistered) -> Result<Self, String> {
        let user_id =
            UserId::parse(&event.user_id).map_err(|problem| format!("user_id {problem}"))?;
        let email = event.email.trim().to_lowercase();
        if email.is_empty() {
            return Err("email is required".to_owned());
        }
        if email.chars().count() > EMAIL_MAX_CHARS || email.chars().any(char::is_control) {
            return Err("email is malformed".to_owned());
        }
        Ok(Self {
            user_id,
            profile: Profile::new(email),
        })
    }
}

/// Empty (none), or 3 to 30 of `a-z`, `0-9` and `_`; upper-case ASCII letters are taken as
/// their lower-case forms, which is how usernames are stored and compared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(value: &str) -> Result<Self, Problem> {
        let value = value.to_ascii_lowercase();
        if value.is_empty() {
            return Ok(Self(value));
        }
        let length = value.chars().count();
        if !(USERNAME_MIN_CHARS..=USERNAME_MAX_CHARS).contains(&length) {
            return Err(format!(
                "must have {USERNAME_MIN_CHARS} to {USERNAME_MAX_CHARS} characters, or be empty"
            )
            .into());
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err("may contain only letters a-z, digits and _".into());
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A first or last name: trimmed, at most 100 characters, possibly empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(value: &str) -> Result<Self, Problem> {
        bounded_text(value, 0..=NAME_MAX_CHARS, LineBreaks::Refused).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Empty, or an E.164 number: `+`, then 8 to 15 digits, the first not 0 (country codes never
/// start with 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(value: &str) -> Result<Self, Problem> {
        if value.is_empty() {
            return Ok(Self(String::new()));
        }
        let valid = value.strip_prefix('+').is_some_and(|digits| {
            (PHONE_MIN_DIGITS..=PHONE_MAX_DIGITS).contains(&digits.len())
                && digits.bytes().all(|b| b.is_ascii_digit())
                && !digits.starts_with('0')
        });
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(
                "must be an E.164 number: + and 8 to 15 digits without spaces, like +14155550123"
                    .into(),
            )
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Empty, or an absolute `https` URL with a host and no credentials, at most 2048 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvatarUrl(String);

impl AvatarUrl {
    pub fn parse(value: &str) -> Result<Self, Problem> {
        if value.is_empty() {
            return Ok(Self(String::new()));
        }
        if value.chars().count() > AVATAR_URL_MAX_CHARS {
            return Err(format!("must have at most {AVATAR_URL_MAX_CHARS} characters").into());
        }
        let url = url::Url::parse(value).map_err(|_| "must be an https URL")?;
        if url.scheme() != "https" || url.host_str().is_none_or(str::is_empty) {
            return Err("must be an https URL".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not contain a user name or password".into());
        }
        // The normalised form (it can only be a little longer, by a "/" path): what browsers
        // would request.
        let normalised = url.to_string();
        if normalised.chars().count() > AVATAR_URL_MAX_CHARS {
            return Err(format!("must have at most {AVATAR_URL_MAX_CHARS} characters").into());
        }
        Ok(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Empty, or a `YYYY-MM-DD` date from 1900-01-01 up to yesterday.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DateOfBirth(String);

impl DateOfBirth {
    /// `today` is the caller's (UTC) date: this module does not read the clock.
    pub fn parse(value: &str, today: NaiveDate) -> Result<Self, Problem> {
        if value.is_empty() {
            return Ok(Self(String::new()));
        }
        let shaped = value.len() == 10
            && value.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                _ => b.is_ascii_digit(),
            });
        let date = shaped
            .then(|| NaiveDate::parse_from_str(value, "%Y-%m-%d").ok())
            .flatten()
            .ok_or("must be a date written YYYY-MM-DD")?;
        if date >= today {
            return Err("must be in the past".into());
        }
        if date < EARLIEST_DATE_OF_BIRTH {
            return Err("must be on or after 1900-01-01".into());
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `female`, `male`, `other`, or empty (not said).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gender {
    Female,
    Male,
    Other,
    NotSaid,
}

impl Gender {
    pub fn parse(value: &str) -> Result<Self, Problem> {
        match value {
            "female" => Ok(Gender::Female),
            "male" => Ok(Gender::Male),
            "other" => Ok(Gender::Other),
            "" => Ok(Gender::NotSaid),
            _ => Err("must be female, male, other, or empty".into()),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Gender::Female => "female",
            Gender::Male => "male",
            Gender::Other => "other",
            Gender::NotSaid => "",
        }
    }
}

/// A language tag as the shop uses them: a 2 or 3 letter primary language, optionally `-` and
/// a region (2 letters or 3 digits): "en", "en-US", "es-419". Stored in the canonical case
/// ("en-US"), whatever case it was given in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LanguageTag(String);

impl LanguageTag {
    pub fn parse(value: &str) -> Result<Self, Problem> {
        if value.is_empty() {
            return Err("is required".into());
        }
        let problem = || -> Problem {
            "must be a language tag: 2 or 3 letters, optionally - and a region, like \"en\" or \"en-US\"".into()
        };
        let (language, region) = match value.split_once('-') {
            Some((language, region)) => (language, Some(region)),
            None => (value, None),
        };
        if !(2..=3).contains(&language.len()) || !language.bytes().all(|b| b.is_ascii_alphabetic())
        {
            return Err(problem());
        }
        let mut tag = language.to_ascii_lowercase();
        if let Some(region) = region {
            let letters = region.len() == 2 && region.bytes().all(|b| b.is_ascii_alphabetic());
            let digits = region.len() == 3 && region.bytes().all(|b| b.is_ascii_digit());
            if !letters && !digits {
                return Err(problem());
            }
            tag.push('-');
            tag.push_str(&region.to_ascii_uppercase());
        }
        Ok(Self(tag))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Preferences {
    /// Parses `preferences` (whole: it replaces the stored preferences), recording problems
    /// under `preferences.<field>`.
    fn parse(fields: &mut Fields, request: &api::user::Preferences) -> Option<Self> {
        let language = fields.parse(
            "preferences.language",
            LanguageTag::parse(&request.language),
        );
        let currency = fields.parse(
            "preferences.currency",
            PreferredCurrency::parse(&request.currency),
        );
        let notifications = request.notifications.unwrap_or_default();
        Some(Self {
            language: language?.0,
            currency: currency?.as_str().to_owned(),
            notifications: Notifications {
                email: notifications.email,
                sms: notifications.sms,
                push: notifications.push,
            },
        })
    }
}

/// What an update sets; `None` leaves a field as it is. `preferences`, when present, replaces
/// the preferences as a whole.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileChanges {
    pub username: Option<Username>,
    pub first_name: Option<PersonName>,
    pub last_name: Option<PersonName>,
    pub phone: Option<Phone>,
    pub avatar_url: Option<AvatarUrl>,
    pub date_of_birth: Option<DateOfBirth>,
    pub gender: Option<Gender>,
    pub preferences: Option<Preferences>,
}

impl ProfileChanges {
    /// Parses an update, naming every bad field at once. `today` (UTC) bounds the date of birth.
    pub fn parse(
        request: &api::user::UpdateMyProfileRequest,
        today: NaiveDate,
    ) -> Result<Self, rpc::Error> {
        let mut fields = Fields::default();
        let username = fields.optional("username", request.username.as_deref(), Username::parse);
        let first_name = fields.optional(
            "first_name",
            request.first_name.as_deref(),
            PersonName::parse,
        );
        let last_name =
            fields.optional("last_name", request.last_name.as_deref(), PersonName::parse);
        let phone = fields.optional("phone", request.phone.as_deref(), Phone::parse);
        let avatar_url = fields.optional(
            "avatar_url",
            request.avatar_url.as_deref(),
            AvatarUrl::parse,
        );
        let date_of_birth =
            fields.optional("date_of_birth", request.date_of_birth.as_deref(), |value| {
                DateOfBirth::parse(value, today)
            });
        let gender = fields.optional("gender", request.gender.as_deref(), Gender::parse);
        let preferences = match &request.preferences {
            None => Some(None),
            Some(preferences) => Preferences::parse(&mut fields, preferences).map(Some),
        };
        fields.finish(|| {
            Some(Self {
                username: username?,
                first_name: first_name?,
                last_name: last_name?,
                phone: phone?,
                avatar_url: avatar_url?,
                date_of_birth: date_of_birth?,
                gender: gender?,
                preferences: preferences?,
            })
        })
    }

    /// Whether the update sets nothing.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

#[cfg(test)]
mod tests {
    use api::user::UpdateMyProfileRequest;
    use testkit::bad_fields;

    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
    }

    fn registered(user_id: &str, email: &str) -> api::auth::UserRegistered {
        api::auth::UserRegistered {
            user_id: user_id.into(),
            email: email.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_registered_account_gets_the_default_profile() {
        let id = "0190f5c6-1e2b-7a1c-9d3e-4f5a6b7c8d9e";
        let new = NewProfile::from_event(&registered(id, " Ada@Example.COM ")).unwrap();
        assert_eq!(new.user_id.to_string(), id);
        let profile = new.profile;
        assert_eq!(profile.email, "ada@example.com");
        assert_eq!(profile.status, ProfileStatus::Active);
        assert_eq!(profile.username, "");
        assert_eq!(profile.preferences.language, "en");
        assert_eq!(profile.preferences.currency, "USD");
        assert_eq!(
            profile.preferences.notifications,
            Notifications {
                email: true,
                sms: false,
                push: false
            }
        );
    }

    #[test]
    fn a_malformed_event_says_why() {
        let id = "0190f5c6-1e2b-7a1c-9d3e-4f5a6b7c8d9e";
        assert_eq!(
            NewProfile::from_event(&registered("nope", "a@b.c")).unwrap_err(),
            "user_id must be a UUID"
        );
        assert_eq!(
            NewProfile::from_event(&registered(id, "  ")).unwrap_err(),
            "email is required"
        );
    }

    #[test]
    fn person_names_are_trimmed_single_lines_of_at_most_100_characters() {
        assert_eq!(PersonName::parse("  Ada  ").unwrap().as_str(), "Ada");
        assert_eq!(PersonName::parse("").unwrap().as_str(), "");
        assert!(
            PersonName::parse(&"é".repeat(100)).is_ok(),
            "characters, not bytes"
        );
        assert_eq!(
            PersonName::parse(&"é".repeat(101)).unwrap_err(),
            "must have at most 100 characters"
        );
        assert_eq!(
            PersonName::parse("A\u{0}a").unwrap_err(),
            "must not contain control characters"
        );
        assert!(PersonName::parse("Ada\nLovelace").is_err());
    }

    #[test]
    fn usernames_are_lower_case_word_characters() {
        assert_eq!(Username::parse("Ada_99").unwrap().as_str(), "ada_99");
        assert_eq!(Username::parse("").unwrap().as_str(), "");
        assert_eq!(Username::parse(&"a".repeat(30)).unwrap().as_str().len(), 30);
        for bad in [
            "ab",
            &"a".repeat(31),
            "ada lovelace",
            "ada-l",
            "adá",
            "ada!",
            " ada",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn phones_are_e164() {
        for good in ["", "+14155550123", "+49301234", "+123456789012345"] {
            assert_eq!(Phone::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "14155550123",
            "+1415555",
            "+1234567890123456",
            "+1 415 555 0123",
            "+01234567890",
            "+",
            "+1415555012a",
        ] {
            assert!(Phone::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn avatar_urls_are_https_without_credentials() {
        assert_eq!(
            AvatarUrl::parse("https://cdn.example.com/a.png")
                .unwrap()
                .as_str(),
            "https://cdn.example.com/a.png"
        );
        assert_eq!(AvatarUrl::parse("").unwrap().as_str(), "");
        let long = format!("https://cdn.example.com/{}", "a".repeat(2048));
        for bad in [
            "http://cdn.example.com/a.png",
            "cdn.example.com/a.png",
            "javascript:alert(1)",
            "https://user:secret@cdn.example.com/a.png",
            "data:image/png;base64,AAAA",
            long.as_str(),
        ] {
            assert!(AvatarUrl::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn dates_of_birth_are_past_dates_since_1900() {
        assert!(DateOfBirth::parse("1990-02-28", today()).is_ok());
        assert!(DateOfBirth::parse("1900-01-01", today()).is_ok());
        assert!(DateOfBirth::parse("2026-11-21", today()).is_ok());
        assert!(DateOfBirth::parse("", today()).is_ok());
        for bad in [
            "2026-11-22",
            "2030-01-01",
            "1899-12-31",
            "1990-02-30",
            "1990-2-3",
            "02/28/1990",
            "1990-02-28T00:00:00Z",
        ] {
            assert!(
                DateOfBirth::parse(bad, today()).is_err(),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn genders_are_a_closed_list() {
        for good in ["female", "male", "other", ""] {
            assert_eq!(Gender::parse(good).unwrap().as_str(), good);
        }
        for bad in ["Female", "f", "unknown"] {
            assert!(Gender::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn language_tags_are_canonicalised() {
        assert_eq!(LanguageTag::parse("en").unwrap().as_str(), "en");
        assert_eq!(LanguageTag::parse("EN-us").unwrap().as_str(), "en-US");
        assert_eq!(LanguageTag::parse("es-419").unwrap().as_str(), "es-419");
        assert_eq!(LanguageTag::parse("fil").unwrap().as_str(), "fil");
        for bad in [
            "", "e", "engl", "en-", "en-USA", "en-1", "en_US", "en-US-x", "e1",
        ] {
            assert!(LanguageTag::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn an_update_changes_only_the_fields_present() {
        let changes = ProfileChanges::parse(
            &UpdateMyProfileRequest {
                first_name: Some("  Ada ".into()),
                gender: Some(String::new()),
                ..Default::default()
            },
            today(),
        )
        .unwrap();
        assert_eq!(changes.first_name.unwrap().as_str(), "Ada");
        assert_eq!(changes.gender, Some(Gender::NotSaid));
        assert_eq!(changes.username, None);
        assert_eq!(changes.preferences, None);
        assert!(
            ProfileChanges::parse(&UpdateMyProfileRequest::default(), today())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn preferences_are_replaced_whole_and_checked_field_by_field() {
        let changes = ProfileChanges::parse(
            &UpdateMyProfileRequest {
                preferences: Some(api::user::Preferences {
                    language: "fr-fr".into(),
                    currency: "EUR".into(),
                    notifications: None,
                }),
                ..Default::default()
            },
            today(),
        )
        .unwrap();
        assert_eq!(
            changes.preferences.unwrap(),
            Preferences {
                language: "fr-FR".into(),
                currency: "EUR".into(),
                notifications: Notifications {
                    email: false,
                    sms: false,
                    push: false
                },
            }
        );
    }

    #[test]
    fn every_bad_field_is_named_at_once() {
        let error = ProfileChanges::parse(
            &UpdateMyProfileRequest {
                username: Some("no".into()),
                first_name: Some("x".repeat(101)),
                last_name: Some("fine".into()),
                phone: Some("555-0123".into()),
                avatar_url: Some("http://example.com/a.png".into()),
                date_of_birth: Some("2999-01-01".into()),
                gender: Some("robot".into()),
                preferences: Some(api::user::Preferences {
                    language: "english".into(),
                    currency: "usd".into(),
                    notifications: None,
                }),
            },
            today(),
        )
        .unwrap_err();
        assert_eq!(
            bad_fields(&error),
            [
                "username",
                "first_name",
                "phone",
                "avatar_url",
                "date_of_birth",
                "gender",
                "preferences.language",
                "preferences.currency"
            ]
        );
    }
}
