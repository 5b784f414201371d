//! The RPC handlers of the user contract: parse the request into domain types (which
//! names every bad field), run the store, turn records into contract messages. Access levels
//! were already enforced by the runtime from the contract.
//!
//! Written once by `cargo xtask new-service user`; from now on it belongs to the service.

use api::user::{
    CreateUserRequest, DeleteUserRequest, DeleteUserResponse, GetUserRequest, ListUsersRequest,
    ListUsersResponse, UpdateUserRequest, User, UserService,
};
use chrono::{DateTime, Utc};
use rpc::Context;

use crate::domain::{NewUser, Page, UserChanges, UserId};
use crate::store::{StoreError, UserRecord, UserStore};

/// The user service: its store.
pub struct UserHandlers {
    store: UserStore,
}

impl UserHandlers {
    pub fn new(store: UserStore) -> Self {
        Self { store }
    }
}

impl UserService for UserHandlers {
    async fn list_users(
        &self,
        _ctx: Context,
        request: ListUsersRequest,
    ) -> Result<ListUsersResponse, rpc::Error> {
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
        Ok(ListUsersResponse {
            users: records.into_iter().map(message).collect(),
            next_cursor,
        })
    }

    async fn get_user(&self, _ctx: Context, request: GetUserRequest) -> Result<User, rpc::Error> {
        let id = UserId::parse("id", &request.id)?;
        match self.store.get(id).await.map_err(internal)? {
            Some(record) => Ok(message(record)),
            None => Err(not_found(id)),
        }
    }

    async fn create_user(
        &self,
        _ctx: Context,
        request: CreateUserRequest,
    ) -> Result<User, rpc::Error> {
        let new = NewUser::parse(&request)?;
        let record = self
            .store
            .insert(UserId::new(), &new)
            .await
            .map_err(internal)?;
        Ok(message(record))
    }

    async fn update_user(
        &self,
        _ctx: Context,
        request: UpdateUserRequest,
    ) -> Result<User, rpc::Error> {
        let changes = UserChanges::parse(&request)?;
        match self.store.update(&changes).await.map_err(internal)? {
            Some(record) => Ok(message(record)),
            None => Err(not_found(changes.id)),
        }
    }

    async fn delete_user(
        &self,
        _ctx: Context,
        request: DeleteUserRequest,
    ) -> Result<DeleteUserResponse, rpc::Error> {
        let id = UserId::parse("id", &request.id)?;
        if self.store.delete(id).await.map_err(internal)? {
            Ok(DeleteUserResponse {})
        } else {
            Err(not_found(id))
        }
    }
}

fn not_found(id: UserId) -> rpc::Error {
    rpc::Error::not_found(format!("user {id} not found"))
}

/// The cause goes to the logs through the runtime; the caller sees "internal error".
fn internal(error: StoreError) -> rpc::Error {
    rpc::Error::internal(error)
}

fn message(record: UserRecord) -> User {
    User {
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
