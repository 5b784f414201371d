//! Who may act on a shop's things (its products, stock, vouchers): the one rule every service
//! that lets sellers manage their own catalog applies, from the shop service's answer.
//!
//! - An admin may act on any shop, in any status.
//! - The shop's owner may, while they hold the seller role and the shop is active; otherwise
//!   they are told why (failed precondition / permission denied).
//! - Anybody else learns nothing: the caller's `not_found` error, exactly what a shop or a
//!   thing that does not exist answers.

use api::shop::ShopAccess;
use rpc::{Error, Principal, roles};

/// On whose authority an action on a shop goes ahead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Authority {
    Admin,
    Owner,
}

/// The shop statuses as the shop contract spells them.
pub mod status {
    pub const PENDING: &str = "pending";
    pub const ACTIVE: &str = "active";
    pub const SUSPENDED: &str = "suspended";
    pub const CLOSED: &str = "closed";
}

/// Whether `principal` may change what belongs to `shop`. `not_found` is the error the caller
/// answers for something that does not exist, so that another seller's shop looks missing.
pub fn may_manage(
    principal: &Principal,
    shop: &ShopAccess,
    not_found: impl FnOnce() -> Error,
) -> Result<Authority, Error> {
    if principal.is_admin() {
        return Ok(Authority::Admin);
    }
    if principal.user_id != shop.owner_id {
        return Err(not_found());
    }
    if !principal.has_role(roles::SELLER) {
        return Err(Error::permission_denied("this needs the seller role"));
    }
    if shop.status != status::ACTIVE {
        return Err(Error::failed_precondition(format!(
            "shop {} is {}: only an active shop's catalog can change",
            shop.shop_id, shop.status
        )));
    }
    Ok(Authority::Owner)
}

/// Whether `principal` may act as a seller at all (open a shop, create a voucher): sellers and
/// admins.
pub fn require_seller(principal: &Principal) -> Result<(), Error> {
    if principal.is_admin() || principal.has_role(roles::SELLER) {
        Ok(())
    } else {
        Err(Error::permission_denied("this needs the seller role"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(user: &str, roles: &[&str]) -> Principal {
        Principal {
            user_id: user.to_owned(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    fn shop(owner: &str, status: &str) -> ShopAccess {
        ShopAccess {
            shop_id: "s-1".to_owned(),
            owner_id: owner.to_owned(),
            status: status.to_owned(),
            currency: "USD".to_owned(),
        }
    }

    fn missing() -> Error {
        Error::not_found("product p-1 not found")
    }

    #[test]
    fn admins_manage_any_shop_in_any_status() {
        let admin = principal("a", &["customer", "admin"]);
        for status in [
            status::PENDING,
            status::ACTIVE,
            status::SUSPENDED,
            status::CLOSED,
        ] {
            assert_eq!(
                may_manage(&admin, &shop("o", status), missing).unwrap(),
                Authority::Admin
            );
        }
    }

    #[test]
    fn owners_manage_their_active_shops_only() {
        let owner = principal("o", &["customer", "seller"]);
        assert_eq!(
            may_manage(&owner, &shop("o", status::ACTIVE), missing).unwrap(),
            Authority::Owner
        );
        let error = may_manage(&owner, &shop("o", status::SUSPENDED), missing).unwrap_err();
        assert_eq!(error.code(), rpc::ErrorCode::FailedPrecondition);
        let former = principal("o", &["customer"]);
        let error = may_manage(&former, &shop("o", status::ACTIVE), missing).unwrap_err();
        assert_eq!(error.code(), rpc::ErrorCode::PermissionDenied);
    }

    #[test]
    fn another_seller_sees_the_callers_not_found() {
        let other = principal("x", &["customer", "seller"]);
        let error = may_manage(&other, &shop("o", status::ACTIVE), missing).unwrap_err();
        assert_eq!(error.code(), rpc::ErrorCode::NotFound);
        assert_eq!(error.message(), "product p-1 not found");
    }

    #[test]
    fn only_sellers_and_admins_act_as_sellers() {
        assert!(require_seller(&principal("a", &["admin"])).is_ok());
        assert!(require_seller(&principal("s", &["seller"])).is_ok());
        let error = require_seller(&principal("c", &["customer"])).unwrap_err();
        assert_eq!(error.code(), rpc::ErrorCode::PermissionDenied);
    }
}
