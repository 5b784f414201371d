//! Integration tests of the store crate against private PostgreSQL and Redis servers.

mod cache;
#[cfg(feature = "mongo")]
mod mongo;
mod postgres;
mod postgres_tls;
mod redis;
mod statement_timeouts;

/// A TCP port on 127.0.0.1 that nothing listens on (it was free a moment ago).
fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The value of one counter in the Prometheus text of this process, 0 when absent.
fn counter_value(name: &str, labels: &[(&str, &str)]) -> u64 {
    let text = telemetry::metrics().render();
    text.lines()
        .filter(|line| {
            line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} "))
        })
        .filter(|line| {
            labels
                .iter()
                .all(|(key, value)| line.contains(&format!("{key}=\"{value}\"")))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}
