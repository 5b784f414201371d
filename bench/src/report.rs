//! The results of a run: the JSON document written under bench/results/, the targets of
//! issue 5 checked against it, and the table printed at the end.

use std::fmt::Write as _;

use serde::Serialize;

use crate::checkout::Checkout;
use crate::marketplace::Marketplace;
use crate::memory::Memory;
use crate::scenarios::{Capacity, GatewayOverhead, Inventory, RuntimeOverhead};

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// "full" (`make bench`) or "smoke" (the test).
    pub mode: String,
    /// Seconds since the Unix epoch when the run started.
    pub started_at_unix: u64,
    pub cpus: usize,
    pub gateway_overhead: GatewayOverhead,
    pub runtime_overhead: RuntimeOverhead,
    pub capacity: Vec<Capacity>,
    pub inventory: Inventory,
    pub marketplace: Marketplace,
    pub checkout: Checkout,
    pub memory: Memory,
    pub targets: Vec<TargetCheck>,
}

/// One target of the issue, as measured.
#[derive(Clone, Debug, Serialize)]
pub struct TargetCheck {
    pub name: String,
    pub target: String,
    pub measured: String,
    pub met: bool,
}

fn check(name: &str, target: &str, measured: String, met: bool) -> TargetCheck {
    TargetCheck {
        name: name.to_owned(),
        target: target.to_owned(),
        measured,
        met,
    }
}

/// The capacity result called `name`.
fn capacity<'a>(capacity: &'a [Capacity], name: &str) -> Option<&'a Capacity> {
    capacity.iter().find(|c| c.name == name)
}

pub const CACHED_GET: &str = "cached GET by id";
pub const UNCACHED_GET: &str = "uncached GET by id";
pub const SEARCH: &str = "search";

impl Report {
    /// The targets against this run's figures.
    pub fn check_targets(&mut self) {
        let g = &self.gateway_overhead;
        let mut targets = vec![
            check(
                "gateway throughput / bare axum",
                ">= 0.50x",
                format!("{:.2}x", g.throughput_ratio),
                g.throughput_ratio >= 0.5,
            ),
            check(
                "gateway added p50 latency",
                "<= 0.30 ms",
                format!("{:.3} ms", g.added_p50_ms),
                g.added_p50_ms <= 0.3,
            ),
        ];
        for pair in &self.runtime_overhead.pairs {
            targets.push(check(
                &format!(
                    "runtime / raw async_nats::service, {} requester(s)",
                    pair.requesters
                ),
                ">= 0.90x",
                format!("{:.2}x", pair.ratio),
                pair.ratio >= 0.9,
            ));
        }
        for (name, rate, p99) in [(CACHED_GET, 15_000.0, 5.0), (UNCACHED_GET, 5_000.0, 10.0)] {
            if let Some(c) = capacity(&self.capacity, name) {
                targets.push(check(
                    &format!("{name} through the gateway"),
                    &format!(">= {rate:.0} req/s at p99 <= {p99:.0} ms"),
                    format!("{:.0} req/s", c.rate()),
                    c.rate() >= rate,
                ));
            }
        }
        targets.push(check(
            "inventory invariant",
            "holds",
            if self.inventory.invariant_holds {
                "holds".to_owned()
            } else {
                "BROKEN".to_owned()
            },
            self.inventory.invariant_holds,
        ));
        targets.push(check(
            "priced cart read (5 lines, 2 shops) / product GET, via gateway",
            ">= 0.50x",
            format!("{:.2}x", self.marketplace.cart_read_ratio),
            self.marketplace.cart_read_ratio >= 0.5,
        ));
        targets.extend(checkout_targets(&self.checkout));
        let m = &self.memory;
        targets.push(check(
            "product service idle RSS",
            "<= 20 MiB",
            format!("{:.1} MiB", m.product_service_idle_mib),
            m.product_service_idle_mib <= 20.0,
        ));
        targets.push(check(
            "gateway idle RSS",
            "<= 32 MiB",
            format!("{:.1} MiB", m.gateway_idle_mib),
            m.gateway_idle_mib <= 32.0,
        ));
        self.targets = targets;
    }

