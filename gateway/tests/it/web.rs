//! The web app on the public port (`--web-dir`): the entry page for the app's routes, cached
//! assets, precompressed files, its content security policy, no way out of the directory,
//! and the API exactly as it is without it.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{Options, TestApp, expect_error};

const APP_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'self'";
const API_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";
const ENTRY_PAGE: &str =
    "<!doctype html><title>Emporium</title><script type=module src=/assets/app-3f2a9c.js></script>";
const SCRIPT: &str = "console.log('the app');";
/// What a precompressed sibling holds: not really brotli, but the test only checks which
/// file was sent.
const SCRIPT_BR: &[u8] = b"brotli bytes of the app";
const SECRET: &str = "a file beside the web dir";

/// A built app in a temporary directory, with a secret file next to it (not in it).
struct BuiltApp {
    root: PathBuf,
}

impl BuiltApp {
    fn new() -> Self {
        let root = std::env::temp_dir().join(format!("gateway-web-{}", uuid::Uuid::now_v7()));
        let dist = root.join("dist");
        std::fs::create_dir_all(dist.join("assets")).unwrap();
        std::fs::write(dist.join("index.html"), ENTRY_PAGE).unwrap();
        std::fs::write(dist.join("assets/app-3f2a9c.js"), SCRIPT).unwrap();
        std::fs::write(dist.join("assets/app-3f2a9c.js.br"), SCRIPT_BR).unwrap();
        std::fs::write(dist.join("assets/style-77aa01.css"), "body{margin:0}").unwrap();
        std::fs::write(
            dist.join("favicon.svg"),
            "<svg xmlns='http://www.w3.org/2000/svg'/>",
        )
        .unwrap();
        std::fs::write(dist.join(".env"), SECRET).unwrap();
        std::fs::write(root.join("secret.txt"), SECRET).unwrap();
        Self { root }
    }

    fn dist(&self) -> PathBuf {
        self.root.join("dist")
    }
}

impl Drop for BuiltApp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

async fn serving(built: &BuiltApp) -> TestApp {
    let dist = built.dist();
    TestApp::spawn_with(Options {
        product_service: false,
        configure: Box::new(move |config| config.web_dir = Some(dist)),
    })
    .await
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing from {}", response.url()))
        .to_str()
        .unwrap()
}

