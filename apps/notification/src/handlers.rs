//! The RPC handlers of the notification contract: parse the request into domain types (which
//! names every bad field), run the store, turn records into contract messages. Access levels
//! were already enforced by the runtime from the contract.
//!
//! Written once by `cargo xtask new-service notification`; from now on it belongs to the service.

use api::notification::{
    CreateNotificationRequest, DeleteNotificationRequest, DeleteNotificationResponse,
    GetNotificationRequest, ListNotificationsRequest, ListNotificationsResponse, Notification,
    NotificationService, UpdateNotificationRequest,
};
use api::timestamp;
use rpc::Context;

use crate::domain::{NewNotification, NotificationChanges, NotificationId, Page};
use crate::store::{NotificationRecord, NotificationStore, StoreError};

/// The notification service: its store.
pub struct NotificationHandlers {
    store: NotificationStore,
}

impl NotificationHandlers {
    pub fn new(store: NotificationStore) -> Self {
        Self { store }
    }
}

impl NotificationService for NotificationHandlers {
    async fn list_notifications(
        &self,
        _ctx: Context,
        request: ListNotificationsRequest,
    ) -> Result<ListNotificationsResponse, rpc::Error> {
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
                .map(|r| Page::cursor_after(NotificationId(r.id)))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListNotificationsResponse {
            notifications: records.into_iter().map(message).collect(),
            next_cursor,
        })
    }

    async fn get_notification(
        &self,
        _ctx: Context,
        request: GetNotificationRequest,
    ) -> Result<Notification, rpc::Error> {
        let id = NotificationId::parse("id", &request.id)?;
        match self.store.get(id).await.map_err(internal)? {
            Some(record) => Ok(message(record)),
            None => Err(not_found(id)),
        }
    }

    async fn create_notification(
        &self,
        _ctx: Context,
        request: CreateNotificationRequest,
    ) -> Result<Notification, rpc::Error> {
        let new = NewNotification::parse(&request)?;
        let record = self
            .store
            .insert(NotificationId::new(), &new)
            .await
            .map_err(internal)?;
        Ok(message(record))
    }

    async fn update_notification(
        &self,
        _ctx: Context,
        request: UpdateNotificationRequest,
    ) -> Result<Notification, rpc::Error> {
        let changes = NotificationChanges::parse(&request)?;
        match self.store.update(&changes).await.map_err(internal)? {
            Some(record) => Ok(message(record)),
            None => Err(not_found(changes.id)),
        }
    }

    async fn delete_notification(
        &self,
        _ctx: Context,
        request: DeleteNotificationRequest,
    ) -> Result<DeleteNotificationResponse, rpc::Error> {
        let id = NotificationId::parse("id", &request.id)?;
        if self.store.delete(id).await.map_err(internal)? {
            Ok(DeleteNotificationResponse {})
        } else {
            Err(not_found(id))
        }
    }
}

fn not_found(id: NotificationId) -> rpc::Error {
    rpc::Error::not_found(format!("notification {id} not found"))
}

/// The cause goes to the logs through the runtime; the caller sees "internal error".
fn internal(error: StoreError) -> rpc::Error {
    rpc::Error::internal(error)
}

fn message(record: NotificationRecord) -> Notification {
    Notification {
        id: record.id.to_string(),
        name: record.name,
        description: record.description,
        created_at: timestamp(record.created_at),
        updated_at: timestamp(record.updated_at),
    }
}
