//! The RPC handlers of the gift-card contract: parse the request into domain types (which
//! names every bad field), run the store, turn records into contract messages. Access levels
//! were already enforced by the runtime from the contract.
//!
//! Written once by `cargo xtask new-service gift-card`; from now on it belongs to the service.

use api::gift_card::{
    CreateGiftCardRequest, DeleteGiftCardRequest, DeleteGiftCardResponse, GetGiftCardRequest,
    GiftCard, GiftCardService, ListGiftCardsRequest, ListGiftCardsResponse, UpdateGiftCardRequest,
};
use api::timestamp;
use rpc::Context;

use crate::domain::{GiftCardChanges, GiftCardId, NewGiftCard, Page};
use crate::store::{GiftCardRecord, GiftCardStore, StoreError};

/// The gift-card service: its store.
pub struct GiftCardHandlers {
    store: GiftCardStore,
}

impl GiftCardHandlers {
    pub fn new(store: GiftCardStore) -> Self {
        Self { store }
    }
}

impl GiftCardService for GiftCardHandlers {
    async fn list_gift_cards(
        &self,
        _ctx: Context,
        request: ListGiftCardsRequest,
    ) -> Result<ListGiftCardsResponse, rpc::Error> {
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
                .map(|r| Page::cursor_after(GiftCardId(r.id)))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListGiftCardsResponse {
            gift_cards: records.into_iter().map(message).collect(),
            next_cursor,
        })
    }

    async fn get_gift_card(
        &self,
        _ctx: Context,
        request: GetGiftCardRequest,
    ) -> Result<GiftCard, rpc::Error> {
        let id = GiftCardId::parse("id", &request.id)?;
        match self.store.get(id).await.map_err(internal)? {
            Some(record) => Ok(message(record)),
            None => Err(not_found(id)),
        }
    }

    async fn create_gift_card(
        &self,
        _ctx: Context,
        request: CreateGiftCardRequest,
    ) -> Result<GiftCard, rpc::Error> {
        let new = NewGiftCard::parse(&request)?;
        let record = self
            .store
            .insert(GiftCardId::new(), &new)
            .await
            .map_err(internal)?;
        Ok(message(record))
    }

    async fn update_gift_card(
        &self,
        _ctx: Context,
        request: UpdateGiftCardRequest,
    ) -> Result<GiftCard, rpc::Error> {
        let changes = GiftCardChanges::parse(&request)?;
        match self.store.update(&changes).await.map_err(internal)? {
            Some(record) => Ok(message(record)),
            None => Err(not_found(changes.id)),
        }
    }

    async fn delete_gift_card(
        &self,
        _ctx: Context,
        request: DeleteGiftCardRequest,
    ) -> Result<DeleteGiftCardResponse, rpc::Error> {
        let id = GiftCardId::parse("id", &request.id)?;
        if self.store.delete(id).await.map_err(internal)? {
            Ok(DeleteGiftCardResponse {})
        } else {
            Err(not_found(id))
        }
    }
}

fn not_found(id: GiftCardId) -> rpc::Error {
    rpc::Error::not_found(format!("gift card {id} not found"))
}

/// The cause goes to the logs through the runtime; the caller sees "internal error".
fn internal(error: StoreError) -> rpc::Error {
    rpc::Error::internal(error)
}

fn message(record: GiftCardRecord) -> GiftCard {
    GiftCard {
        id: record.id.to_string(),
        name: record.name,
        description: record.description,
        created_at: timestamp(record.created_at),
        updated_at: timestamp(record.updated_at),
    }
}
