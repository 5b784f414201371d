//! The RPC handlers of the settings contract: parse the request into domain types (which
//! names every bad field), run the store, turn records into contract messages. Access levels
//! were already enforced by the runtime from the contract.
//!
//! Written once by `cargo xtask new-service settings`; from now on it belongs to the service.

use api::settings::{
    CreateSettingsRequest, DeleteSettingsRequest, DeleteSettingsResponse, GetSettingsRequest,
    ListSettingsesRequest, ListSettingsesResponse, Settings, SettingsService,
    UpdateSettingsRequest,
};
use api::timestamp;
use rpc::Context;

use crate::domain::{NewSettings, Page, SettingsChanges, SettingsId};
use crate::store::{SettingsRecord, SettingsStore, StoreError};

/// The settings service: its store.
pub struct SettingsHandlers {
    store: SettingsStore,
}

impl SettingsHandlers {
    pub fn new(store: SettingsStore) -> Self {
        Self { store }
    }
}

impl SettingsService for SettingsHandlers {
    async fn list_settingses(
        &self,
        _ctx: Context,
        request: ListSettingsesRequest,
    ) -> Result<ListSettingsesResponse, rpc::Error> {
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
                .map(|r| Page::cursor_after(SettingsId(r.id)))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListSettingsesResponse {
            settingses: records.into_iter().map(message).collect(),
            next_cursor,
        })
    }

    async fn get_settings(
        &self,
        _ctx: Context,
        request: GetSettingsRequest,
    ) -> Result<Settings, rpc::Error> {
        let id = SettingsId::parse("id", &request.id)?;
        match self.store.get(id).await.map_err(internal)? {
            Some(record) => Ok(message(record)),
            None => Err(not_found(id)),
        }
    }

    async fn create_settings(
        &self,
        _ctx: Context,
        request: CreateSettingsRequest,
    ) -> Result<Settings, rpc::Error> {
        let new = NewSettings::parse(&request)?;
        let record = self
            .store
            .insert(SettingsId::new(), &new)
            .await
            .map_err(internal)?;
        Ok(message(record))
    }

    async fn update_settings(
        &self,
        _ctx: Context,
        request: UpdateSettingsRequest,
    ) -> Result<Settings, rpc::Error> {
        let changes = SettingsChanges::parse(&request)?;
        match self.store.update(&changes).await.map_err(internal)? {
            Some(record) => Ok(message(record)),
            None => Err(not_found(changes.id)),
        }
    }

    async fn delete_settings(
        &self,
        _ctx: Context,
        request: DeleteSettingsRequest,
    ) -> Result<DeleteSettingsResponse, rpc::Error> {
        let id = SettingsId::parse("id", &request.id)?;
        if self.store.delete(id).await.map_err(internal)? {
            Ok(DeleteSettingsResponse {})
        } else {
            Err(not_found(id))
        }
    }
}

fn not_found(id: SettingsId) -> rpc::Error {
    rpc::Error::not_found(format!("settings {id} not found"))
}

/// The cause goes to the logs through the runtime; the caller sees "internal error".
fn internal(error: StoreError) -> rpc::Error {
    rpc::Error::internal(error)
}

fn message(record: SettingsRecord) -> Settings {
    Settings {
        id: record.id.to_string(),
        name: record.name,
        description: record.description,
        created_at: timestamp(record.created_at),
        updated_at: timestamp(record.updated_at),
    }
}
