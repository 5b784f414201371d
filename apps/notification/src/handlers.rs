//! The RPC handlers of the notification contract. Every method acts on the caller's own
//! notifications and preferences: the user comes from the principal, never from the request,
//! and another user's notification answers exactly like one that does not exist. The runtime
//! has already refused anonymous callers (every method is `ACCESS_USER`) and checked the
//! contract's field rules.

use api::notification::{
    GetMyNotificationPreferencesRequest, ListMyNotificationsRequest, ListMyNotificationsResponse,
    MarkAllMyNotificationsReadRequest, MarkAllMyNotificationsReadResponse,
    MarkMyNotificationReadRequest, Notification, NotificationPreference, NotificationPreferences,
    NotificationService, UpdateMyNotificationPreferencesRequest,
};
use api::timestamp;
use rpc::Context;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::{self, Kind, NotificationId, Page};
use crate::store::{self, InAppRecord, StoreError};

/// The notification service's requests: its database.
pub struct NotificationHandlers {
    pool: PgPool,
}

impl NotificationHandlers {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn preferences(&self, user_id: Uuid) -> Result<NotificationPreferences, rpc::Error> {
        let mut conn = self.pool.acquire().await.map_err(rpc::Error::internal)?;
        let stored = store::stored_preferences(&mut conn, user_id)
            .await
            .map_err(internal)?;
        let mut preferences = Vec::new();
        for kind in Kind::ALL {
            for &channel in kind.channels() {
                let choice = stored
                    .iter()
                    .find(|(k, c, _)| k == kind.as_str() && c == channel.as_str())
                    .map(|(_, _, enabled)| *enabled);
                preferences.push(NotificationPreference {
                    kind: kind.as_str().into(),
                    channel: channel.as_str().into(),
                    enabled: domain::is_enabled(kind, channel, choice),
                    required: kind.is_transactional(),
                });
            }
        }
        Ok(NotificationPreferences { preferences })
    }
}

/// The caller, whose notifications every request reads and changes.
fn caller(ctx: &Context) -> Result<Uuid, rpc::Error> {
    let principal = ctx.require_principal()?;
    Uuid::try_parse(&principal.user_id)
        .map_err(|_| rpc::Error::permission_denied("the caller has no user id"))
}

impl NotificationService for NotificationHandlers {
    async fn get_my_notification_preferences(
        &self,
        ctx: Context,
        _request: GetMyNotificationPreferencesRequest,
    ) -> Result<NotificationPreferences, rpc::Error> {
        self.preferences(caller(&ctx)?).await
    }

    async fn update_my_notification_preferences(
        &self,
        ctx: Context,
        request: UpdateMyNotificationPreferencesRequest,
    ) -> Result<NotificationPreferences, rpc::Error> {
        let user_id = caller(&ctx)?;
        let preferences = domain::parse_preference_update(&request)?;
        let mut tx = self.pool.begin().await.map_err(rpc::Error::internal)?;
        store::set_preferences(&mut tx, user_id, &preferences)
            .await
            .map_err(internal)?;
        tx.commit().await.map_err(rpc::Error::internal)?;
        self.preferences(user_id).await
    }

    async fn list_my_notifications(
        &self,
        ctx: Context,
        request: ListMyNotificationsRequest,
    ) -> Result<ListMyNotificationsResponse, rpc::Error> {
        let user_id = caller(&ctx)?;
        let page = Page::parse(&request)?;
        // One more than the page holds says whether there is a next page.
        let mut records = store::list_in_app(&self.pool, user_id, page, page.size + 1)
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
        let unread_count = store::unread_count(&self.pool, user_id)
            .await
            .map_err(internal)?;
        Ok(ListMyNotificationsResponse {
            notifications: records.into_iter().map(message).collect(),
            next_cursor,
            unread_count,
        })
    }

    async fn mark_my_notification_read(
        &self,
        ctx: Context,
        request: MarkMyNotificationReadRequest,
    ) -> Result<Notification, rpc::Error> {
        let user_id = caller(&ctx)?;
        let id = NotificationId::parse("id", &request.id)?;
        match store::mark_read(&self.pool, user_id, id)
            .await
            .map_err(internal)?
        {
            Some(record) => Ok(message(record)),
            None => Err(rpc::Error::not_found(format!(
                "notification {id} not found"
            ))),
        }
    }

    async fn mark_all_my_notifications_read(
        &self,
        ctx: Context,
        _request: MarkAllMyNotificationsReadRequest,
    ) -> Result<MarkAllMyNotificationsReadResponse, rpc::Error> {
        let user_id = caller(&ctx)?;
        let marked = store::mark_all_read(&self.pool, user_id)
            .await
            .map_err(internal)?;
        Ok(MarkAllMyNotificationsReadResponse {
            marked: marked as i64,
        })
    }
}

/// The cause goes to the logs through the runtime; the caller sees "internal error".
fn internal(error: StoreError) -> rpc::Error {
    rpc::Error::internal(error)
}

fn message(record: InAppRecord) -> Notification {
    Notification {
        id: record.id.to_string(),
        kind: record.kind,
        title: record.title,
        body: record.body,
        subject_id: record.subject_id,
        read: record.read_at.is_some(),
        read_at: record.read_at.and_then(timestamp),
        created_at: timestamp(record.created_at),
    }
}
