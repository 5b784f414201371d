//! The RPC handlers of the address contract.
//!
//! Each handler reads the same way: find the owner (the authenticated caller), parse the
//! request into domain types (which names every bad field), then run the store functions.
//! A write that touches the default runs in one transaction that first takes the owner's lock,
//! so concurrent requests of one user change the default one after another, and the database
//! checks at commit that the user is left with exactly one. The runtime has already refused
//! anonymous callers (every method is `ACCESS_USER`).

use api::address::{
    Address, AddressService, CreateAddressRequest, DeleteAddressRequest, DeleteAddressResponse,
    GetAddressRequest, GetUserAddressRequest, ListAddressesRequest, ListAddressesResponse,
    SetDefaultAddressRequest, UpdateAddressRequest,
};
use api::timestamp;
use rpc::Context;
use sqlx::{PgPool, Postgres, Transaction};

use crate::domain::{self, AddressId, AddressReplacement, NewAddress, OwnerId};
use crate::error::Error;
use crate::store::{self, AddressRecord};

/// The address service: its database.
pub struct AddressHandlers {
    pool: PgPool,
}

impl AddressHandlers {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// A transaction holding `owner`'s lock: the owner's other writes wait until it ends.
    /// Its statements (waiting for the lock too) are cancelled once the request's deadline
    /// passes; a request without one has the pool's statement timeout.
    async fn begin_for(
        &self,
        ctx: &Context,
        owner: OwnerId,
    ) -> Result<Transaction<'static, Postgres>, Error> {
        let mut tx = match ctx.remaining() {
            Some(remaining) => db::postgres::begin_within(&self.pool, remaining).await?,
            None => self.pool.begin().await?,
        };
        store::lock_owner(&mut tx, owner).await?;
        Ok(tx)
    }
}

/// The caller, whose addresses every request reads and changes.
fn owner(ctx: &Context) -> Result<OwnerId, rpc::Error> {
    let principal = ctx.require_principal()?;
    OwnerId::parse(&principal.user_id).map_err(rpc::Error::permission_denied)
}

impl AddressService for AddressHandlers {
    async fn list_addresses(
        &self,
        ctx: Context,
        _request: ListAddressesRequest,
    ) -> Result<ListAddressesResponse, rpc::Error> {
        let owner = owner(&ctx)?;
        let addresses = store::list(&self.pool, owner).await?;
        Ok(ListAddressesResponse {
            addresses: addresses.into_iter().map(Address::from).collect(),
        })
    }

    async fn create_address(
        &self,
        ctx: Context,
        request: CreateAddressRequest,
    ) -> Result<Address, rpc::Error> {
        let owner = owner(&ctx)?;
        let new = NewAddress::parse(&request)?;
        let mut tx = self.begin_for(&ctx, owner).await?;
        let existing = store::count(&mut tx, owner).await?;
        let is_default = domain::becomes_default(existing, new.make_default)
            .map_err(|domain::AddressLimitReached| Error::AddressLimitReached)?;
        if is_default {
            store::clear_default(&mut tx, owner).await?;
        }
        let id = AddressId::generate();
        let record = store::insert(&mut tx, owner, id, &new.fields, is_default).await?;
        store::commit(tx).await?;
        Ok(record.into())
    }

    async fn get_address(
        &self,
        ctx: Context,
        request: GetAddressRequest,
    ) -> Result<Address, rpc::Error> {
        let owner = owner(&ctx)?;
        let id = AddressId::parse_field("id", &request.id)?;
        let record = store::get(&self.pool, owner, id)
            .await?
            .ok_or(Error::AddressNotFound(id))?;
        Ok(record.into())
    }

    async fn get_user_address(
        &self,
        _ctx: Context,
        request: GetUserAddressRequest,
    ) -> Result<Address, rpc::Error> {
        // Internal: the caller (the checkout) names the user; the runtime has refused anyone
        // but the services that declare they call this.
        let owner = OwnerId::parse(&request.user_id)
            .map_err(|e| rpc::Error::invalid_field("user_id", e.to_string()))?;
        let id = AddressId::parse_field("id", &request.id)?;
        let record = store::get(&self.pool, owner, id)
            .await?
            .ok_or(Error::AddressNotFound(id))?;
        Ok(record.into())
    }

    async fn update_address(
        &self,
        ctx: Context,
        request: UpdateAddressRequest,
    ) -> Result<Address, rpc::Error> {
        let owner = owner(&ctx)?;
        let replacement = AddressReplacement::parse(&request)?;
        // One statement that leaves `is_default` alone: it needs neither the lock nor a
        // transaction of its own.
        let record = store::replace(&self.pool, owner, &replacement)
            .await?
            .ok_or(Error::AddressNotFound(replacement.id))?;
        Ok(record.into())
    }

    async fn delete_address(
        &self,
        ctx: Context,
        request: DeleteAddressRequest,
    ) -> Result<DeleteAddressResponse, rpc::Error> {
        let owner = owner(&ctx)?;
        let id = AddressId::parse_field("id", &request.id)?;
        let mut tx = self.begin_for(&ctx, owner).await?;
        let was_default = store::delete(&mut tx, owner, id)
            .await?
            .ok_or(Error::AddressNotFound(id))?;
        if was_default {
            store::promote_newest(&mut tx, owner).await?;
        }
        store::commit(tx).await?;
        Ok(DeleteAddressResponse {})
    }

    async fn set_default_address(
        &self,
        ctx: Context,
        request: SetDefaultAddressRequest,
    ) -> Result<Address, rpc::Error> {
        let owner = owner(&ctx)?;
        let id = AddressId::parse_field("id", &request.id)?;
        let mut tx = self.begin_for(&ctx, owner).await?;
        let current = store::get(&mut *tx, owner, id)
            .await?
            .ok_or(Error::AddressNotFound(id))?;
        if current.is_default {
            return Ok(current.into());
        }
        // Clear first: the unique index allows one default at any moment, even inside a
        // transaction; the commit checks that the user is not left without one.
        store::clear_default(&mut tx, owner).await?;
        let record = store::set_default(&mut tx, owner, id)
            .await?
            .ok_or(Error::AddressNotFound(id))?;
        store::commit(tx).await?;
        Ok(record.into())
    }
}

impl From<AddressRecord> for Address {
    fn from(record: AddressRecord) -> Self {
        Address {
            id: record.id.to_string(),
            user_id: record.user_id.to_string(),
            recipient_name: record.recipient_name,
            phone: record.phone,
            line1: record.line1,
            line2: record.line2,
            city: record.city,
            region: record.region,
            postal_code: record.postal_code,
            country_code: record.country_code,
            is_default: record.is_default,
            created_at: timestamp(record.created_at),
            updated_at: timestamp(record.updated_at),
        }
    }
}
