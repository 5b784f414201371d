//! The RPC handlers of the user contract.
//!
//! Each handler reads the same way: parse the request into domain types (which names every
//! bad field), run the store, turn records into contract messages. Access levels (user, admin)
//! were already enforced by the runtime from the contract. The "my profile" methods take the
//! user id from the authenticated principal only: no request field can name another user.

use std::collections::HashMap;

use api::timestamp;
use api::user::{
    BatchGetUsersRequest, BatchGetUsersResponse, GetMyProfileRequest, ListUsersRequest,
    ListUsersResponse, NotificationChannels, Preferences, Profile, SearchUsersRequest,
    SearchUsersResponse, UpdateMyProfileRequest, UserService,
};
use chrono::Utc;
use rpc::{Context, FieldViolation};
use vocab::page::encode_token;

use crate::domain::{BatchIds, Page, ProfileChanges, Search, UserId};
use crate::store::{ProfileRecord, ProfileStore, StoreError};

/// The user service over a profile store (PostgreSQL or MongoDB; it does not know which).
pub struct UserHandlers<S> {
    store: S,
}

impl<S: ProfileStore> UserHandlers<S> {
    pub fn new(store: S) -> Self {
        Self { store }
    }
}

/// The caller's user id. An id that is not a UUID cannot have a profile.
fn caller(ctx: &Context) -> Result<UserId, rpc::Error> {
    let principal = ctx.require_principal()?;
    UserId::parse(&principal.user_id).map_err(|_| no_profile_yet())
}

fn no_profile_yet() -> rpc::Error {
    rpc::Error::not_found(
        "this account has no profile yet: it is created shortly after registration, try again in a moment",
    )
}

impl From<StoreError> for rpc::Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::UsernameTaken => rpc::Error::conflict("this username is already taken")
                .with_details(vec![FieldViolation {
                    field: "username".to_owned(),
                    problem: "is already taken".to_owned(),
                }]),
            // The cause goes to the logs through the runtime; the caller sees "internal error".
            other => rpc::Error::internal(other),
        }
    }
}

impl<S: ProfileStore> UserService for UserHandlers<S> {
    async fn get_my_profile(
        &self,
        ctx: Context,
        _request: GetMyProfileRequest,
    ) -> Result<Profile, rpc::Error> {
        let user_id = caller(&ctx)?;
        let record = self.store.get(user_id).await?.ok_or_else(no_profile_yet)?;
        Ok(record.into())
    }

    async fn update_my_profile(
        &self,
        ctx: Context,
        request: UpdateMyProfileRequest,
    ) -> Result<Profile, rpc::Error> {
        let user_id = caller(&ctx)?;
        let changes = ProfileChanges::parse(&request, Utc::now().date_naive())?;
        let record = if changes.is_empty() {
            self.store.get(user_id).await?
        } else {
            self.store.update(user_id, &changes).await?
        };
        Ok(record.ok_or_else(no_profile_yet)?.into())
    }

    async fn list_users(
        &self,
        _ctx: Context,
        request: ListUsersRequest,
    ) -> Result<ListUsersResponse, rpc::Error> {
        let page = Page::parse(&request)?;
        let size = page.size.get();
        // One more than the page holds says whether there is a next page.
        let mut records = self.store.list(page, size + 1).await?;
        let next_cursor = if records.len() > size {
            records.truncate(size);
            records
                .last()
                .map(|r| encode_token(&r.user_id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListUsersResponse {
            users: records.into_iter().map(Profile::from).collect(),
            next_cursor,
        })
    }

    async fn search_users(
        &self,
        _ctx: Context,
        request: SearchUsersRequest,
    ) -> Result<SearchUsersResponse, rpc::Error> {
        let search = Search::parse(&request)?;
        let records = self.store.search(&search).await?;
        Ok(SearchUsersResponse {
            users: records.into_iter().map(Profile::from).collect(),
        })
    }

    async fn batch_get_users(
        &self,
        _ctx: Context,
        request: BatchGetUsersRequest,
    ) -> Result<BatchGetUsersResponse, rpc::Error> {
        let ids = BatchIds::parse(&request)?;
        let mut found: HashMap<UserId, ProfileRecord> = self
            .store
            .batch_get(ids.ids())
            .await?
            .into_iter()
            .map(|record| (record.user_id, record))
            .collect();
        let mut users = Vec::with_capacity(found.len());
        let mut missing = Vec::new();
        for id in ids.ids() {
            match found.remove(id) {
                Some(record) => users.push(record.into()),
                None => missing.push(id.to_string()),
            }
        }
        Ok(BatchGetUsersResponse { users, missing })
    }
}

// ---------------------------------------------------------------------------------------------
// Records to contract messages
// ---------------------------------------------------------------------------------------------

impl From<ProfileRecord> for Profile {
    fn from(record: ProfileRecord) -> Self {
        let profile = record.profile;
        let preferences = profile.preferences;
        Profile {
            user_id: record.user_id.to_string(),
            email: profile.email,
            username: profile.username,
            status: profile.status.as_str().to_owned(),
            first_name: profile.first_name,
            last_name: profile.last_name,
            phone: profile.phone,
            avatar_url: profile.avatar_url,
            date_of_birth: profile.date_of_birth,
            gender: profile.gender,
            preferences: Some(Preferences {
                language: preferences.language,
                currency: preferences.currency,
                notifications: Some(NotificationChannels {
                    email: preferences.notifications.email,
                    sms: preferences.notifications.sms,
                    push: preferences.notifications.push,
                }),
            }),
            created_at: timestamp(record.created_at),
            updated_at: timestamp(record.updated_at),
        }
    }
}
