//! Scenario 6: the cart through the gateway. A priced cart read (5 lines from 2 shops: the
//! cart service reads its Redis hash, asks product for the 5 products in one batch and
//! totals them) against a product GET through the same gateway; and cart writes (a line's
//! quantity set: PostgreSQL first, then Redis, then the priced answer) against the same GET.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use serde::Serialize;
use testkit::Companion;

use crate::Options;
use crate::http::{self, HttpWorker, RequestSet};
use crate::load::{self, LoadResult};
use crate::platform::{self, Platform};
use crate::scenarios::{median, ratio};

/// The figures of scenario 6.
#[derive(Clone, Debug, Serialize)]
pub struct Marketplace {
    /// Lines in each cart read, and the shops they come from.
    pub lines: usize,
    pub shops: usize,
    /// Guest carts the reads (and, separately, the writes) cycle through.
    pub carts: usize,
    /// Medians of `repeats` saturation runs, alternating.
    pub product_get: LoadResult,
    pub cart_read: LoadResult,
    pub cart_write: LoadResult,
    pub product_get_runs_per_second: Vec<f64>,
    pub cart_read_runs_per_second: Vec<f64>,
    pub cart_write_runs_per_second: Vec<f64>,
    /// Cart read throughput over product GET throughput (medians).
    pub cart_read_ratio: f64,
    /// Cart write throughput over product GET throughput (medians).
    pub cart_write_ratio: f64,
}

async fn closed(
    platform: &Platform,
    requests: &RequestSet,
    options: &Options,
) -> anyhow::Result<LoadResult> {
    let workers =
        HttpWorker::connect_many(platform.gateway_addr, requests, options.connections).await?;
    Ok(load::closed_loop(workers, options.warmup, options.duration).await)
}

/// A new guest cart holding one of each of `lines`; its token.
async fn filled_cart(platform: &Platform, lines: &[String]) -> anyhow::Result<String> {
    let (status, body) = http::send(
        platform.gateway_addr,
        &http::request("POST", "/api/v1/carts", &[], Some("{}")),
    )
    .await?;
    ensure!(
        status == 200,
        "creating a cart: {status} {}",
        String::from_utf8_lossy(&body)
    );
    let created: serde_json::Value = serde_json::from_slice(&body)?;
    let token = created["cart_token"]
        .as_str()
        .context("a cart token")?
        .to_owned();
    for product in lines {
        let (status, body) = http::send(
            platform.gateway_addr,
            &http::request(
                "PUT",
                &format!("/api/v1/cart/items/{product}"),
                &[("X-Cart-Token", &token)],
                Some(r#"{"quantity":1}"#),
            ),
        )
        .await?;
        ensure!(
            status == 200,
            "adding a line: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(token)
}

pub async fn marketplace(platform: &Platform, options: &Options) -> anyhow::Result<Marketplace> {
    let nats = &platform.servers.nats;
    let voucher = Companion::start(nats, voucher_service::start, |_| {}).await;
    let cart = Companion::start(nats, cart_service::start, |_| {}).await;

    // 3 lines from the catalog's shop, 2 from a second one.
    let second_shop = platform.open_shop("bench-second-shop").await?;
    let mut lines: Vec<String> = platform.catalog[..3].to_vec();
    lines.extend(
        platform
            .create_products_in(&second_shop, 2, 1_000_000)
            .await?,
    );
    let carts = options.connections.max(1);

    let mut read_requests = Vec::with_capacity(carts);
    let mut write_requests = Vec::with_capacity(carts * lines.len());
    for _ in 0..carts {
        let token = filled_cart(platform, &lines).await?;
        read_requests.push(http::request(
            "GET",
            "/api/v1/cart",
            &[("X-Cart-Token", &token)],
            None,
        ));
        let token = filled_cart(platform, &lines).await?;
        for (i, product) in lines.iter().enumerate() {
            let body = format!(r#"{{"quantity":{}}}"#, i % 5 + 1);
            write_requests.push(http::request(
                "PUT",
                &format!("/api/v1/cart/items/{product}"),
                &[("X-Cart-Token", &token)],
                Some(&body),
            ));
        }
    }
    // The read answers what it should: every line, priced, from both shops.
    let (status, body) = http::send(platform.gateway_addr, &read_requests[0]).await?;
    ensure!(status == 200, "reading a cart: {status}");
    let priced: serde_json::Value = serde_json::from_slice(&body)?;
    ensure!(
        priced["lines"].as_array().map_or(0, Vec::len) == lines.len()
            && priced["shops"].as_array().map_or(0, Vec::len) == 2
            && priced["checkout_ready"] == true,
        "a priced cart of {} lines from 2 shops, not {priced}",
        lines.len()
    );

    let gets = RequestSet::new(lines.iter().map(|id| platform::product_path(id)));
    let reads = RequestSet::of_requests(read_requests);
    let writes = RequestSet::of_requests(write_requests);
    let (mut get_runs, mut read_runs, mut write_runs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..options.repeats.max(1) {
        get_runs.push(closed(platform, &gets, options).await?);
        read_runs.push(closed(platform, &reads, options).await?);
        write_runs.push(closed(platform, &writes, options).await?);
    }
    let (product_get, product_get_runs_per_second) = median(get_runs);
    let (cart_read, cart_read_runs_per_second) = median(read_runs);
    let (cart_write, cart_write_runs_per_second) = median(write_runs);

    tokio::time::timeout(Duration::from_secs(60), async {
        cart.stop().await;
        voucher.stop().await;
    })
    .await
    .context("stopping the cart and voucher services")?;
    Ok(Marketplace {
        lines: lines.len(),
        shops: 2,
        carts,
        cart_read_ratio: ratio(
            cart_read.throughput_per_second,
            product_get.throughput_per_second,
        ),
        cart_write_ratio: ratio(
            cart_write.throughput_per_second,
            product_get.throughput_per_second,
        ),
        product_get,
        cart_read,
        cart_write,
        product_get_runs_per_second,
        cart_read_runs_per_second,
        cart_write_runs_per_second,
    })
}
