//! Where a value applies: the whole platform, or one shop.

use std::fmt;

use uuid::Uuid;

/// The platform, or one shop. Written "platform" or "shop:<uuid>" in the contract and
/// "platform" or "shop_<uuid>" as the first token of a bucket key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Platform,
    Shop(Uuid),
}

/// The kinds of scope a key may be set in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeKind {
    Platform,
    Shop,
}

impl ScopeKind {
    pub fn name(self) -> &'static str {
        match self {
            ScopeKind::Platform => "platform",
            ScopeKind::Shop => "shop",
        }
    }
}

impl Scope {
    /// Parses "platform" (or the empty string) and "shop:<uuid>".
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "" | "platform" => Ok(Scope::Platform),
            other => other
                .strip_prefix("shop:")
                .and_then(|id| Uuid::try_parse(id).ok())
                .map(Scope::Shop)
                .ok_or_else(|| "must be \"platform\" or \"shop:<uuid>\"".to_owned()),
        }
    }

    pub fn kind(&self) -> ScopeKind {
        match self {
            Scope::Platform => ScopeKind::Platform,
            Scope::Shop(_) => ScopeKind::Shop,
        }
    }

    /// The key of `key`'s value in this scope in the bucket: "platform.checkout.tax_rates".
    pub fn bucket_key(&self, key: &str) -> String {
        match self {
            Scope::Platform => format!("platform.{key}"),
            Scope::Shop(id) => format!("shop_{id}.{key}"),
        }
    }

    /// The scope and key a bucket key names.
    pub fn from_bucket_key(bucket_key: &str) -> Option<(Scope, &str)> {
        let (scope, key) = bucket_key.split_once('.')?;
        let scope = match scope {
            "platform" => Scope::Platform,
            other => Scope::Shop(Uuid::try_parse(other.strip_prefix("shop_")?).ok()?),
        };
        Some((scope, key))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Platform => f.write_str("platform"),
            Scope::Shop(id) => write!(f, "shop:{id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_through_text_and_bucket_keys() {
        let shop = Scope::Shop(Uuid::now_v7());
        for scope in [Scope::Platform, shop] {
            assert_eq!(Scope::parse(&scope.to_string()).unwrap(), scope);
            let bucket_key = scope.bucket_key("checkout.tax_rates");
            assert_eq!(
                Scope::from_bucket_key(&bucket_key),
                Some((scope, "checkout.tax_rates"))
            );
        }
        assert_eq!(Scope::parse("").unwrap(), Scope::Platform);
        assert!(Scope::parse("shop:nope").is_err());
        assert!(Scope::parse("tenant").is_err());
        assert_eq!(Scope::from_bucket_key("elsewhere.x"), None);
    }
}