async fn assert_entry_page(app: &TestApp, path: &str) {
    let response = app.get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    assert!(
        header(&response, "content-type").starts_with("text/html"),
        "{path}"
    );
    assert_eq!(header(&response, "cache-control"), "no-cache", "{path}");
    assert_eq!(header(&response, "content-security-policy"), APP_POLICY);
    assert_eq!(header(&response, "x-frame-options"), "DENY");
    assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    assert_eq!(response.text().await.unwrap(), ENTRY_PAGE, "{path}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_routes_are_the_entry_page_never_cached_without_revalidation() {
    let built = BuiltApp::new();
    let app = serving(&built).await;
    for path in [
        "/",
        "/index.html",
        "/products/0190a5c2-7c1e-7b1a-9d0e-3f2a1b4c5d6e",
        "/seller/orders",
        "/orders/42?tab=tracking",
        "/assets",
    ] {
        assert_entry_page(&app, path).await;
    }
    let head = app
        .request(reqwest::Method::HEAD, "/cart")
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(header(&head, "cache-control"), "no-cache");
    assert_eq!(
        header(&head, "content-length"),
        ENTRY_PAGE.len().to_string()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashed_assets_are_cached_for_a_year_and_other_files_briefly() {
    let built = BuiltApp::new();
    let app = serving(&built).await;

    let script = app.get("/assets/app-3f2a9c.js").await;
    assert_eq!(script.status(), 200);
    assert_eq!(header(&script, "content-type"), "text/javascript");
    assert_eq!(
        header(&script, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(header(&script, "content-security-policy"), APP_POLICY);
    assert_eq!(script.text().await.unwrap(), SCRIPT);

    let style = app.get("/assets/style-77aa01.css").await;
    assert_eq!(header(&style, "content-type"), "text/css");

    let icon = app.get("/favicon.svg").await;
    assert_eq!(icon.status(), 200);
    assert_eq!(header(&icon, "content-type"), "image/svg+xml");
    assert_eq!(header(&icon, "cache-control"), "public, max-age=3600");

    // A browser that takes brotli gets the precompressed file, one that does not the plain.
    let compressed = app
        .request(reqwest::Method::GET, "/assets/app-3f2a9c.js")
        .header("accept-encoding", "br, gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(compressed.status(), 200);
    assert_eq!(header(&compressed, "content-encoding"), "br");
    assert_eq!(header(&compressed, "vary"), "accept-encoding");
    assert_eq!(header(&compressed, "content-type"), "text/javascript");
    assert_eq!(compressed.bytes().await.unwrap().as_ref(), SCRIPT_BR);
    let plain = app
        .request(reqwest::Method::GET, "/assets/app-3f2a9c.js")
        .header("accept-encoding", "identity")
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(plain.text().await.unwrap(), SCRIPT);

    // A file that is not there is a 404, never the entry page: a script URL must not answer
    // HTML; and nothing about a 404 is cached for a year.
    for path in ["/assets/app-000000.js", "/assets/nothing", "/robots.txt"] {
        let missing = app.get(path).await;
        assert!(missing.headers().get("cache-control").is_none(), "{path}");
        expect_error(missing, 404, "not_found").await;
    }
    app.stop().await;
}

/// `GET <path>` as sent, byte for byte: an HTTP client would normalise `..` away before
/// sending it. Returns the status and the whole answer.
async fn raw_get(app: &TestApp, path: &str) -> (u16, String) {
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"));
    (status, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_outside_the_web_dir_nor_any_listing_is_served() {
    let built = BuiltApp::new();
    let app = serving(&built).await;
    for path in [
        "/../secret.txt",
        "/assets/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/assets/%2E%2E/%2E%2E/secret.txt",
        "/assets/..%2f..%2fsecret.txt",
        "/..%5csecret.txt",
        "/.env",
        "/assets/",
        "/assets/./app-3f2a9c.js",
    ] {
        let (status, answer) = raw_get(&app, path).await;
        assert!(
            !answer.contains(SECRET),
            "{path} served the secret: {answer}"
        );
        assert!(
            !answer.contains("app-3f2a9c.js.br"),
            "{path} listed: {answer}"
        );
        assert_eq!(status, 404, "{path}: {answer}");
    }
    // The file is there, as the traversal would have found it.
    assert!(
        Path::new(&built.root.join("secret.txt")).exists(),
        "the secret file exists"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_as_it_does_without_the_app() {
    let built = BuiltApp::new();
    let app = serving(&built).await;
    for path in [
        "/api/v1/nothing-here",
        "/api/v2",
        "/api",
        "/docs",
        "/metrics",
        "/.well-known/nothing",
        "/health/nothing",
    ] {
        let response = app.get(path).await;
        assert_eq!(header(&response, "content-security-policy"), API_POLICY);
        expect_error(response, 404, "not_found").await;
    }
    let document = app.get("/openapi.json").await;
    assert_eq!(document.status(), 200);
    assert!(header(&document, "content-type").starts_with("application/json"));
    assert_eq!(header(&document, "content-security-policy"), API_POLICY);
    let live = app.get("/health/live").await;
    assert_eq!(live.status(), 200);
    assert_eq!(header(&live, "content-security-policy"), API_POLICY);
    // Only GET and HEAD reach the app.
    let posted = app.post_json("/", &serde_json::json!({}), None).await;
    expect_error(posted, 404, "not_found").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_web_dir_the_gateway_serves_the_api_only() {
    let app = TestApp::spawn_with(Options {
        product_service: false,
        ..Options::default()
    })
    .await;
    for path in ["/", "/products/1", "/assets/app.js"] {
        let response = app.get(path).await;
        assert_eq!(header(&response, "content-security-policy"), API_POLICY);
        expect_error(response, 404, "not_found").await;
    }
    app.stop().await;
}

#[test]
fn a_web_dir_without_an_entry_page_is_refused_at_start() {
    let built = BuiltApp::new();
    std::fs::remove_file(built.dist().join("index.html")).unwrap();
    let error = gateway::web::fallback(Some(&built.dist())).unwrap_err();
    assert!(format!("{error:#}").contains("no index.html"), "{error:#}");
    let error = gateway::web::fallback(Some(&built.root.join("missing"))).unwrap_err();
    assert!(format!("{error:#}").contains("--web-dir"), "{error:#}");
}
