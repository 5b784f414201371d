//! Feature flags and fault flags, evaluated from the watched bucket.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::catalogue::{self, FLAG_PREFIX, FeatureFlag};
use crate::{Scope, Settings};

/// Where a user falls in a flag's rollout: 0 to 9999, from a hash of the flag's name and the
/// user id, so one user stays on the same side of a percentage everywhere and across
/// restarts, and different flags select different users.
pub fn rollout_bucket(flag: &str, user_id: &str) -> u32 {
    let digest = Sha256::new()
        .chain_update(flag.as_bytes())
        .chain_update([0])
        .chain_update(user_id.as_bytes())
        .finalize();
    let first = u64::from_be_bytes(digest[..8].try_into().expect("eight bytes"));
    (first % 10_000) as u32
}

impl FeatureFlag {
    /// Whether the flag is on for `principal` (`None`: an anonymous caller, who gets it only
    /// at 100%). Off when disabled; on for a principal with one of `roles`; otherwise on for
    /// the `rollout_percent` of users whose [`rollout_bucket`] falls below it.
    pub fn is_on_for(&self, flag: &str, principal: Option<&rpc::Principal>) -> bool {
        if !self.enabled {
            return false;
        }
        if self.rollout_percent >= 100 {
            return true;
        }
        let Some(principal) = principal else {
            return false;
        };
        if self.roles.iter().any(|role| principal.has_role(role)) {
            return true;
        }
        rollout_bucket(flag, &principal.user_id) < u32::from(self.rollout_percent) * 100
    }
}

/// The feature flags, as [`Settings::flags`] gives them.
#[derive(Clone, Copy)]
pub struct Flags<'a> {
    pub(crate) settings: &'a Settings,
    pub(crate) scope: Scope,
}

impl Flags<'_> {
    /// Whether flag `name` ("new_checkout") is on for `principal`: a flag not set anywhere,
    /// or not in the catalogue, is off.
    pub fn enabled(&self, name: &str, principal: Option<&rpc::Principal>) -> bool {
        self.flag(name).is_on_for(name, principal)
    }

    /// Flag `name` as set in this scope, or the platform, or its default (off).
    pub fn flag(&self, name: &str) -> FeatureFlag {
        let key = format!("{FLAG_PREFIX}{name}");
        if catalogue::key(&key).is_none() {
            return FeatureFlag::default();
        }
        self.settings.get_in(&key, self.scope)
    }
}

/// The fault flags, as [`Settings::faults`] gives them: all zero unless set (which only a
/// settings service started with `--allow-fault-flags` allows).
#[derive(Clone, Copy)]
pub struct Faults<'a> {
    pub(crate) settings: &'a Settings,
}

impl Faults<'_> {
    fn percent(&self, key: &str) -> u32 {
        self.settings.get::<i64>(key).clamp(0, 100) as u32
    }

    fn latency(&self, key: &str) -> Duration {
        Duration::from_millis(
            self.settings
                .get::<i64>(key)
                .clamp(0, catalogue::MAX_FAULT_LATENCY_MS) as u64,
        )
    }

    /// The percentage of authorisations the simulated payment provider declines.
    pub fn payment_failure_percent(&self) -> u32 {
        self.percent(catalogue::FAULT_PAYMENT_FAILURE_PERCENT)
    }

    /// How long the simulated payment provider takes to answer.
    pub fn payment_latency(&self) -> Duration {
        self.latency(catalogue::FAULT_PAYMENT_LATENCY_MS)
    }

    /// A delay before the product service answers a read.
    pub fn product_latency(&self) -> Duration {
        self.latency(catalogue::FAULT_PRODUCT_LATENCY_MS)
    }

    /// The percentage of cart reads that fail as unavailable.
    pub fn cart_read_failure_percent(&self) -> u32 {
        self.percent(catalogue::FAULT_CART_READ_FAILURE_PERCENT)
    }

    /// The percentage of SMTP deliveries the notification service fails.
    pub fn notification_smtp_failure_percent(&self) -> u32 {
        self.percent(catalogue::FAULT_NOTIFICATION_SMTP_FAILURE_PERCENT)
    }

    /// Draws whether one call fails at `percent`.
    pub fn strikes(percent: u32) -> bool {
        percent > 0 && rand_below(100) < percent
    }
}

fn rand_below(n: u32) -> u32 {
    rand::random::<u32>() % n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, roles: &[&str]) -> rpc::Principal {
        rpc::Principal {
            user_id: id.to_owned(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    #[test]
    fn a_percentage_rollout_is_stable_per_user_and_close_to_its_percentage() {
        let flag = FeatureFlag {
            enabled: true,
            rollout_percent: 25,
            roles: Vec::new(),
        };
        let users: Vec<rpc::Principal> = (0..10_000)
            .map(|n| user(&format!("user-{n}"), &["customer"]))
            .collect();
        let on: Vec<bool> = users
            .iter()
            .map(|u| flag.is_on_for("new_checkout", Some(u)))
            .collect();
        let share = on.iter().filter(|on| **on).count();
        assert!(
            (2_300..=2_700).contains(&share),
            "25% ± 2% of 10,000 users, got {share}"
        );
        // The same users, asked again, get the same answers.
        for (u, was_on) in users.iter().zip(&on) {
            assert_eq!(flag.is_on_for("new_checkout", Some(u)), *was_on);
        }
        // Raising the percentage keeps everyone who had it.
        let wider = FeatureFlag {
            rollout_percent: 50,
            ..flag.clone()
        };
        for (u, was_on) in users.iter().zip(&on) {
            if *was_on {
                assert!(wider.is_on_for("new_checkout", Some(u)));
            }
        }
        // Another flag selects other users.
        let other = users
            .iter()
            .zip(&on)
            .filter(|(u, was_on)| flag.is_on_for("other_flag", Some(u)) != **was_on)
            .count();
        assert!(other > 1_000, "another flag's 25% is another set of users");
    }

    #[test]
    fn roles_are_targeted_whatever_the_percentage() {
        let flag = FeatureFlag {
            enabled: true,
            rollout_percent: 0,
            roles: vec!["seller".into()],
        };
        assert!(flag.is_on_for("new_checkout", Some(&user("u1", &["customer", "seller"]))));
        assert!(!flag.is_on_for("new_checkout", Some(&user("u1", &["customer"]))));
        assert!(!flag.is_on_for("new_checkout", None));
        let off = FeatureFlag {
            enabled: false,
            ..flag.clone()
        };
        assert!(!off.is_on_for("new_checkout", Some(&user("u1", &["seller"]))));
        let everyone = FeatureFlag {
            enabled: true,
            rollout_percent: 100,
            roles: Vec::new(),
        };
        assert!(everyone.is_on_for("new_checkout", None));
    }

    #[test]
    fn fault_draws_follow_their_rate() {
        assert!(!(0..1000).any(|_| Faults::strikes(0)));
        assert!((0..1000).all(|_| Faults::strikes(100)));
        let half = (0..10_000).filter(|_| Faults::strikes(50)).count();
        assert!((4_500..=5_500).contains(&half), "{half}");
    }
}
