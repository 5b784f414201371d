//! What `up` prints once the stack is up: where everything listens, dev tokens, and example
//! requests (curl through the gateway, the nats CLI) made from the gateway's OpenAPI document.

use std::time::Duration;

use super::demo::Account;
use super::settings::{
    GATEWAY_ADMIN_PORT, NATS_MONITOR_PORT, NATS_PORT, POSTGRES_PORT, REDIS_PORT, SERVICES,
    SMTP_PORT,
};
use crate::dev_keys::{self, Role};
use crate::http;
use crate::layout::Layout;

/// One operation of the OpenAPI document.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Operation {
    /// `<service>.<method>`, e.g. `product.get_product`.
    id: String,
    /// Upper case, e.g. `GET`.
    http_method: String,
    path: String,
    nats_subject: String,
}

/// The operations of an OpenAPI document.
fn operations(document: &serde_json::Value) -> Vec<Operation> {
    let mut found = Vec::new();
    let Some(paths) = document.get("paths").and_then(|paths| paths.as_object()) else {
        return found;
    };
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            continue;
        };
        for (method, operation) in item {
            let text = |key: &str| {
                operation
                    .get(key)
                    .and_then(|value| value.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            found.push(Operation {
                id: text("operationId"),
                http_method: method.to_ascii_uppercase(),
                path: path.clone(),
                nats_subject: text("x-nats-subject"),
            });
        }
    }
    found
}

/// What to tell the developer once everything is up. Routes and subjects come from the
/// gateway's OpenAPI document, which is generated from the contracts.
pub(super) fn print_summary(
    layout: &Layout,
    key: &tokens::SigningKey,
    gateway_port: u16,
    demo_accounts: &[Account],
    web_app: bool,
) {
    let base = format!("http://127.0.0.1:{gateway_port}");
    let admin = format!("http://127.0.0.1:{GATEWAY_ADMIN_PORT}");
    let ttl = Duration::from_secs(12 * 3600);
    let admin_token = dev_keys::mint(key, Role::Admin.dev_subject(), Role::Admin, ttl);
    let customer_token = dev_keys::mint(key, Role::Customer.dev_subject(), Role::Customer, ttl);

    println!();
    println!("Emporium dev stack is up. Ctrl-C stops it.");
    println!();
    println!("  gateway      {base} (admin {admin})");
    println!("  API docs     {admin}/docs");
    println!("  OpenAPI      {base}/openapi.json");
    println!("  metrics      {admin}/metrics (gateway)");
    for service in SERVICES.iter() {
        println!(
            "               http://127.0.0.1:{}/metrics ({})",
            service.admin_port, service.name
        );
    }
    println!(
        "  NATS         nats://127.0.0.1:{NATS_PORT} (monitoring http://127.0.0.1:{NATS_MONITOR_PORT})"
    );
    println!("  PostgreSQL   postgres://postgres@127.0.0.1:{POSTGRES_PORT}/<service>");
    println!("  Redis        redis://127.0.0.1:{REDIS_PORT}");
    println!(
        "  mail         smtp://127.0.0.1:{SMTP_PORT} keeps every email sent: one file each in {}/",
        layout.show(&layout.dev().join("mail/new"))
    );
    println!("  logs         {}/", layout.show(&layout.logs()));
    println!();
    println!("Dev tokens (12 h; more with `cargo xtask dev-token --role admin|customer|seller`):");
    println!();
    println!("  export ADMIN_TOKEN={admin_token}");
    println!("  export CUSTOMER_TOKEN={customer_token}");
    println!();
    print_examples(gateway_port, &base, &admin);
    print_demo_accounts(demo_accounts);
    if web_app {
        println!(
            "Open {base}/ in a browser: the storefront, the seller console and the operations console."
        );
    } else {
        println!("The API is at {base}/api/v1 (no web app in gateway/web).");
    }
    println!();
}

/// The demo accounts that sign in, the seeded seller among them.
fn print_demo_accounts(demo_accounts: &[Account]) {
    let demo_seller_password = SERVICES
        .iter()
        .flat_map(|service| service.dev_args.iter())
        .find_map(|arg| arg.strip_prefix("--seed-demo-seller-password="));
    let mut lines = Vec::new();
    for (what, email, password) in demo_accounts {
        lines.push(format!("  {what:<9} {email} / {password}"));
    }
    if let Some(password) = demo_seller_password {
        lines.insert(
            lines.len().min(1),
            format!(
                "  {:<9} {} / {password} (owns the demo shop {})",
                "seller",
                vocab::demo::DEMO_SELLER_EMAIL,
                vocab::demo::DEMO_SHOP_SLUG
            ),
        );
    }
    if lines.is_empty() {
        return;
    }
    println!("Demo accounts:");
    println!();
    for line in lines {
        println!("{line}");
    }
    println!();
}