    /// The table printed at the end of a run (and pasted into docs/PERFORMANCE.md).
    pub fn table(&self) -> String {
        let mut out = String::new();
        let mut row = |cells: [String; 5]| {
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        };
        header(&mut row);

        let g = &self.gateway_overhead;
        row([
            format!(
                "1. GET product, saturation (req/s, median of {})",
                g.gateway_runs_per_second.len()
            ),
            format!("gateway {:.0}", g.gateway_saturation.throughput_per_second),
            format!("bare axum {:.0}", g.bare_saturation.throughput_per_second),
            format!("{:.2}x", g.throughput_ratio),
            ">= 0.50x".into(),
        ]);
        row([
            format!(
                "1. GET product at {:.0} req/s, p50 / p99 (ms)",
                g.fixed_rate_per_second
            ),
            format!(
                "gateway {:.3} / {:.3}",
                g.gateway_fixed_rate.latency.p50_ms, g.gateway_fixed_rate.latency.p99_ms
            ),
            format!(
                "bare axum {:.3} / {:.3}",
                g.bare_fixed_rate.latency.p50_ms, g.bare_fixed_rate.latency.p99_ms
            ),
            format!("+{:.3} / +{:.3} ms", g.added_p50_ms, g.added_p99_ms),
            "p50 <= +0.30 ms".into(),
        ]);
        for pair in &self.runtime_overhead.pairs {
            row([
                format!("2. NATS echo, {} requester(s) (req/s)", pair.requesters),
                format!("runtime {:.0}", pair.runtime.throughput_per_second),
                format!("raw service {:.0}", pair.raw.throughput_per_second),
                format!("{:.2}x", pair.ratio),
                ">= 0.90x".into(),
            ]);
        }
        for c in &self.capacity {
            let target = match c.name.as_str() {
                CACHED_GET => ">= 15000 req/s".to_owned(),
                UNCACHED_GET => ">= 5000 req/s".to_owned(),
                _ => "-".to_owned(),
            };
            let best = match &c.best {
                Some(best) => format!(
                    "{:.0} req/s (p50 {:.2}, p99 {:.2} ms)",
                    best.throughput_per_second, best.latency.p50_ms, best.latency.p99_ms
                ),
                None => format!("none within p99 <= {:.0} ms", c.p99_limit_ms),
            };
            row([
                format!("3. {} via gateway, p99 <= {:.0} ms", c.name, c.p99_limit_ms),
                best,
                format!("saturation {:.0} req/s", c.saturation.throughput_per_second),
                "-".into(),
                target,
            ]);
        }
        let i = &self.inventory;
        row([
            format!(
                "4. reserve+release, {} workers, {} products (ops/s)",
                i.workers, i.products
            ),
            format!(
                "{:.0} ({} held, {} refused)",
                i.result.throughput_per_second,
                i.reservations_held_and_released,
                i.refused_out_of_stock
            ),
            "-".into(),
            format!(
                "invariant {}",
                if i.invariant_holds { "holds" } else { "BROKEN" }
            ),
            "invariant holds".into(),
        ]);
        let c = &self.marketplace;
        row([
            format!(
                "6. priced cart read, {} lines from {} shops, vs GET product (req/s, median of {})",
                c.lines,
                c.shops,
                c.cart_read_runs_per_second.len()
            ),
            format!(
                "cart {:.0} (p99 {:.2} ms)",
                c.cart_read.throughput_per_second, c.cart_read.latency.p99_ms
            ),
            format!("GET product {:.0}", c.product_get.throughput_per_second),
            format!("{:.2}x", c.cart_read_ratio),
            ">= 0.50x".into(),
        ]);
        row([
            "6. cart write (set a line's quantity) vs GET product (req/s)".into(),
            format!(
                "cart {:.0} (p99 {:.2} ms)",
                c.cart_write.throughput_per_second, c.cart_write.latency.p99_ms
            ),
            format!("GET product {:.0}", c.product_get.throughput_per_second),
            format!("{:.2}x", c.cart_write_ratio),
            "reported".into(),
        ]);
        for cells in self.checkout.rows() {
            row(cells);
        }
        let m = &self.memory;
        row([
            "5. idle RSS, product service / gateway (MiB)".into(),
            format!(
                "{:.1} / {:.1}",
                m.product_service_idle_mib, m.gateway_idle_mib
            ),
            "-".into(),
            "-".into(),
            "<= 20 / <= 32 MiB".into(),
        ]);
        row([
            format!(
                "5. gateway RSS with {} idle keep-alive connections (MiB)",
                m.idle_connections
            ),
            format!("{:.1}", m.gateway_with_connections_mib),
            format!("idle {:.1}", m.gateway_idle_mib),
            format!("{:.1} KiB/connection", m.gateway_kib_per_connection),
            "-".into(),
        ]);

        targets_table(&mut out, &self.targets);
        out
    }
}

