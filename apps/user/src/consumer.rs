//! The `user.registered` consumer: every new account gets its profile.
//!
//! The effect is idempotent by construction: [`ProfileStore::create_if_absent`] leaves an
//! existing profile as it is, so a redelivered event (a lost ack, a redrive) makes no second
//! profile and undoes no change the user made since. That is why no inbox record is needed.
//!
//! Every message is decided: an event that can never make a profile (no valid user id, no
//! email) is terminated with the reason and lands in the dead letters; a store failure naks
//! with the consumer's backoff delay; success acks.

use api::auth::UserRegistered;
use events::{AckGuard, ConsumerConfig, Delivery};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::domain::NewProfile;
use crate::store::ProfileStore;

/// Creates the durable consumer and starts handling `user.registered` until `cancel` fires.
/// The consumer exists when this returns.
pub async fn spawn<S: ProfileStore>(
    jetstream: async_nats::jetstream::Context,
    config: ConsumerConfig,
    store: S,
    cancel: CancellationToken,
) -> anyhow::Result<JoinHandle<()>> {
    events::Consumer::<UserRegistered>::spawn(
        jetstream,
        config,
        cancel,
        move |delivery: Delivery<UserRegistered>, guard: AckGuard| {
            let store = store.clone();
            async move { handle(&store, delivery, guard).await }
        },
    )
    .await
}

/// Makes the profile of one `user.registered` event and decides the message.
pub async fn handle<S: ProfileStore>(
    store: &S,
    delivery: Delivery<UserRegistered>,
    guard: AckGuard,
) {
    let new = match NewProfile::from_event(&delivery.payload) {
        Ok(new) => new,
        Err(reason) => {
            tracing::warn!(event_id = %delivery.event_id, %reason, "a user.registered event that cannot make a profile");
            if let Err(error) = guard.term(&reason).await {
                tracing::warn!(%error, "terminating a malformed event");
            }
            return;
        }
    };
    match store.create_if_absent(&new).await {
        Ok(created) => {
            tracing::debug!(user_id = %new.user_id, created, "user.registered handled");
            if let Err(error) = guard.ack().await {
                // It comes back and finds the profile there.
                tracing::warn!(%error, user_id = %new.user_id, "acknowledging user.registered");
            }
        }
        Err(error) => {
            tracing::warn!(%error, user_id = %new.user_id, "creating a profile; retrying later");
            if let Err(error) = guard.nak(None).await {
                tracing::warn!(%error, "nak of user.registered");
            }
        }
    }
}
