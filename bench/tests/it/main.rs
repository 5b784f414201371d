//! The smoke run of the benchmark harness: every scenario for a moment, in debug mode, so the
//! harness does not rot between `make bench` runs. It checks that the results are well formed
//! and that the inventory invariant holds, not how fast anything is.

use std::path::PathBuf;

use bench::load::LoadResult;

/// target/<profile>/, where cargo puts the product-service and gateway binaries (`make test`
/// builds them with the workspace).
fn binaries_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/it-<hash>
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("the target directory")
        .to_path_buf()
}

#[track_caller]
fn assert_measured(what: &str, result: &LoadResult) {
    assert!(
        result.completed > 0,
        "{what}: nothing completed: {result:?}"
    );
    assert_eq!(result.errors, 0, "{what}: errors: {result:?}");
    assert!(
        result.throughput_per_second > 0.0,
        "{what}: no throughput: {result:?}"
    );
    assert!(
        result.latency.p50_ms > 0.0 && result.latency.p99_ms >= result.latency.p50_ms,
        "{what}: latencies: {result:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_and_reports_well_formed_results() {
    telemetry::init_for_tests();
    let dir = binaries_dir();
    assert!(
        dir.join("product-service").is_file() && dir.join("gateway").is_file(),
        "the smoke run starts the real binaries: build them first with \
         `cargo build -p product-service -p gateway` (`make test` does)"
    );
    let options = bench::Options::smoke(dir);
    let report = bench::run(&options).await.expect("the smoke run");

    let g = &report.gateway_overhead;
    assert_measured("bare saturation", &g.bare_saturation);
    assert_measured("gateway saturation", &g.gateway_saturation);
    assert_measured("bare fixed rate", &g.bare_fixed_rate);
    assert_measured("gateway fixed rate", &g.gateway_fixed_rate);
    assert!(g.throughput_ratio > 0.0);

    assert_eq!(report.runtime_overhead.pairs.len(), 2);
    for pair in &report.runtime_overhead.pairs {
        assert_measured("raw echo", &pair.raw);
        assert_measured("runtime echo", &pair.runtime);
        assert!(pair.ratio > 0.0);
    }

    let names: Vec<&str> = report.capacity.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            bench::report::CACHED_GET,
            bench::report::UNCACHED_GET,
            bench::report::SEARCH
        ]
    );
    for capacity in &report.capacity {
        assert_measured(&capacity.name, &capacity.saturation);
        assert!(!capacity.steps.is_empty(), "{}: no step ran", capacity.name);
        for step in &capacity.steps {
            assert!(step.completed > 0, "{}: {step:?}", capacity.name);
        }
    }

    let inventory = &report.inventory;
    assert!(inventory.result.completed > 0, "{inventory:?}");
    assert!(
        inventory.reservations_held_and_released > 0,
        "no reservation went through: {inventory:?}"
    );
    assert!(inventory.invariant_holds, "{inventory:?}");
    assert_eq!(inventory.final_stock_total, inventory.initial_stock_total);

    let cart = &report.marketplace;
    assert_eq!((cart.lines, cart.shops), (5, 2), "{cart:?}");
    assert_measured("product GET beside the cart", &cart.product_get);
    assert_measured("priced cart read", &cart.cart_read);
    assert_measured("cart write", &cart.cart_write);
    assert!(cart.cart_read_ratio > 0.0 && cart.cart_write_ratio > 0.0);

    let checkout = &report.checkout;
    assert_measured("product GET beside the checkouts", &checkout.product_get);
    assert_measured("checkout saturation", &checkout.saturation);
    assert!(checkout.checks.hold, "{:?}", checkout.checks);
    assert!(checkout.checkouts_paid > 0, "{checkout:?}");
    assert!(
        checkout.costs.nats_requests_per_checkout >= 8.0,
        "a checkout is at least its own request and its saga's calls: {:?}",
        checkout.costs
    );
    for fixed in &checkout.fixed_rates {
        assert!(fixed.result.completed > 0, "{fixed:?}");
        assert!(fixed.remote_steps_ms_per_checkout > 0.0, "{fixed:?}");
    }

    let memory = &report.memory;
    assert!(memory.product_service_idle_mib > 1.0, "{memory:?}");
    assert!(memory.gateway_idle_mib > 1.0, "{memory:?}");
    assert!(memory.gateway_with_connections_mib > 1.0, "{memory:?}");

    assert!(!report.targets.is_empty());
    let table = report.table();
    assert!(table.contains("inventory invariant"), "{table}");
    assert!(table.contains("priced cart read"), "{table}");
    assert!(table.contains("7. checkout"), "{table}");
    let json = serde_json::to_value(&report).expect("the report as JSON");
    assert_eq!(json["mode"], "smoke");
    assert!(json["memory"]["gateway_idle_mib"].as_f64().unwrap() > 0.0);
}
