//! The web app's browser tests (gateway/web/e2e, Playwright driving the system's chromium)
//! against the whole platform: the gateway serves the built app and the API on one origin,
//! in front of every service on private servers.
//!
//! The harness builds the app when its build is missing or older than its sources, seeds a
//! seller with two approved shops of two products each and an admin (both with password
//! logins, for the consoles) and one dead letter (an event the user service's consumer gives
//! up on), writes what it seeded to a JSON file (gateway/web/e2e/SEED.md describes it), and
//! runs `playwright test` with one worker. Screenshots and reports go to
//! `target/storefront/` (emptied first); the run must leave screenshots at both widths.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Platform, PlatformOptions, path_of};

/// The simulated card processor's test cards (apps/payment/src/provider.rs).
const APPROVED_CARD: &str = "4242 4242 4242 4242";
const DECLINED_CARD: &str = "4000 0000 0000 0002";

const SELLER_EMAIL: &str = "seller@storefront.test";
const SELLER_PASSWORD: &str = "lamps and tea, sold with care 2026";
const ADMIN_EMAIL: &str = "admin@storefront.test";
const ADMIN_PASSWORD: &str = "keeping the platform running 2026";

/// The shops the seller opens, and what each sells: (name, [(product, price in cents)]).
const SHOPS: &[(&str, &[(&str, i64)])] = &[
    (
        "Northwind Lamps",
        &[("Brass Desk Lamp", 4500), ("Linen Lamp Shade", 1900)],
    ),
    (
        "Harbor Tea Company",
        &[("Smoky Lapsang Tea", 1200), ("Porcelain Tea Cup", 1500)],
    ),
];
const STOCK: i64 = 40;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the gateway is one level below the workspace root")
        .to_path_buf()
}

fn web_dir() -> PathBuf {
    workspace_root().join("gateway/web")
}

/// Where screenshots and reports go: `target/storefront/` (or under `CARGO_TARGET_DIR`).
fn output_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_relative() {
                workspace_root().join(dir)
            } else {
                dir
            }
        })
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("storefront")
}

/// The system's chromium: `CHROMIUM_PATH`, `.dev/bin/chromium` (linked by `make deps`), or
/// Debian's.
fn chromium() -> PathBuf {
    let candidates = std::env::var_os("CHROMIUM_PATH")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            workspace_root().join(".dev/bin/chromium"),
            PathBuf::from("/usr/bin/chromium"),
            PathBuf::from("/usr/bin/chromium-browser"),
        ]);
    for candidate in candidates {
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "chromium is not installed, and the storefront's browser tests need it: `make deps` \
         installs it (Debian: apt-get install chromium), or set CHROMIUM_PATH"
    );
}

/// The newest modification time of the files under `path` (the file itself if it is one),
/// leaving out `node_modules`, `dist` and test output.
fn newest(path: &Path) -> Option<SystemTime> {
    let metadata = std::fs::metadata(path).ok()?;
    if metadata.is_file() {
        return metadata.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name();
            !matches!(
                name.to_str(),
                Some("node_modules" | "dist" | "test-results" | "playwright-report" | "output")
            )
        })
        .filter_map(|entry| newest(&entry.path()))
        .max()
}

/// PATH with the private Node.js `make deps` installs where the system's is missing or too
/// old (`.dev/tools/node`, see xtask/src/web.rs) first, when there is one.
fn node_path() -> std::ffi::OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let private = workspace_root().join(".dev/tools/node/bin");
    if !private.join("node").is_file() {
        return path;
    }
    std::env::join_paths(std::iter::once(private).chain(std::env::split_paths(&path)))
        .expect("PATH entries join")
}

fn npm(web: &Path, args: &[&str]) {
    println!("==> npm {} (in gateway/web)", args.join(" "));
    let status = std::process::Command::new("npm")
        .env("PATH", node_path())
        .args(args)
        .current_dir(web)
        .stdin(Stdio::null())
        .status()
        .unwrap_or_else(|e| {
            panic!("running npm ({e}): `make deps` installs Node.js and npm (apt: nodejs npm)")
        });
    assert!(status.success(), "npm {} failed ({status})", args.join(" "));
}

/// Installs the app's packages when `node_modules` is missing or older than the lock file,
/// and builds it when `dist/index.html` is missing or older than any source (the API
/// document it generates its client from included).
fn build_the_app(web: &Path) {
    let lock = web.join("package-lock.json");
    let installed = web.join("node_modules/.package-lock.json");
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    if modified(&installed) < modified(&lock) {
        npm(web, &["ci", "--no-audit", "--no-fund"]);
    }
    let built = modified(&web.join("dist/index.html"));
    let sources = [
        newest(web),
        newest(&workspace_root().join("docs/api/openapi.json")),
    ]
    .into_iter()
    .flatten()
    .max();
    if built.is_none() || built < sources {
        npm(web, &["run", "build"]);
    }
}

fn text(value: &Value, field: &str) -> String {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {value}"))
        .to_owned()
}

