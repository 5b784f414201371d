//! Integration tests of the notification service: each test starts its own nats-server,
//! PostgreSQL database and SMTP server (aiosmtpd, keeping every message it receives), runs the
//! real service on them, publishes events into JetStream the way the producers' outbox relays
//! do, reads the emails back from the SMTP server and calls the service over NATS the way the
//! gateway does.

mod emails;
mod faults;
mod helpers;
mod in_app;
mod preferences;

#[test]
fn the_gateway_routes_every_method_of_the_contract() {
    let mut routes: Vec<(&str, &str)> = api::ROUTES
        .iter()
        .filter(|route| route.descriptor.service == api::notification::SERVICE_NAME)
        .map(|route| (route.http_method, route.path))
        .collect();
    routes.sort();
    assert_eq!(
        routes,
        [
            ("GET", "/api/v1/me/notification-preferences"),
            ("GET", "/api/v1/me/notifications"),
            ("POST", "/api/v1/me/notifications/read-all"),
            ("POST", "/api/v1/me/notifications/{id}/read"),
            ("PUT", "/api/v1/me/notification-preferences"),
        ]
    );
}
