//! The RPC handlers of the payment contract: parse the request into domain types (which
//! names every bad field), run the store, turn records into contract messages. Access levels
//! were already enforced by the runtime from the contract.
//!
//! Written once by `cargo xtask new-service payment`; from now on it belongs to the service.

use api::payment::{
    CreatePaymentRequest, DeletePaymentRequest, DeletePaymentResponse, GetPaymentRequest,
    ListPaymentsRequest, ListPaymentsResponse, Payment, PaymentService, UpdatePaymentRequest,
};
use api::timestamp;
use rpc::Context;

use crate::domain::{NewPayment, Page, PaymentChanges, PaymentId};
use crate::store::{PaymentRecord, PaymentStore, StoreError};

/// The payment service: its store.
pub struct PaymentHandlers {
    store: PaymentStore,
}

impl PaymentHandlers {
    pub fn new(store: PaymentStore) -> Self {
        Self { store }
    }
}

impl PaymentService for PaymentHandlers {
    async fn list_payments(
        &self,
        _ctx: Context,
        request: ListPaymentsRequest,
    ) -> Result<ListPaymentsResponse, rpc::Error> {
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
                .map(|r| Page::cursor_after(PaymentId(r.id)))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListPaymentsResponse {
            payments: records.into_iter().map(message).collect(),
            next_cursor,
        })
    }

    async fn get_payment(
        &self,
        _ctx: Context,
        request: GetPaymentRequest,
    ) -> Result<Payment, rpc::Error> {
        let id = PaymentId::parse("id", &request.id)?;
        match self.store.get(id).await.map_err(internal)? {
            Some(record) => Ok(message(record)),
            None => Err(not_found(id)),
        }
    }

    async fn create_payment(
        &self,
        _ctx: Context,
        request: CreatePaymentRequest,
    ) -> Result<Payment, rpc::Error> {
        let new = NewPayment::parse(&request)?;
        let record = self
            .store
            .insert(PaymentId::new(), &new)
            .await
            .map_err(internal)?;
        Ok(message(record))
    }

    async fn update_payment(
        &self,
        _ctx: Context,
        request: UpdatePaymentRequest,
    ) -> Result<Payment, rpc::Error> {
        let changes = PaymentChanges::parse(&request)?;
        match self.store.update(&changes).await.map_err(internal)? {
            Some(record) => Ok(message(record)),
            None => Err(not_found(changes.id)),
        }
    }

    async fn delete_payment(
        &self,
        _ctx: Context,
        request: DeletePaymentRequest,
    ) -> Result<DeletePaymentResponse, rpc::Error> {
        let id = PaymentId::parse("id", &request.id)?;
        if self.store.delete(id).await.map_err(internal)? {
            Ok(DeletePaymentResponse {})
        } else {
            Err(not_found(id))
        }
    }
}

fn not_found(id: PaymentId) -> rpc::Error {
    rpc::Error::not_found(format!("payment {id} not found"))
}

/// The cause goes to the logs through the runtime; the caller sees "internal error".
fn internal(error: StoreError) -> rpc::Error {
    rpc::Error::internal(error)
}

fn message(record: PaymentRecord) -> Payment {
    Payment {
        id: record.id.to_string(),
        name: record.name,
        description: record.description,
        created_at: timestamp(record.created_at),
        updated_at: timestamp(record.updated_at),
    }
}
