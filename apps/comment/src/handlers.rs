//! The RPC handlers of the comment contract: parse the request into domain types (which
//! names every bad field), run the store, turn records into contract messages. Access levels
//! were already enforced by the runtime from the contract.
//!
//! Written once by `cargo xtask new-service comment`; from now on it belongs to the service.

use api::comment::{
    Comment, CommentService, CreateCommentRequest, DeleteCommentRequest, DeleteCommentResponse,
    GetCommentRequest, ListCommentsRequest, ListCommentsResponse, UpdateCommentRequest,
};
use api::timestamp;
use rpc::Context;

use crate::domain::{CommentChanges, CommentId, NewComment, Page};
use crate::store::{CommentRecord, CommentStore, StoreError};

/// The comment service: its store.
pub struct CommentHandlers {
    store: CommentStore,
}

impl CommentHandlers {
    pub fn new(store: CommentStore) -> Self {
        Self { store }
    }
}

impl CommentService for CommentHandlers {
    async fn list_comments(
        &self,
        _ctx: Context,
        request: ListCommentsRequest,
    ) -> Result<ListCommentsResponse, rpc::Error> {
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
                .map(|r| Page::cursor_after(CommentId(r.id)))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListCommentsResponse {
            comments: records.into_iter().map(message).collect(),
            next_cursor,
        })
    }

    async fn get_comment(
        &self,
        _ctx: Context,
        request: GetCommentRequest,
    ) -> Result<Comment, rpc::Error> {
        let id = CommentId::parse("id", &request.id)?;
        match self.store.get(id).await.map_err(internal)? {
            Some(record) => Ok(message(record)),
            None => Err(not_found(id)),
        }
    }

    async fn create_comment(
        &self,
        _ctx: Context,
        request: CreateCommentRequest,
    ) -> Result<Comment, rpc::Error> {
        let new = NewComment::parse(&request)?;
        let record = self
            .store
            .insert(CommentId::new(), &new)
            .await
            .map_err(internal)?;
        Ok(message(record))
    }

    async fn update_comment(
        &self,
        _ctx: Context,
        request: UpdateCommentRequest,
    ) -> Result<Comment, rpc::Error> {
        let changes = CommentChanges::parse(&request)?;
        match self.store.update(&changes).await.map_err(internal)? {
            Some(record) => Ok(message(record)),
            None => Err(not_found(changes.id)),
        }
    }

    async fn delete_comment(
        &self,
        _ctx: Context,
        request: DeleteCommentRequest,
    ) -> Result<DeleteCommentResponse, rpc::Error> {
        let id = CommentId::parse("id", &request.id)?;
        if self.store.delete(id).await.map_err(internal)? {
            Ok(DeleteCommentResponse {})
        } else {
            Err(not_found(id))
        }
    }
}

fn not_found(id: CommentId) -> rpc::Error {
    rpc::Error::not_found(format!("comment {id} not found"))
}

/// The cause goes to the logs through the runtime; the caller sees "internal error".
fn internal(error: StoreError) -> rpc::Error {
    rpc::Error::internal(error)
}

fn message(record: CommentRecord) -> Comment {
    Comment {
        id: record.id.to_string(),
        name: record.name,
        description: record.description,
        created_at: timestamp(record.created_at),
        updated_at: timestamp(record.updated_at),
    }
}
