//! The RPC handlers of the voucher contract: parse the request into domain types (which
//! names every bad field), run the store, turn records into contract messages. Access levels
//! were already enforced by the runtime from the contract.
//!
//! Written once by `cargo xtask new-service voucher`; from now on it belongs to the service.

use api::timestamp;
use api::voucher::{
    CreateVoucherRequest, DeleteVoucherRequest, DeleteVoucherResponse, GetVoucherRequest,
    ListVouchersRequest, ListVouchersResponse, UpdateVoucherRequest, Voucher, VoucherService,
};
use rpc::Context;

use crate::domain::{NewVoucher, Page, VoucherChanges, VoucherId};
use crate::store::{StoreError, VoucherRecord, VoucherStore};

/// The voucher service: its store.
pub struct VoucherHandlers {
    store: VoucherStore,
}

impl VoucherHandlers {
    pub fn new(store: VoucherStore) -> Self {
        Self { store }
    }
}

impl VoucherService for VoucherHandlers {
    async fn list_vouchers(
        &self,
        _ctx: Context,
        request: ListVouchersRequest,
    ) -> Result<ListVouchersResponse, rpc::Error> {
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
                .map(|r| Page::cursor_after(VoucherId(r.id)))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListVouchersResponse {
            vouchers: records.into_iter().map(message).collect(),
            next_cursor,
        })
    }

    async fn get_voucher(
        &self,
        _ctx: Context,
        request: GetVoucherRequest,
    ) -> Result<Voucher, rpc::Error> {
        let id = VoucherId::parse("id", &request.id)?;
        match self.store.get(id).await.map_err(internal)? {
            Some(record) => Ok(message(record)),
            None => Err(not_found(id)),
        }
    }

    async fn create_voucher(
        &self,
        _ctx: Context,
        request: CreateVoucherRequest,
    ) -> Result<Voucher, rpc::Error> {
        let new = NewVoucher::parse(&request)?;
        let record = self
            .store
            .insert(VoucherId::new(), &new)
            .await
            .map_err(internal)?;
        Ok(message(record))
    }

    async fn update_voucher(
        &self,
        _ctx: Context,
        request: UpdateVoucherRequest,
    ) -> Result<Voucher, rpc::Error> {
        let changes = VoucherChanges::parse(&request)?;
        match self.store.update(&changes).await.map_err(internal)? {
            Some(record) => Ok(message(record)),
            None => Err(not_found(changes.id)),
        }
    }

    async fn delete_voucher(
        &self,
        _ctx: Context,
        request: DeleteVoucherRequest,
    ) -> Result<DeleteVoucherResponse, rpc::Error> {
        let id = VoucherId::parse("id", &request.id)?;
        if self.store.delete(id).await.map_err(internal)? {
            Ok(DeleteVoucherResponse {})
        } else {
            Err(not_found(id))
        }
    }
}

fn not_found(id: VoucherId) -> rpc::Error {
    rpc::Error::not_found(format!("voucher {id} not found"))
}

/// The cause goes to the logs through the runtime; the caller sees "internal error".
fn internal(error: StoreError) -> rpc::Error {
    rpc::Error::internal(error)
}

fn message(record: VoucherRecord) -> Voucher {
    Voucher {
        id: record.id.to_string(),
        name: record.name,
        description: record.description,
        created_at: timestamp(record.created_at),
        updated_at: timestamp(record.updated_at),
    }
}
