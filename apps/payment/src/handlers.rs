//! The RPC handlers of the payment contract.
//!
//! Each handler reads the same way: parse the request into domain types (which names every
//! bad field), then for a money-moving operation take its idempotency key
//! (`idempotency::acquire`: answer a key that has a result, or hold it), decide with the
//! state machine, call the provider with the key, and record the payment's change, the
//! ledger entry, the event and the key's answer in one commit. The runtime has already refused
//! anonymous callers of `CreatePaymentMethod`, non-admins of the admin methods, and (through
//! the NATS permissions made from the contract) every outside caller of the internal ones.

use std::sync::Arc;

use api::payment::{
    AuthorizePaymentRequest, CapturePaymentRequest, CreatePaymentMethodRequest, GetPaymentRequest,
    ListPaymentsRequest, ListPaymentsResponse, Payment, PaymentMethod, PaymentService,
    RefundPaymentRequest, VoidPaymentRequest,
};
use chrono::Utc;
use rpc::Context;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::domain::{
    self, Authorization, Decision, NewPaymentMethod, Operation, PaymentChange, PaymentId,
    PaymentQuery, PaymentStatus,
};
use crate::error::Error;
use crate::idempotency::{self, Acquired, KeyedRequest};
use crate::outbox::{self, Change};
use crate::provider::{
    AuthorizeCall, CaptureCall, PaymentProvider, ProviderError, ProviderResult, RefundCall,
    VoidCall,
};
use crate::store::{self, LedgerRow, NewMethodRow, NewPaymentRow, Outcome};

/// The payment service: its database and its provider.
pub struct PaymentHandlers {
    pool: PgPool,
    provider: Arc<dyn PaymentProvider>,
}

/// How an operation that held its key ended.
enum Finished {
    /// The answer, which the key keeps.
    Answer(Box<Payment>),
    /// The provider was called but gave no success (a processing error, or a decline of a
    /// capture, void or refund): its ledger entry commits, the key keeps no answer and may be
    /// tried again, and the caller gets the error.
    Unanswered(Error),
}

impl PaymentHandlers {
    pub fn new(pool: PgPool, provider: Arc<dyn PaymentProvider>) -> Self {
        Self { pool, provider }
    }

    /// Commits what an operation holding its key did. A refusal before the provider was called
    /// forgets the key; a failure of the database or the outbox rolls back and leaves the key
    /// `in_progress`, so a retry finishes the job (the provider answers it from its memory).
    async fn finish(
        &self,
        mut tx: Transaction<'static, Postgres>,
        key: &str,
        finished: Result<Finished, Error>,
    ) -> Result<Payment, rpc::Error> {
        match finished {
            Ok(Finished::Answer(payment)) => {
                idempotency::complete(&mut tx, key, &payment).await?;
                tx.commit().await.map_err(Error::from)?;
                Ok(*payment)
            }
            Ok(Finished::Unanswered(error)) => {
                tx.commit().await.map_err(Error::from)?;
                Err(error.into())
            }
            Err(error @ (Error::Database(_) | Error::Outbox(_) | Error::Encoding(_))) => {
                drop(tx);
                Err(error.into())
            }
            Err(refusal) => {
                idempotency::forget(&mut tx, key).await?;
                tx.commit().await.map_err(Error::from)?;
                Err(refusal.into())
            }
        }
    }

    /// The authorisation, holding its key, for the payment `payment_id`.
    async fn authorize(
        &self,
        conn: &mut PgConnection,
        ctx: &Context,
        request: &Authorization,
        payment_id: PaymentId,
    ) -> Result<Finished, Error> {
        let method = store::payment_method_of(conn, &request.payment_method_id, request.user_id)
            .await?
            .ok_or_else(|| Error::PaymentMethodNotFound(request.payment_method_id.clone()))?;
        let call = AuthorizeCall {
            idempotency_key: request.idempotency_key.clone(),
            card_token: method.provider_token.clone(),
            amount: request.amount,
        };
        let ledger = |outcome, provider_reference, message| LedgerRow {
            payment_id,
            operation: Operation::Authorize,
            idempotency_key: &request.idempotency_key,
            amount: request.amount,
            outcome,
            provider_reference,
            message,
        };
        let (status, failure_code, failure_message, reference, change) =
            match self.provider.authorize(&call).await {
                Ok(ProviderResult::Succeeded { reference }) => {
                    store::append_ledger(conn, &ledger(Outcome::Succeeded, &reference, "")).await?;
                    (
                        PaymentStatus::Authorized,
                        "",
                        String::new(),
                        reference,
                        Change::Authorized,
                    )
                }
                Ok(ProviderResult::Declined {
                    code,
                    message,
                    reference,
                }) => {
                    store::append_ledger(conn, &ledger(Outcome::Declined, &reference, &message))
                        .await?;
                    (
                        PaymentStatus::Failed,
                        code.as_str(),
                        message,
                        reference,
                        Change::Failed,
                    )
                }
                Err(error) => return unanswered(conn, error, ledger(Outcome::Error, "", "")).await,
            };
        let record = store::insert_payment(
            conn,
            &NewPaymentRow {
                id: payment_id,
                order_id: request.order_id,
                user_id: request.user_id,
                method: &method,
                amount: request.amount,
                status,
                failure_code,
                failure_message: &failure_message,
                provider_reference: &reference,
            },
        )
        .await?;
        let payment = record.message(Vec::new());
        outbox::record_change(conn, ctx.trace(), &payment, change).await?;
        Ok(Finished::Answer(Box::new(payment)))
    }

