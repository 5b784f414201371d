//! The RPC handlers of the settings contract: parse the request into domain types (which
//! names every bad field), run the store, copy the change into the bucket, turn records into
//! contract messages. Only admins reach them (the runtime enforces the contract's access).

use api::settings::{
    ChangeSettingRequest, GetSettingRequest, ListSettingsRequest, ListSettingsResponse,
    RollbackSettingRequest, Setting, SettingChange, SettingDetail, SettingEntry, SettingKey,
    SettingsService,
};
use api::timestamp;
use rpc::Context;
use settings::Scope;
use settings::catalogue::{self, Key, KeyKind};

use crate::domain::{self, Target};
use crate::publish::Publisher;
use crate::store::{Change, ChangeError, HistoryRecord, SettingRecord, SettingsStore, StoreError};

/// The settings service: its store, the bucket it copies changes into, and whether fault
/// flags may be set (dev and test stacks only).
pub struct SettingsHandlers {
    store: SettingsStore,
    publisher: Publisher,
    allow_fault_flags: bool,
}

impl SettingsHandlers {
    pub fn new(store: SettingsStore, publisher: Publisher, allow_fault_flags: bool) -> Self {
        Self {
            store,
            publisher,
            allow_fault_flags,
        }
    }

    /// Commits a change, then copies it into the bucket. A failed copy is not the caller's
    /// failure: the change is committed, and the relay copies it within a second or two.
    async fn commit(
        &self,
        ctx: &Context,
        target: Target,
        change: Change<'_>,
    ) -> Result<Setting, rpc::Error> {
        if target.is_fault_flag() && !self.allow_fault_flags {
            return Err(rpc::Error::failed_precondition(format!(
                "{} is a fault flag: fault flags can be set only on a dev or test stack, whose \
                 settings service runs with --allow-fault-flags",
                target.key.name
            )));
        }
        let record = match self.store.change(&change).await {
            Ok(record) => record,
            Err(ChangeError::Conflict { expected, current }) => {
                return Err(rpc::Error::conflict(format!(
                    "{} in {} is at version {current}, not {expected}: read it again and \
                     decide on the current value",
                    target.key.name, change.scope
                )));
            }
            Err(ChangeError::Store(error)) => return Err(internal(error)),
        };
        tracing::info!(
            key = target.key.name,
            scope = change.scope,
            version = record.version,
            by = change.changed_by,
            request_id = ctx.request_id(),
            "setting changed"
        );
        if let Err(error) = self.publisher.publish(change.scope, change.key).await {
            tracing::warn!(error = %error, key = target.key.name, "copying a change into the bucket failed; the relay will");
        }
        Ok(setting(target.key, change.scope, Some(record), None))
    }
}

impl SettingsService for SettingsHandlers {
    async fn list_settings(
        &self,
        _ctx: Context,
        request: ListSettingsRequest,
    ) -> Result<ListSettingsResponse, rpc::Error> {
        let scope = domain::parse_scope(&request.scope)?;
        let scope_text = scope.to_string();
        let mut records = self.store.list(&scope_text).await.map_err(internal)?;
        let platform = match scope {
            Scope::Platform => Vec::new(),
            Scope::Shop(_) => self
                .store
                .list(&Scope::Platform.to_string())
                .await
                .map_err(internal)?,
        };
        let settings = catalogue::KEYS
            .iter()
            .filter(|key| key.allows_scope(scope.kind()))
            .map(|key| {
                let record = records
                    .iter()
                    .position(|r| r.key == key.name)
                    .map(|at| records.swap_remove(at));
                let inherited = platform.iter().find(|r| r.key == key.name);
                SettingEntry {
                    key: Some(key_message(key)),
                    current: Some(setting(key, &scope_text, record, inherited)),
                }
            })
            .collect();
        Ok(ListSettingsResponse { settings })
    }

