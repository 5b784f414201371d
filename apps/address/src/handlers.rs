//! The RPC handlers of the address contract: parse the request into domain types (which
//! names every bad field), run the store, turn records into contract messages. Access levels
//! were already enforced by the runtime from the contract.
//!
//! Written once by `cargo xtask new-service address`; from now on it belongs to the service.

use api::address::{
    Address, AddressService, CreateAddressRequest, DeleteAddressRequest, DeleteAddressResponse,
    GetAddressRequest, ListAddressesRequest, ListAddressesResponse, UpdateAddressRequest,
};
use chrono::{DateTime, Utc};
use rpc::Context;

use crate::domain::{AddressChanges, AddressId, NewAddress, Page};
use crate::store::{AddressRecord, AddressStore, StoreError};

/// The address service: its store.
pub struct AddressHandlers {
    store: AddressStore,
}

impl AddressHandlers {
    pub fn new(store: AddressStore) -> Self {
        Self { store }
    }
}

impl AddressService for AddressHandlers {
    async fn list_addresses(
        &self,
        _ctx: Context,
        request: ListAddressesRequest,
    ) -> Result<ListAddressesResponse, rpc::Error> {
        let page = Page::parse(&request)?;
        // One more than the page holds says whether there is a next page.
        let mut records = self
            .store
            .list(page, page.size + 1)
            .await
            .map_err(internal)?;
        let next_cursor = if records.len() > page.size {
            records.truncate(page.size);
            records.last().map(|r| r.id.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListAddressesResponse {
            addresses: records.into_iter().map(message).collect(),
            next_cursor,
        })
    }

    async fn get_address(
        &self,
        _ctx: Context,
        request: GetAddressRequest,
    ) -> Result<Address, rpc::Error> {
        let id = AddressId::parse("id", &request.id)?;
        match self.store.get(id).await.map_err(internal)? {
            Some(record) => Ok(message(record)),
            None => Err(not_found(id)),
        }
    }

    async fn create_address(
        &self,
        _ctx: Context,
        request: CreateAddressRequest,
    ) -> Result<Address, rpc::Error> {
        let new = NewAddress::parse(&request)?;
        let record = self
            .store
            .insert(AddressId::new(), &new)
            .await
            .map_err(internal)?;
        Ok(message(record))
    }

    async fn update_address(
        &self,
        _ctx: Context,
        request: UpdateAddressRequest,
    ) -> Result<Address, rpc::Error> {
        let changes = AddressChanges::parse(&request)?;
        match self.store.update(&changes).await.map_err(internal)? {
            Some(record) => Ok(message(record)),
            None => Err(not_found(changes.id)),
        }
    }

    async fn delete_address(
        &self,
        _ctx: Context,
        request: DeleteAddressRequest,
    ) -> Result<DeleteAddressResponse, rpc::Error> {
        let id = AddressId::parse("id", &request.id)?;
        if self.store.delete(id).await.map_err(internal)? {
            Ok(DeleteAddressResponse {})
        } else {
            Err(not_found(id))
        }
    }
}

fn not_found(id: AddressId) -> rpc::Error {
    rpc::Error::not_found(format!("address {id} not found"))
}

/// The cause goes to the logs through the runtime; the caller sees "internal error".
fn internal(error: StoreError) -> rpc::Error {
    rpc::Error::internal(error)
}

fn message(record: AddressRecord) -> Address {
    Address {
        id: record.id.to_string(),
        name: record.name,
        description: record.description,
        created_at: timestamp(record.created_at),
        updated_at: timestamp(record.updated_at),
    }
}

fn timestamp(at: DateTime<Utc>) -> Option<api::Timestamp> {
    Some(api::Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    })
}
