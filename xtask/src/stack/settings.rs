//! The fixed shape of the dev stack: the services it runs, the ports of 127.0.0.1 its
//! servers listen on, and how long it waits for a process to become ready or to stop.

use std::sync::LazyLock;
use std::time::Duration;

use crate::services::{self, ServiceEntry};

/// Every service of the dev stack, in start order: `apps/services.toml`, the one list of
/// services (built in, so `cargo xtask up` always runs the list of the code it builds).
pub(super) static SERVICES: LazyLock<Vec<ServiceEntry>> = LazyLock::new(|| {
    services::parse(include_str!("../../../apps/services.toml"))
        .expect("apps/services.toml is valid (the services_are_in_step test checks it)")
});

pub(super) const NATS_PORT: u16 = 4222;
pub(super) const NATS_MONITOR_PORT: u16 = 8222;
pub(super) const POSTGRES_PORT: u16 = 5432;
pub(super) const REDIS_PORT: u16 = 6379;
/// The dev SMTP server, which keeps every message in `.dev/mail/`; the notification service's
/// default `--smtp-url` points here.
pub(super) const SMTP_PORT: u16 = 2525;
/// The gateway's admin port (/metrics, /docs, health) in the dev stack.
pub(super) const GATEWAY_ADMIN_PORT: u16 = 9100;

/// How long a server may take to become ready.
pub(super) const SERVER_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Services run migrations and seed data before they are ready.
pub(super) const SERVICE_READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a process may take to stop after being asked before it is killed.
pub(super) const STOP_TIMEOUT: Duration = Duration::from_secs(20);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_services_have_distinct_names_and_ports_off_the_servers_ports() {
        let mut ports: Vec<u16> = SERVICES.iter().map(|service| service.admin_port).collect();
        ports.extend([
            NATS_PORT,
            NATS_MONITOR_PORT,
            POSTGRES_PORT,
            REDIS_PORT,
            SMTP_PORT,
            GATEWAY_ADMIN_PORT,
            8080,
        ]);
        let count = ports.len();
        ports.sort();
        ports.dedup();
        assert_eq!(ports.len(), count);
        let mut names: Vec<&str> = SERVICES
            .iter()
            .map(|service| service.name.as_str())
            .collect();
        names.dedup();
        assert_eq!(names.len(), SERVICES.len());
    }
}
