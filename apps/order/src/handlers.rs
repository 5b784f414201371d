//! The RPC handlers of the order contract: parse the request into domain types (which
//! names every bad field), run the store, turn records into contract messages. Access levels
//! were already enforced by the runtime from the contract.
//!
//! Written once by `cargo xtask new-service order`; from now on it belongs to the service.

use api::order::{
    CreateOrderRequest, DeleteOrderRequest, DeleteOrderResponse, GetOrderRequest,
    ListOrdersRequest, ListOrdersResponse, Order, OrderService, UpdateOrderRequest,
};
use api::timestamp;
use rpc::Context;

use crate::domain::{NewOrder, OrderChanges, OrderId, Page};
use crate::store::{OrderRecord, OrderStore, StoreError};

/// The order service: its store.
pub struct OrderHandlers {
    store: OrderStore,
}

impl OrderHandlers {
    pub fn new(store: OrderStore) -> Self {
        Self { store }
    }
}

impl OrderService for OrderHandlers {
    async fn list_orders(
        &self,
        _ctx: Context,
        request: ListOrdersRequest,
    ) -> Result<ListOrdersResponse, rpc::Error> {
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
                .map(|r| Page::cursor_after(OrderId(r.id)))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListOrdersResponse {
            orders: records.into_iter().map(message).collect(),
            next_cursor,
        })
    }

    async fn get_order(
        &self,
        _ctx: Context,
        request: GetOrderRequest,
    ) -> Result<Order, rpc::Error> {
        let id = OrderId::parse("id", &request.id)?;
        match self.store.get(id).await.map_err(internal)? {
            Some(record) => Ok(message(record)),
            None => Err(not_found(id)),
        }
    }

    async fn create_order(
        &self,
        _ctx: Context,
        request: CreateOrderRequest,
    ) -> Result<Order, rpc::Error> {
        let new = NewOrder::parse(&request)?;
        let record = self
            .store
            .insert(OrderId::new(), &new)
            .await
            .map_err(internal)?;
        Ok(message(record))
    }

    async fn update_order(
        &self,
        _ctx: Context,
        request: UpdateOrderRequest,
    ) -> Result<Order, rpc::Error> {
        let changes = OrderChanges::parse(&request)?;
        match self.store.update(&changes).await.map_err(internal)? {
            Some(record) => Ok(message(record)),
            None => Err(not_found(changes.id)),
        }
    }

    async fn delete_order(
        &self,
        _ctx: Context,
        request: DeleteOrderRequest,
    ) -> Result<DeleteOrderResponse, rpc::Error> {
        let id = OrderId::parse("id", &request.id)?;
        if self.store.delete(id).await.map_err(internal)? {
            Ok(DeleteOrderResponse {})
        } else {
            Err(not_found(id))
        }
    }
}

fn not_found(id: OrderId) -> rpc::Error {
    rpc::Error::not_found(format!("order {id} not found"))
}

/// The cause goes to the logs through the runtime; the caller sees "internal error".
fn internal(error: StoreError) -> rpc::Error {
    rpc::Error::internal(error)
}

fn message(record: OrderRecord) -> Order {
    Order {
        id: record.id.to_string(),
        name: record.name,
        description: record.description,
        created_at: timestamp(record.created_at),
        updated_at: timestamp(record.updated_at),
    }
}
