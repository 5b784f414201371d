//! The RPC handlers of the auth contract: parse the request into domain types (which
//! names every bad field), run the store, turn records into contract messages. Access levels
//! were already enforced by the runtime from the contract.
//!
//! Written once by `cargo xtask new-service auth`; from now on it belongs to the service.

use api::auth::{
    Auth, AuthService, CreateAuthRequest, DeleteAuthRequest, DeleteAuthResponse, GetAuthRequest,
    ListAuthsRequest, ListAuthsResponse, UpdateAuthRequest,
};
use chrono::{DateTime, Utc};
use rpc::Context;

use crate::domain::{AuthChanges, AuthId, NewAuth, Page};
use crate::store::{AuthRecord, AuthStore, StoreError};

/// The auth service: its store.
pub struct AuthHandlers {
    store: AuthStore,
}

impl AuthHandlers {
    pub fn new(store: AuthStore) -> Self {
        Self { store }
    }
}

impl AuthService for AuthHandlers {
    async fn list_auths(
        &self,
        _ctx: Context,
        request: ListAuthsRequest,
    ) -> Result<ListAuthsResponse, rpc::Error> {
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
        Ok(ListAuthsResponse {
            auths: records.into_iter().map(message).collect(),
            next_cursor,
        })
    }

    async fn get_auth(&self, _ctx: Context, request: GetAuthRequest) -> Result<Auth, rpc::Error> {
        let id = AuthId::parse("id", &request.id)?;
        match self.store.get(id).await.map_err(internal)? {
            Some(record) => Ok(message(record)),
            None => Err(not_found(id)),
        }
    }

    async fn create_auth(
        &self,
        _ctx: Context,
        request: CreateAuthRequest,
    ) -> Result<Auth, rpc::Error> {
        let new = NewAuth::parse(&request)?;
        let record = self
            .store
            .insert(AuthId::new(), &new)
            .await
            .map_err(internal)?;
        Ok(message(record))
    }

    async fn update_auth(
        &self,
        _ctx: Context,
        request: UpdateAuthRequest,
    ) -> Result<Auth, rpc::Error> {
        let changes = AuthChanges::parse(&request)?;
        match self.store.update(&changes).await.map_err(internal)? {
            Some(record) => Ok(message(record)),
            None => Err(not_found(changes.id)),
        }
    }

    async fn delete_auth(
        &self,
        _ctx: Context,
        request: DeleteAuthRequest,
    ) -> Result<DeleteAuthResponse, rpc::Error> {
        let id = AuthId::parse("id", &request.id)?;
        if self.store.delete(id).await.map_err(internal)? {
            Ok(DeleteAuthResponse {})
        } else {
            Err(not_found(id))
        }
    }
}

fn not_found(id: AuthId) -> rpc::Error {
    rpc::Error::not_found(format!("auth {id} not found"))
}

/// The cause goes to the logs through the runtime; the caller sees "internal error".
fn internal(error: StoreError) -> rpc::Error {
    rpc::Error::internal(error)
}

fn message(record: AuthRecord) -> Auth {
    Auth {
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