    /// A capture, void or refund, holding its key.
    async fn change(
        &self,
        conn: &mut PgConnection,
        ctx: &Context,
        request: &PaymentChange,
    ) -> Result<Finished, Error> {
        let id = request.payment_id;
        let record = store::lock_payment(conn, id)
            .await?
            .ok_or(Error::PaymentNotFound(id.0))?;
        let state = record.state()?;
        let decision = match request.operation {
            Operation::Capture => domain::decide_capture(&state, request.amount)?,
            Operation::Void => domain::decide_void(&state)?,
            Operation::Refund => domain::decide_refund(&state, request.amount)?,
            Operation::Authorize => unreachable!("an authorisation is not a change"),
        };
        let Decision::Proceed {
            amount,
            status,
            captured,
            refunded,
        } = decision
        else {
            return Ok(Finished::Answer(Box::new(record.message(Vec::new()))));
        };
        let key = request.idempotency_key.clone();
        let authorization = record.provider_reference.clone();
        let answer = match request.operation {
            Operation::Capture => {
                self.provider
                    .capture(&CaptureCall {
                        idempotency_key: key,
                        authorization,
                        amount,
                    })
                    .await
            }
            Operation::Void => {
                self.provider
                    .void(&VoidCall {
                        idempotency_key: key,
                        authorization,
                        amount,
                    })
                    .await
            }
            _ => {
                self.provider
                    .refund(&RefundCall {
                        idempotency_key: key,
                        authorization,
                        amount,
                    })
                    .await
            }
        };
        let ledger = |outcome, provider_reference, message| LedgerRow {
            payment_id: id,
            operation: request.operation,
            idempotency_key: &request.idempotency_key,
            amount,
            outcome,
            provider_reference,
            message,
        };
        match answer {
            Ok(ProviderResult::Succeeded { reference }) => {
                store::append_ledger(conn, &ledger(Outcome::Succeeded, &reference, "")).await?;
            }
            Ok(ProviderResult::Declined {
                message, reference, ..
            }) => {
                store::append_ledger(conn, &ledger(Outcome::Declined, &reference, &message))
                    .await?;
                return Ok(Finished::Unanswered(Error::IllegalTransition(format!(
                    "the provider declined to {} payment {id}: {message}",
                    request.operation.as_str()
                ))));
            }
            Err(error) => return unanswered(conn, error, ledger(Outcome::Error, "", "")).await,
        }
        let record = store::update_payment(conn, id, status, captured, refunded).await?;
        let payment = record.message(Vec::new());
        let change = match request.operation {
            Operation::Capture => Change::Captured,
            Operation::Void => Change::Voided,
            _ => Change::Refunded(amount),
        };
        outbox::record_change(conn, ctx.trace(), &payment, change).await?;
        Ok(Finished::Answer(Box::new(payment)))
    }

    /// Runs a capture, void or refund on its key.
    async fn keyed_change(
        &self,
        ctx: &Context,
        request: PaymentChange,
    ) -> Result<Payment, rpc::Error> {
        let fingerprint = request.fingerprint();
        let keyed = KeyedRequest {
            key: &request.idempotency_key,
            operation: request.operation,
            fingerprint: &fingerprint,
            payment_id: request.payment_id.0,
        };
        let mut tx = match idempotency::acquire(&self.pool, ctx, &keyed).await? {
            Acquired::Answered(payment) => return Ok(*payment),
            Acquired::Owned { tx, .. } => tx,
        };
        let finished = self.change(&mut tx, ctx, &request).await;
        self.finish(tx, &request.idempotency_key, finished).await
    }
}

