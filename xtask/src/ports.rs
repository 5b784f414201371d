//! Are the dev stack's fixed ports free?

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// Whether something already uses `port` on 127.0.0.1: either we cannot bind it, or something
/// answers on it (a listener on another address of the same port).
pub fn in_use(port: u16) -> bool {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    TcpListener::bind(address).is_err()
        || TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok()
}

/// Fails naming every port of `wanted` that is taken.
pub fn ensure_free(wanted: &[(&str, u16)]) -> anyhow::Result<()> {
    let taken: Vec<String> = wanted
        .iter()
        .filter(|(_, port)| in_use(*port))
        .map(|(name, port)| format!("{port} ({name})"))
        .collect();
    match taken.as_slice() {
        [] => Ok(()),
        [one] => anyhow::bail!(
            "port {one} is already in use; stop whatever holds it (a stack left running: `cargo xtask down`)"
        ),
        many => anyhow::bail!(
            "ports {} are already in use; stop whatever holds them (a stack left running: `cargo xtask down`)",
            many.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_port_is_in_use_and_a_released_one_is_not() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(in_use(port));
        drop(listener);
        assert!(!in_use(port));
    }

    #[test]
    fn a_listener_on_every_address_makes_the_port_in_use() {
        let listener = TcpListener::bind("0.0.0.0:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(in_use(port));
    }

    #[test]
    fn the_error_names_each_taken_port() {
        let first = TcpListener::bind("127.0.0.1:0").unwrap();
        let second = TcpListener::bind("127.0.0.1:0").unwrap();
        let first_port = first.local_addr().unwrap().port();
        let second_port = second.local_addr().unwrap().port();
        let free_port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();

        let one = ensure_free(&[("nats", first_port), ("free", free_port)])
            .unwrap_err()
            .to_string();
        assert!(
            one.starts_with(&format!("port {first_port} (nats) is already in use")),
            "{one}"
        );

        let both = ensure_free(&[("nats", first_port), ("redis", second_port)])
            .unwrap_err()
            .to_string();
        assert!(
            both.starts_with(&format!(
                "ports {first_port} (nats), {second_port} (redis) are"
            )),
            "{both}"
        );
        assert!(ensure_free(&[("free", free_port)]).is_ok());
    }
}
