//! The web app (storefront, seller and operations consoles) on the public port, beside the
//! API: a built single-page app, `index.html` and content-hashed files under `assets/`, from
//! `--web-dir`. Without it the gateway serves the API only.
//!
//! - GET or HEAD of `/` and of any other path without a file extension is the app's entry
//!   page (the app routes in the browser), with `Cache-Control: no-cache` so a deploy is
//!   seen at the next load.
//! - `/assets/*` are content-hashed: cached for a year, `immutable`. Other files (the icon)
//!   get a short cache. A missing file is a 404, never the entry page: a script URL must not
//!   answer HTML.
//! - Precompressed `.br` and `.gz` siblings are sent to clients that accept them, and every
//!   answer says `Vary: Accept-Encoding`.
//! - The API's own paths (`/api/`, `/.well-known/`, `/openapi.json`, `/health/`, `/docs`,
//!   `/metrics`) never reach the app: an unknown one stays the JSON 404.
//! - Every answer from here carries the app's content security policy
//!   ([`edge::APP_CONTENT_SECURITY_POLICY`]): its own scripts, styles and API only.
//!
//! It must never list a directory or serve a file outside `--web-dir`: paths with a segment
//! starting with a dot, an encoded dot, slash or backslash are refused before the file
//! system is asked, and tower-http's `ServeDir` refuses `..` again.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt as _;
use tower_http::services::{ServeDir, ServeFile};

use crate::edge;
use crate::error;

/// The entry page: revalidated at every load.
const ENTRY_CACHE: HeaderValue = HeaderValue::from_static("no-cache");
/// Content-hashed files: a new build has new names.
const ASSET_CACHE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
/// Other files keep their names across builds.
const FILE_CACHE: HeaderValue = HeaderValue::from_static("public, max-age=3600");

/// Where the content-hashed files are.
const ASSETS_PREFIX: &str = "/assets/";

/// Paths that belong to the API and the gateway's own routes, whatever is in the web dir.
const API_PREFIXES: &[&str] = &["/api/", "/.well-known/", "/health/"];
const API_PATHS: &[&str] = &["/api", "/openapi.json", "/docs", "/metrics", "/health"];

/// The built app.
struct WebApp {
    entry: ServeFile,
    files: ServeDir,
}

/// What the public router answers when no route matched: the web app when `web_dir` is
/// given (checked to hold an `index.html`), the JSON 404 otherwise.
pub fn fallback(web_dir: Option<&Path>) -> anyhow::Result<Router> {
    let Some(dir) = web_dir else {
        return Ok(Router::new().fallback(error::route_not_found));
    };
    let app = WebApp::open(dir)?;
    tracing::info!(dir = %dir.display(), "serving the web app");
    Ok(Router::new().fallback(serve).with_state(Arc::new(app)))
}

impl WebApp {
    fn open(dir: &Path) -> anyhow::Result<Self> {
        let dir: PathBuf = dir
            .canonicalize()
            .with_context(|| format!("--web-dir {}", dir.display()))?;
        let index = dir.join("index.html");
        anyhow::ensure!(
            index.is_file(),
            "--web-dir {} has no index.html: build the app first (`npm run build` in gateway/web)",
            dir.display()
        );
        Ok(Self {
            entry: ServeFile::new(index)
                .precompressed_br()
                .precompressed_gzip(),
            files: ServeDir::new(&dir)
                .append_index_html_on_directories(false)
                .precompressed_br()
                .precompressed_gzip(),
        })
    }
}

/// What a request path asks the web app for.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// The entry page (the app's own routes).
    Entry,
    /// A file, served with this cache policy.
    File(HeaderValue),
    /// Not the app's: the JSON 404.
    NotFound,
}

fn target(path: &str) -> Target {
    if API_PATHS.contains(&path) || API_PREFIXES.iter().any(|p| path.starts_with(p)) {
        return Target::NotFound;
    }
    if !is_plain_path(path) {
        return Target::NotFound;
    }
    if path.starts_with(ASSETS_PREFIX) {
        return Target::File(ASSET_CACHE);
    }
    if path == "/index.html" {
        return Target::Entry;
    }
    let last = path.rsplit('/').next().unwrap_or_default();
    if last.contains('.') {
        Target::File(FILE_CACHE)
    } else {
        Target::Entry
    }
}

/// A path made of plain segments: none starting with a dot (`..`, `.git`), no backslash,
/// and no encoded dot, slash, backslash or NUL that would decode into one.
fn is_plain_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    !path.contains('\\')
        && !["%2e", "%2f", "%5c", "%00"]
            .iter()
            .any(|encoded| lower.contains(encoded))
        && path.split('/').all(|segment| !segment.starts_with('.'))
}

async fn serve(State(app): State<Arc<WebApp>>, request: Request) -> Response {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return error::route_not_found().await.into_response();
    }
    let (served, cache) = match target(request.uri().path()) {
        Target::NotFound => return error::route_not_found().await.into_response(),
        Target::Entry => (app.entry.clone().oneshot(request).await, ENTRY_CACHE),
        Target::File(cache) => (app.files.clone().oneshot(request).await, cache),
    };
    let Ok(response) = served;
    let mut response = response.map(Body::new);
    if response.status() == StatusCode::NOT_FOUND {
        return error::route_not_found().await.into_response();
    }
    let cacheable = response_is_cacheable(response.status());
    let headers = response.headers_mut();
    if cacheable {
        headers.insert(header::CACHE_CONTROL, cache);
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(edge::APP_CONTENT_SECURITY_POLICY),
    );
    // The same URL answers brotli, gzip or plain bytes: a shared cache must key on it.
    let varies = headers
        .get_all(header::VARY)
        .iter()
        .any(|value| value.as_bytes().eq_ignore_ascii_case(b"accept-encoding"));
    if !varies {
        headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}

fn response_is_cacheable(status: StatusCode) -> bool {
    status.is_success() || status == StatusCode::NOT_MODIFIED
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_routes_are_the_entry_page_and_files_are_files() {
        for path in [
            "/",
            "/products/123",
            "/seller/orders",
            "/index.html",
            "/assets",
        ] {
            assert_eq!(target(path), Target::Entry, "{path}");
        }
        assert_eq!(target("/assets/index-3f2a.js"), Target::File(ASSET_CACHE));
        assert_eq!(target("/assets/logo"), Target::File(ASSET_CACHE));
        assert_eq!(target("/favicon.svg"), Target::File(FILE_CACHE));
    }

    #[test]
    fn api_paths_are_never_the_apps() {
        for path in [
            "/api",
            "/api/",
            "/api/v2/nothing",
            "/openapi.json",
            "/docs",
            "/metrics",
            "/health",
            "/health/whatever",
            "/.well-known/other",
        ] {
            assert_eq!(target(path), Target::NotFound, "{path}");
        }
    }

    #[test]
    fn hidden_and_encoded_paths_are_refused() {
        for path in [
            "/../etc/passwd",
            "/assets/../../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/assets/%2E%2E/x.js",
            "/assets/..%2fsecret.js",
            "/.git/config",
            "/.env",
            "/a\\b.js",
            "/x%00.js",
        ] {
            assert_eq!(target(path), Target::NotFound, "{path}");
        }
    }
}
