//! Who a test's request comes from, as the gateway would forward it: the principal a
//! service's handlers see.

use rpc::{Context, Principal, roles};

/// Nobody signed in.
pub fn anonymous() -> Context {
    Context::background()
}

/// The user `user_id`, signed in with `roles`.
pub fn signed_in(user_id: &str, roles: &[&str]) -> Context {
    Context::background().with_principal(Principal {
        user_id: user_id.to_owned(),
        roles: roles.iter().map(|role| (*role).to_owned()).collect(),
    })
}

/// A signed-in customer with this user id.
pub fn customer(user_id: &str) -> Context {
    signed_in(user_id, &[roles::CUSTOMER])
}

/// A signed-in admin with a fresh user id.
pub fn admin() -> Context {
    signed_in(&uuid::Uuid::now_v7().to_string(), &[roles::ADMIN])
}