/// Registers an account with a password login and grants it `role`.
async fn account_with_role(platform: &Platform, email: &str, password: &str, role: &str) {
    let tokens = platform.register_and_login(email, password).await;
    let user_id = text(&tokens, "user_id");
    let (status, body) = platform
        .post(
            &format!("/api/v1/auth/accounts/{user_id}/roles"),
            json!({"role": role}),
            Some(&platform.admin_token()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "granting {role}: {body}");
}

async fn login(platform: &Platform, email: &str, password: &str) -> String {
    let (status, tokens) = platform
        .post(
            "/api/v1/auth/login",
            json!({"email": email, "password": password}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "login: {tokens}");
    text(&tokens, "access_token")
}

/// The seller, the admin and the two shops with their products, as the seed file says them.
async fn seed(platform: &Platform) -> Value {
    account_with_role(platform, SELLER_EMAIL, SELLER_PASSWORD, "seller").await;
    account_with_role(platform, ADMIN_EMAIL, ADMIN_PASSWORD, "admin").await;
    let seller = login(platform, SELLER_EMAIL, SELLER_PASSWORD).await;
    let admin = login(platform, ADMIN_EMAIL, ADMIN_PASSWORD).await;

    let mut shops = Vec::new();
    for (name, products) in SHOPS {
        let slug = name.to_ascii_lowercase().replace(' ', "-");
        let (status, shop) = platform
            .post(
                "/api/v1/shops",
                json!({
                    "name": name, "slug": slug, "currency": "USD",
                    "contact_email": SELLER_EMAIL,
                    "description": format!("{name}: a shop of the storefront's browser tests."),
                }),
                Some(&seller),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "opening {name}: {shop}");
        let shop_id = text(&shop, "id");
        let (status, body) = platform
            .post(
                &format!("/api/v1/admin/shops/{shop_id}/approve"),
                json!({}),
                Some(&admin),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "approving {name}: {body}");
        let mut listed = Vec::new();
        for (product, price) in *products {
            let (status, created) = platform
                .post(
                    "/api/v1/products",
                    json!({
                        "shop_id": shop_id, "name": product,
                        "description": format!("The {product}, from {name}."),
                        "price": {"minor_units": price, "currency": "USD"},
                        "initial_stock": STOCK,
                    }),
                    Some(&seller),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "creating {product}: {created}");
            listed.push(json!({
                "id": text(&created, "id"), "name": product,
                "price_minor": price, "currency": "USD",
            }));
        }
        shops.push(json!({"id": shop_id, "name": name, "products": listed}));
    }
    json!({
        "seller": {"email": SELLER_EMAIL, "password": SELLER_PASSWORD},
        "admin": {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
        "shops": shops,
        "card": APPROVED_CARD,
        "declined_card": DECLINED_CARD,
    })
}

/// Publishes a `user.registered` the user service's consumer can never apply (its user id is
/// no UUID), as a producer with a bug would, and waits until the gateway lists the dead letter
/// that consumer made of it: the operations console's dead letters, as the seed file says them.
async fn dead_letter(platform: &Platform) -> Value {
    let event = &api::auth::events::USER_REGISTERED;
    let consumer =
        events::names::durable_name("user", event).expect("the user service's durable name");
    let event_id = platform
        .publish_poisoned_registration("storefront-poison")
        .await;

    let list = format!(
        "{}?consumer={consumer}",
        path_of(&api::gateway::methods::LIST_DEAD_LETTERS, &[])
    );
    let admin = platform.admin_token();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, listing) = platform.get(&list, Some(&admin)).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "listing the dead letters: {listing}"
        );
        let listed = listing["dead_letters"]
            .as_array()
            .is_some_and(|letters| letters.iter().any(|l| l["event_id"] == event_id.as_str()));
        if listed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{consumer} did not give the poisoned event up within 20 s: {listing}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    json!({"consumer": consumer, "event_id": event_id, "event_type": event.name})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_storefront_passes_its_browser_tests() {
    let chromium = chromium();
    let web = web_dir();
    assert!(
        web.join("package.json").is_file(),
        "the web app is missing: {}",
        web.display()
    );
    build_the_app(&web);
    let output = output_dir();
    // What an earlier run left must not pass for this run's.
    let _ = std::fs::remove_dir_all(&output);
    std::fs::create_dir_all(&output).expect("creating target/storefront");

    let dist = web.join("dist");
    let platform = Platform::spawn_with(PlatformOptions {
        checkout: true,
        after_the_order: true,
        configure: Box::new(move |config| {
            config.web_dir = Some(dist);
            // Every browser request comes from 127.0.0.1: the limits a crowd of shoppers
            // shares would throttle the test, not check the app.
            config.rate_limits = "default=20000/60,search=20000/60,auth=2000/60"
                .parse()
                .expect("rate limits");
        }),
        ..PlatformOptions::default()
    })
    .await;

    let mut seeded = seed(&platform).await;
    seeded["dead_letter"] = dead_letter(&platform).await;
    let seed_file = output.join("seed.json");
    std::fs::write(
        &seed_file,
        serde_json::to_string_pretty(&seeded).expect("the seed as JSON"),
    )
    .expect("writing the seed file");

    println!(
        "==> playwright test (gateway/web/e2e) against {}, output in {}",
        platform.address,
        output.display()
    );
    let status = tokio::process::Command::new("npx")
        .env("PATH", node_path())
        .args(["--no-install", "playwright", "test", "--workers=1"])
        .current_dir(&web)
        .env("STOREFRONT_URL", &platform.address)
        .env("STOREFRONT_SEED", &seed_file)
        .env("STOREFRONT_OUTPUT", &output)
        .env("CHROMIUM_PATH", &chromium)
        // Never fetch a browser: the system's chromium is the one.
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .status()
        .await
        .expect("running npx playwright test (`make deps` installs Node.js and npm)");
    assert!(
        status.success(),
        "the storefront's browser tests failed ({status}): see the output above and {}",
        output.display()
    );
    let screenshots = screenshots(&output.join("screenshots"));
    for width in ["phone", "desktop"] {
        assert!(
            screenshots
                .iter()
                .any(|name| name.ends_with(&format!("-{width}.png"))),
            "no screenshot at the {width} width in {}: {screenshots:?}",
            output.join("screenshots").display()
        );
    }
    platform.stop().await;
}

/// The file names in `dir`.
fn screenshots(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| entry.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}