/// The provider gave no answer that counts: the ledger records the attempt, and the caller is
/// told (a processing error is `unavailable`: the key may be tried again).
async fn unanswered(
    conn: &mut PgConnection,
    error: ProviderError,
    mut entry: LedgerRow<'_>,
) -> Result<Finished, Error> {
    let message = error.to_string();
    entry.message = &message;
    store::append_ledger(conn, &entry).await?;
    Ok(Finished::Unanswered(error.into()))
}

impl PaymentService for PaymentHandlers {
    async fn create_payment_method(
        &self,
        ctx: Context,
        request: CreatePaymentMethodRequest,
    ) -> Result<PaymentMethod, rpc::Error> {
        let principal = ctx.require_principal()?;
        let user_id = Uuid::try_parse(&principal.user_id).map_err(|_| {
            rpc::Error::permission_denied("payment methods belong to users with a UUID id")
        })?;
        let new = NewPaymentMethod::parse(&request, Utc::now())?;
        let token = self
            .provider
            .register_card(&new.card)
            .await
            .map_err(Error::from)?;
        let id = domain::new_payment_method_id();
        let record = store::insert_payment_method(
            &self.pool,
            &NewMethodRow {
                id: &id,
                user_id,
                brand: new.card.brand(),
                last4: new.card.last4(),
                exp_month: new.exp_month,
                exp_year: new.exp_year,
                provider_token: &token.0,
            },
        )
        .await?;
        Ok(record.into())
    }

    async fn authorize_payment(
        &self,
        ctx: Context,
        request: AuthorizePaymentRequest,
    ) -> Result<Payment, rpc::Error> {
        let request = Authorization::parse(&request)?;
        let fingerprint = request.fingerprint();
        let keyed = KeyedRequest {
            key: &request.idempotency_key,
            operation: Operation::Authorize,
            fingerprint: &fingerprint,
            payment_id: PaymentId::new().0,
        };
        let (mut tx, payment_id) = match idempotency::acquire(&self.pool, &ctx, &keyed).await? {
            Acquired::Answered(payment) => return Ok(*payment),
            Acquired::Owned { tx, payment_id } => (tx, PaymentId(payment_id)),
        };
        let finished = self.authorize(&mut tx, &ctx, &request, payment_id).await;
        self.finish(tx, &request.idempotency_key, finished).await
    }

    async fn capture_payment(
        &self,
        ctx: Context,
        request: CapturePaymentRequest,
    ) -> Result<Payment, rpc::Error> {
        let request = PaymentChange::capture(&request)?;
        self.keyed_change(&ctx, request).await
    }

    async fn void_payment(
        &self,
        ctx: Context,
        request: VoidPaymentRequest,
    ) -> Result<Payment, rpc::Error> {
        let request = PaymentChange::void(&request)?;
        self.keyed_change(&ctx, request).await
    }

    async fn refund_payment(
        &self,
        ctx: Context,
        request: RefundPaymentRequest,
    ) -> Result<Payment, rpc::Error> {
        let request = PaymentChange::refund(&request)?;
        self.keyed_change(&ctx, request).await
    }

    async fn get_payment(
        &self,
        _ctx: Context,
        request: GetPaymentRequest,
    ) -> Result<Payment, rpc::Error> {
        let id = PaymentId::parse("id", &request.id)?;
        let record = store::get_payment(&self.pool, id)
            .await?
            .ok_or(Error::PaymentNotFound(id.0))?;
        let ledger = store::ledger_of(&self.pool, id).await?;
        Ok(record.message(ledger))
    }

    async fn list_payments(
        &self,
        _ctx: Context,
        request: ListPaymentsRequest,
    ) -> Result<ListPaymentsResponse, rpc::Error> {
        let query = PaymentQuery::parse(&request)?;
        // One more than the page holds says whether there is a next page.
        let mut records = store::list_payments(&self.pool, &query, query.size + 1).await?;
        let next_cursor = if records.len() > query.size {
            records.truncate(query.size);
            records
                .last()
                .map(|r| PaymentQuery::cursor_after(PaymentId(r.id)))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListPaymentsResponse {
            payments: records.iter().map(|r| r.message(Vec::new())).collect(),
            next_cursor,
        })
    }
}