/// Example requests, made from the gateway's OpenAPI document.
fn print_examples(gateway_port: u16, base: &str, admin: &str) {
    let document = http::get(gateway_port, "/openapi.json", Duration::from_secs(5))
        .ok()
        .filter(|response| response.status == 200)
        .and_then(|response| serde_json::from_str::<serde_json::Value>(&response.body).ok());
    let Some(document) = document else {
        println!("Try the API: see {admin}/docs");
        return;
    };
    let operations = operations(&document);
    let find = |id: &str| operations.iter().find(|operation| operation.id == id);

    println!("Try it:");
    println!();
    if let Some(list) = find("product.list_products") {
        let list_path = &list.path;
        let sample = http::get(gateway_port, list_path, Duration::from_secs(5))
            .ok()
            .and_then(|response| serde_json::from_str::<serde_json::Value>(&response.body).ok())
            .and_then(|body| body.get("products")?.get(0).cloned());
        println!("  curl -s {base}{list_path}");
        println!("  curl -s '{base}{list_path}?q=widget'");
        if let (Some(product), Some(get)) = (&sample, find("product.get_product")) {
            let id = product
                .get("id")
                .and_then(|id| id.as_str())
                .unwrap_or("<id>");
            println!("  curl -s {base}{}", get.path.replace("{id}", id));
            if let Some(create) = find("product.create_product") {
                let (method, create_path) = (&create.http_method, &create.path);
                let shop_id = product
                    .get("shop_id")
                    .and_then(|shop| shop.as_str())
                    .unwrap_or("<shop id>");
                let currency = product
                    .pointer("/price/currency")
                    .and_then(|currency| currency.as_str())
                    .unwrap_or("EUR");
                println!(
                    "  curl -s -X {method} {base}{create_path} \\\n      -H \"authorization: Bearer $ADMIN_TOKEN\" -H 'content-type: application/json' \\\n      -d '{{\"shop_id\":\"{shop_id}\",\"name\":\"Travel Widget\",\"description\":\"A folding widget for the road.\",\"price\":{{\"minor_units\":\"1999\",\"currency\":\"{currency}\"}},\"initial_stock\":\"10\"}}'"
                );
            }
            println!();
            println!(
                "With the nats CLI (https://github.com/nats-io/natscli), as the operator (every connection needs a key; see docs/SECURITY.md):"
            );
            println!();
            println!(
                "  export NATS_URL=nats://127.0.0.1:{NATS_PORT} NATS_NKEY=.dev/nats-credentials/operator.nk"
            );
            println!("  nats micro ls");
            println!("  nats req {} '{{\"id\":\"{id}\"}}'", get.nats_subject);
        }
    }
    if let (Some(register), Some(login), Some(me)) = (
        find("auth.register"),
        find("auth.login"),
        find("user.get_my_profile"),
    ) {
        let body = r#"{"email":"you@example.com","password":"a long dev passphrase"}"#;
        println!();
        println!("An account of your own (the profile appears once user.registered is consumed):");
        println!();
        for operation in [register, login] {
            println!(
                "  curl -s -X {} {base}{} -H 'content-type: application/json' -d '{body}'",
                operation.http_method, operation.path
            );
        }
        println!(
            "  curl -s {base}{} -H \"authorization: Bearer <access_token from the login>\"",
            me.path
        );
    }
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_read_from_an_openapi_document() {
        let document = serde_json::json!({
            "paths": {
                "/api/v1/things/{id}": {
                    "get": { "operationId": "thing.get_thing", "x-nats-subject": "thing.get_thing" },
                    "patch": { "operationId": "thing.update_thing", "x-nats-subject": "thing.update_thing" }
                }
            }
        });
        let mut found = operations(&document);
        found.sort();
        assert_eq!(
            found[0],
            Operation {
                id: "thing.get_thing".to_owned(),
                http_method: "GET".to_owned(),
                path: "/api/v1/things/{id}".to_owned(),
                nats_subject: "thing.get_thing".to_owned(),
            }
        );
        assert_eq!(found[1].http_method, "PATCH");
        assert!(operations(&serde_json::json!({})).is_empty());
    }
}
