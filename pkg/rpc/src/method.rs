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

/// A method of a contract as a type: its descriptor with its request and response types.
/// Generated into the contracts crate, one uninhabited type per method
/// (`api::product::methods::GetProduct`), so that calling or binding a method with the wrong
/// message types is a compile error.
pub trait Method: 'static {
    /// Checked against its declared field rules before the handler sees it.
    type Request: crate::codec::Message + crate::rules::Validate;
    type Response: crate::codec::Message;
    const DESCRIPTOR: &'static MethodDescriptor;
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
