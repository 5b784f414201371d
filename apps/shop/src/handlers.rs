//! The RPC handlers of the shop contract: parse the request into domain types (which
//! names every bad field), run the store, turn records into contract messages. Access levels
//! were already enforced by the runtime from the contract.
//!
//! Written once by `cargo xtask new-service shop`; from now on it belongs to the service.

use api::shop::{
    CreateShopRequest, DeleteShopRequest, DeleteShopResponse, GetShopRequest, ListShopsRequest,
    ListShopsResponse, Shop, ShopService, UpdateShopRequest,
};
use api::timestamp;
use rpc::Context;

use crate::domain::{NewShop, Page, ShopChanges, ShopId};
use crate::store::{ShopRecord, ShopStore, StoreError};

/// The shop service: its store.
pub struct ShopHandlers {
    store: ShopStore,
}

impl ShopHandlers {
    pub fn new(store: ShopStore) -> Self {
        Self { store }
    }
}

impl ShopService for ShopHandlers {
    async fn list_shops(
        &self,
        _ctx: Context,
        request: ListShopsRequest,
    ) -> Result<ListShopsResponse, rpc::Error> {
        let page = Page::parse(&request)?;
        // One more than the page holds says whether there is a next page.
        let mut records = self
            .store
            .list(page, page.size + 1)
            .await
            .map_err(internal)?;
        let next_cursor = if records.len() > page.size {
            records.truncate(page.size);
            records
                .last()
                .map(|r| Page::cursor_after(ShopId(r.id)))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListShopsResponse {
            shops: records.into_iter().map(message).collect(),
            next_cursor,
        })
    }

    async fn get_shop(&self, _ctx: Context, request: GetShopRequest) -> Result<Shop, rpc::Error> {
        let id = ShopId::parse("id", &request.id)?;
        match self.store.get(id).await.map_err(internal)? {
            Some(record) => Ok(message(record)),
            None => Err(not_found(id)),
        }
    }

    async fn create_shop(
        &self,
        _ctx: Context,
        request: CreateShopRequest,
    ) -> Result<Shop, rpc::Error> {
        let new = NewShop::parse(&request)?;
        let record = self
            .store
            .insert(ShopId::new(), &new)
            .await
            .map_err(internal)?;
        Ok(message(record))
    }

    async fn update_shop(
        &self,
        _ctx: Context,
        request: UpdateShopRequest,
    ) -> Result<Shop, rpc::Error> {
        let changes = ShopChanges::parse(&request)?;
        match self.store.update(&changes).await.map_err(internal)? {
            Some(record) => Ok(message(record)),
            None => Err(not_found(changes.id)),
        }
    }

    async fn delete_shop(
        &self,
        _ctx: Context,
        request: DeleteShopRequest,
    ) -> Result<DeleteShopResponse, rpc::Error> {
        let id = ShopId::parse("id", &request.id)?;
        if self.store.delete(id).await.map_err(internal)? {
            Ok(DeleteShopResponse {})
        } else {
            Err(not_found(id))
        }
    }
}

fn not_found(id: ShopId) -> rpc::Error {
    rpc::Error::not_found(format!("shop {id} not found"))
}

/// The cause goes to the logs through the runtime; the caller sees "internal error".
fn internal(error: StoreError) -> rpc::Error {
    rpc::Error::internal(error)
}

fn message(record: ShopRecord) -> Shop {
    Shop {
        id: record.id.to_string(),
        name: record.name,
        description: record.description,
        created_at: timestamp(record.created_at),
        updated_at: timestamp(record.updated_at),
    }
}
