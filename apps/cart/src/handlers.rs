//! The RPC handlers of the cart contract: parse the request into domain types (which
//! names every bad field), run the store, turn records into contract messages. Access levels
//! were already enforced by the runtime from the contract.
//!
//! Written once by `cargo xtask new-service cart`; from now on it belongs to the service.

use api::cart::{
    Cart, CartService, CreateCartRequest, DeleteCartRequest, DeleteCartResponse, GetCartRequest,
    ListCartsRequest, ListCartsResponse, UpdateCartRequest,
};
use api::timestamp;
use rpc::Context;

use crate::domain::{CartChanges, CartId, NewCart, Page};
use crate::store::{CartRecord, CartStore, StoreError};

/// The cart service: its store.
pub struct CartHandlers {
    store: CartStore,
}

impl CartHandlers {
    pub fn new(store: CartStore) -> Self {
        Self { store }
    }
}

impl CartService for CartHandlers {
    async fn list_carts(
        &self,
        _ctx: Context,
        request: ListCartsRequest,
    ) -> Result<ListCartsResponse, rpc::Error> {
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
                .map(|r| Page::cursor_after(CartId(r.id)))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListCartsResponse {
            carts: records.into_iter().map(message).collect(),
            next_cursor,
        })
    }

    async fn get_cart(&self, _ctx: Context, request: GetCartRequest) -> Result<Cart, rpc::Error> {
        let id = CartId::parse("id", &request.id)?;
        match self.store.get(id).await.map_err(internal)? {
            Some(record) => Ok(message(record)),
            None => Err(not_found(id)),
        }
    }

    async fn create_cart(
        &self,
        _ctx: Context,
        request: CreateCartRequest,
    ) -> Result<Cart, rpc::Error> {
        let new = NewCart::parse(&request)?;
        let record = self
            .store
            .insert(CartId::new(), &new)
            .await
            .map_err(internal)?;
        Ok(message(record))
    }

    async fn update_cart(
        &self,
        _ctx: Context,
        request: UpdateCartRequest,
    ) -> Result<Cart, rpc::Error> {
        let changes = CartChanges::parse(&request)?;
        match self.store.update(&changes).await.map_err(internal)? {
            Some(record) => Ok(message(record)),
            None => Err(not_found(changes.id)),
        }
    }

    async fn delete_cart(
        &self,
        _ctx: Context,
        request: DeleteCartRequest,
    ) -> Result<DeleteCartResponse, rpc::Error> {
        let id = CartId::parse("id", &request.id)?;
        if self.store.delete(id).await.map_err(internal)? {
            Ok(DeleteCartResponse {})
        } else {
            Err(not_found(id))
        }
    }
}

fn not_found(id: CartId) -> rpc::Error {
    rpc::Error::not_found(format!("cart {id} not found"))
}

/// The cause goes to the logs through the runtime; the caller sees "internal error".
fn internal(error: StoreError) -> rpc::Error {
    rpc::Error::internal(error)
}

fn message(record: CartRecord) -> Cart {
    Cart {
        id: record.id.to_string(),
        name: record.name,
        description: record.description,
        created_at: timestamp(record.created_at),
        updated_at: timestamp(record.updated_at),
    }
}