fn header(row: &mut impl FnMut([String; 5])) {
    row([
        "Scenario".into(),
        "Platform".into(),
        "Baseline".into(),
        "Ratio / delta".into(),
        "Target".into(),
    ]);
    row([
        "---".into(),
        "---".into(),
        "---".into(),
        "---".into(),
        "---".into(),
    ]);
}

fn targets_table(out: &mut String, targets: &[TargetCheck]) {
    let _ = writeln!(out);
    let _ = writeln!(out, "| Target | Wanted | Measured | Met |");
    let _ = writeln!(out, "| --- | --- | --- | --- |");
    for t in targets {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            t.name,
            t.target,
            t.measured,
            if t.met { "yes" } else { "**no**" }
        );
    }
}

/// The checkout targets: at least 100 checkouts a second with p99 within 250 ms
/// (300 a second is the stretch), every checkout paid and nothing left reserved.
pub fn checkout_targets(checkout: &Checkout) -> Vec<TargetCheck> {
    let at_100 = checkout
        .fixed_rates
        .iter()
        .find(|f| f.result.target_rate_per_second.is_some_and(|r| r >= 100.0));
    let measured = match at_100 {
        Some(f) => format!(
            "{:.0}/s done at {:.0}/s offered, p99 {:.1} ms, {} errors",
            f.result.throughput_per_second,
            f.result.target_rate_per_second.unwrap_or_default(),
            f.result.latency.p99_ms,
            f.result.errors
        ),
        None => "not run".to_owned(),
    };
    let met = at_100.is_some_and(|f| {
        f.p99_within_limit && f.result.errors == 0 && f.result.throughput_per_second >= 0.95 * 100.0
    });
    vec![
        check(
            "checkouts at 100/s offered via gateway",
            &format!("p99 <= {:.0} ms", checkout.p99_limit_ms),
            measured,
            met,
        ),
        check(
            "checkout saturation (stretch)",
            ">= 300/s",
            format!("{:.0}/s", checkout.saturation.throughput_per_second),
            checkout.saturation.throughput_per_second >= 300.0,
        ),
        check(
            "every checkout 201 paid, nothing left reserved",
            "holds",
            if checkout.checks.hold {
                "holds".to_owned()
            } else {
                format!(
                    "BROKEN ({} other answers, {} orders not paid, {} units reserved)",
                    checkout.checks.other_outcomes,
                    checkout.checks.orders_not_paid,
                    checkout.checks.units_left_reserved
                )
            },
            checkout.checks.hold,
        ),
    ]
}

/// The results of scenario 7 run alone (`bench --scenario checkout`).
#[derive(Clone, Debug, Serialize)]
pub struct CheckoutReport {
    pub mode: String,
    pub started_at_unix: u64,
    pub cpus: usize,
    pub checkout: Checkout,
    pub targets: Vec<TargetCheck>,
}

impl CheckoutReport {
    pub fn table(&self) -> String {
        let mut out = String::new();
        let mut row = |cells: [String; 5]| {
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        };
        header(&mut row);
        for cells in self.checkout.rows() {
            row(cells);
        }
        targets_table(&mut out, &self.targets);
        out
    }
}
