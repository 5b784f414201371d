//! The `user.registered` consumer: every new account gets its profile.
//!
//! The effect is idempotent by construction: [`ProfileStore::create_if_absent`] leaves an
//! existing profile as it is, so a redelivered event (a lost ack, a redrive) makes no second
//! profile and undoes no change the user made since. That is why no inbox record is needed.
//!
//! An event that can never make a profile (no valid user id, no email) is given up, and lands
//! in the dead letters with the reason; a store failure is retried with the consumer's
//! backoff. The events runtime acts on the outcome and logs it.

use api::auth::UserRegistered;
use events::{Consumer, ConsumerConfig, Delivery, Outcome};

use crate::domain::NewProfile;
use crate::store::ProfileStore;

/// The `user.registered` consumer on `store`, for the host to start.
pub fn registered<S: ProfileStore>(store: S) -> Consumer {
    Consumer::new(
        ConsumerConfig::new(api::user::SERVICE_NAME),
        move |delivery: Delivery<UserRegistered>| {
            let store = store.clone();
            async move { handle(&store, &delivery).await }
        },
    )
}

/// Makes the profile of one `user.registered` event.
pub async fn handle<S: ProfileStore>(store: &S, delivery: &Delivery<UserRegistered>) -> Outcome {
    let new = match NewProfile::from_event(&delivery.payload) {
        Ok(new) => new,
        Err(reason) => return Outcome::give_up(reason),
    };
    match store.create_if_absent(&new).await {
        Ok(created) => {
            tracing::debug!(user_id = %new.user_id, created, "user.registered handled");
            Outcome::Done
        }
        Err(error) => Outcome::retry(format!(
            "creating the profile of {}: {error:#}",
            new.user_id
        )),
    }
}
