//! What the runtime knows about a method: generated into the contracts crate, one per method.

/// Who may call a method. The gateway enforces it before a request reaches NATS, and the
/// runtime checks it again before the handler runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// Anyone, with or without a token.
    Public,
    /// Any authenticated user.
    User,
    /// Users with the admin role.
    Admin,
    /// Other services only: no HTTP route reaches it.
    Internal,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Public => "public",
            Access::User => "user",
            Access::Admin => "admin",
            Access::Internal => "internal",
        }
    }
}

/// One method of a service contract.
#[derive(Debug)]
pub struct MethodDescriptor {
    /// The service name as registered with NATS micro (`product`).
    pub service: &'static str,
    /// The method name in snake case (`get_product`); also the NATS micro endpoint name.
    pub method: &'static str,
    /// The NATS subject requests are sent to (`product.get_product`).
    pub subject: &'static str,
    pub access: Access,
    /// Fully qualified protobuf names, for logs and documentation.
    pub request_type: &'static str,
    pub response_type: &'static str,
}

/// A service contract as NATS micro registers it: generated into the contracts crate, one per
/// service (`api::product::SERVICE`).
#[derive(Debug, PartialEq, Eq)]
pub struct ServiceDescriptor {
    /// The NATS micro service name (`product`); also the prefix of its subjects.
    pub name: &'static str,
    /// The contract's semver version.
    pub version: &'static str,
    /// One sentence, shown by `nats micro ls`.
    pub description: &'static str,
}
