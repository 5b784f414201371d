//! The MongoDB store of reviews: not available in this version; the service refuses to start
//! with `--mongodb-url` rather than run half of it.
use super::*;
use crate::domain::{Action, Draft, Page, QueuePage, Report, Verdict};
use events::TraceHeaders;
use mongodb::Database;
use sqlx::PgPool;
use uuid::Uuid;

pub static EVENTS_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate::Migrator::DEFAULT;

#[derive(Clone, Debug)]
pub struct MongoReviews {
    _pool: PgPool,
}

impl MongoReviews {
    pub async fn open(_database: &Database, _pool: PgPool) -> Result<Self, StoreError> {
        Err(StoreError::Conversion(
            "the MongoDB store of reviews is not available in this version: unset MONGODB_URL"
                .into(),
        ))
    }
}

fn no() -> StoreError {
    StoreError::Conversion("x".into())
}

impl Reviews for MongoReviews {
    async fn put(
        &self,
        _: Uuid,
        _: &Draft,
        _: &Verdict,
        _: &TraceHeaders,
    ) -> Result<Written, StoreError> {
        Err(no())
    }
    async fn delete(
        &self,
        _: Uuid,
        _: Uuid,
        _: &TraceHeaders,
    ) -> Result<Option<ReviewRecord>, StoreError> {
        Err(no())
    }
    async fn get(&self, _: Uuid) -> Result<Option<ReviewRecord>, StoreError> {
        Err(no())
    }
    async fn get_mine(&self, _: Uuid, _: Uuid) -> Result<Option<ReviewRecord>, StoreError> {
        Err(no())
    }
    async fn list(&self, _: &Page, _: usize) -> Result<Vec<ReviewRecord>, StoreError> {
        Err(no())
    }
    async fn summary(&self, _: Uuid) -> Result<SummaryRecord, StoreError> {
        Err(no())
    }
    async fn vote(&self, _: Uuid, _: Uuid) -> Result<Vote, StoreError> {
        Err(no())
    }
    async fn report(&self, _: &Report, _: Uuid) -> Result<Reported, StoreError> {
        Err(no())
    }
    async fn reply(&self, _: Uuid, _: Uuid, _: &str) -> Result<Replied, StoreError> {
        Err(no())
    }
    async fn moderate(
        &self,
        _: Uuid,
        _: Action,
        _: &str,
        _: Option<Uuid>,
        _: &TraceHeaders,
    ) -> Result<Moderated, StoreError> {
        Err(no())
    }
    async fn queue(&self, _: &QueuePage, _: usize) -> Result<Vec<ReviewRecord>, StoreError> {
        Err(no())
    }
    async fn apply_purchase(&self, _: &str, _: Uuid, _: &Purchase) -> Result<bool, StoreError> {
        Err(no())
    }
}