    async fn get_setting(
        &self,
        _ctx: Context,
        request: GetSettingRequest,
    ) -> Result<SettingDetail, rpc::Error> {
        let target = Target::parse(&request.key, &request.scope)?;
        let scope = target.scope_text();
        let record = self
            .store
            .get(&scope, target.key.name)
            .await
            .map_err(internal)?;
        let inherited = match (&record, target.scope) {
            (None, Scope::Shop(_)) => self
                .store
                .get(&Scope::Platform.to_string(), target.key.name)
                .await
                .map_err(internal)?,
            _ => None,
        };
        let history = self
            .store
            .history(
                &scope,
                target.key.name,
                domain::history_size(request.history_size),
            )
            .await
            .map_err(internal)?;
        Ok(SettingDetail {
            key: Some(key_message(target.key)),
            current: Some(setting(target.key, &scope, record, inherited.as_ref())),
            history: history.into_iter().map(change_message).collect(),
        })
    }

    async fn change_setting(
        &self,
        ctx: Context,
        request: ChangeSettingRequest,
    ) -> Result<Setting, rpc::Error> {
        let principal = ctx.require_principal()?.clone();
        let target = Target::parse(&request.key, &request.scope)?;
        let value = domain::parse_value(target.key, &request.value_json)?;
        let reason = domain::reason(&request.reason)?;
        let scope = target.scope_text();
        let change = Change {
            scope: &scope,
            key: target.key.name,
            value: &value,
            expected_version: request.expected_version,
            changed_by: &principal.user_id,
            reason: &reason,
        };
        self.commit(&ctx, target, change).await
    }

    async fn rollback_setting(
        &self,
        ctx: Context,
        request: RollbackSettingRequest,
    ) -> Result<Setting, rpc::Error> {
        let principal = ctx.require_principal()?.clone();
        let target = Target::parse(&request.key, &request.scope)?;
        let reason = domain::reason(&request.reason)?;
        let scope = target.scope_text();
        let value = self
            .store
            .value_at(&scope, target.key.name, request.to_version)
            .await
            .map_err(internal)?
            .ok_or_else(|| {
                rpc::Error::not_found(format!(
                    "{} in {scope} has no version {}",
                    target.key.name, request.to_version
                ))
            })?;
        // The schema may have changed since: an old value that no longer follows it cannot
        // come back.
        domain::check_value(target.key, &value).map_err(|error| {
            rpc::Error::failed_precondition(format!(
                "version {} no longer follows the schema of {}: {}",
                request.to_version,
                target.key.name,
                error.message()
            ))
        })?;
        let change = Change {
            scope: &scope,
            key: target.key.name,
            value: &value,
            expected_version: request.expected_version,
            changed_by: &principal.user_id,
            reason: &format!("rollback to version {}: {reason}", request.to_version),
        };
        self.commit(&ctx, target, change).await
    }
}

/// The cause goes to the logs through the runtime; the caller sees "internal error".
fn internal(error: StoreError) -> rpc::Error {
    rpc::Error::internal(error)
}

fn key_message(key: &Key) -> SettingKey {
    SettingKey {
        key: key.name.to_owned(),
        description: key.description.to_owned(),
        schema: key.schema.to_owned(),
        default_json: key.default_value().to_string(),
        scopes: key.scopes.iter().map(|s| s.name().to_owned()).collect(),
        feature_flag: key.kind == KeyKind::FeatureFlag,
        fault_flag: key.kind == KeyKind::FaultFlag,
    }
}

/// A key's value in a scope: the record, or (version 0) the value that applies when the
/// scope has none: the platform's (`inherited`) for a shop, else the key's default.
fn setting(
    key: &Key,
    scope: &str,
    record: Option<SettingRecord>,
    inherited: Option<&SettingRecord>,
) -> Setting {
    match record {
        Some(record) => Setting {
            key: record.key,
            scope: record.scope,
            value_json: record.value.to_string(),
            version: record.version,
            updated_by: record.updated_by,
            updated_at: timestamp(record.updated_at),
        },
        None => Setting {
            key: key.name.to_owned(),
            scope: scope.to_owned(),
            value_json: inherited
                .map(|platform| platform.value.to_string())
                .unwrap_or_else(|| key.default_value().to_string()),
            version: 0,
            updated_by: String::new(),
            updated_at: None,
        },
    }
}

fn change_message(record: HistoryRecord) -> SettingChange {
    SettingChange {
        version: record.version,
        old_value_json: record.old_value.map(|v| v.to_string()).unwrap_or_default(),
        new_value_json: record.new_value.to_string(),
        changed_by: record.changed_by,
        changed_at: timestamp(record.changed_at),
        reason: record.reason,
    }
}
