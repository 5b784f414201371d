//! What clients send cannot take the platform down: the real services behind the gateway
//! answer malformed bodies and headers with 4xx, and every endpoint still answers afterwards.
//!
//! A decode error once quoted a client's field name (`{"\n":0}`) into a NATS header; async-nats
//! panicked on the line break outside the handler's catch-panic layer and the endpoint's loop
//! ended silently, while health stayed green.

use std::time::Duration;

use futures::StreamExt as _;
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Platform, PlatformOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_with_a_line_break_in_a_field_name_does_not_stop_login() {
    let platform = Platform::spawn().await;
    platform
        .register_and_login("ada@example.com", "a perfectly fine passphrase")
        .await;
    for _ in 0..5 {
        let response = platform
            .http
            .post(format!("{}/api/v1/auth/login", platform.address))
            .header("content-type", "application/json")
            .body(r#"{"\n":0}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "invalid_argument", "{body}");
    }
    let (status, tokens) = platform
        .post(
            "/api/v1/auth/login",
            json!({"email": "ada@example.com", "password": "a perfectly fine passphrase"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "login still works: {tokens}");
    assert!(tokens["access_token"].is_string(), "{tokens}");
    assert_services_ready(&platform).await;
    platform.stop().await;
}

/// Requests sent per route; a few thousand in all.
const REQUESTS_PER_ROUTE: usize = 100;
/// Requests in flight at once.
const CONCURRENCY: usize = 8;
/// The seed of the generator: change it to explore, keep it to reproduce.
const SEED: u64 = 0x5eed_cafe_f00d_0001;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_generated_request_breaks_an_endpoint() {
    let platform = Platform::spawn_with(PlatformOptions {
        product_service: true,
        // Every service with routes: shop, cart, voucher, order, payment, notification,
        // comment and settings take the fuzz too.
        marketplace: true,
        checkout: true,
        after_the_order: true,
        configure: Box::new(|config| {
            // The fuzz is one client: rate limits would answer it instead of the services.
            config.rate_limits = "default=1000000/60,search=1000000/60,auth=1000000/60"
                .parse()
                .unwrap();
        }),
        ..PlatformOptions::default()
    })
    .await;
    // A connection per request: the gateway closes one whose request body it did not read
    // (it answered before needing it), and a pooled connection closed under the client would
    // fail the next request in transit, which says nothing about the gateway.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let tokens = [
        platform.admin_token(),
        platform.token(&[rpc::roles::CUSTOMER]),
    ];

    let mut random = Random(SEED);
    let requests: Vec<Generated> = (0..REQUESTS_PER_ROUTE)
        .flat_map(|_| api::ROUTES.iter())
        .enumerate()
        .map(|(index, route)| generate(&mut random, index, route, &tokens))
        .collect();
    assert!(requests.len() >= 2_000, "{}", requests.len());

    let failures: Vec<String> = futures::stream::iter(requests)
        .map(|generated| {
            let http = http.clone();
            let address = platform.address.clone();
            async move { send(&http, &address, generated).await }
        })
        .buffer_unordered(CONCURRENCY)
        .filter_map(|failure| async move { failure })
        .collect()
        .await;
    assert!(
        failures.is_empty(),
        "{} requests were answered with a server error, first ones:\n{}",
        failures.len(),
        failures[..failures.len().min(10)].join("\n")
    );

    // Every endpoint still answers a well-formed request.
    let admin = platform.admin_token();
    for route in api::ROUTES {
        let path = fill_path(route.path, |_| uuid::Uuid::now_v7().to_string());
        let method: Method = route.http_method.parse().unwrap();
        let mut request = http
            .request(method, format!("{}{path}", platform.address))
            .bearer_auth(&admin);
        if !matches!(route.http_method, "GET" | "DELETE") {
            request = request.json(&json!({}));
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        assert!(
            !status.is_server_error(),
            "{} {} answers {status} after the fuzz",
            route.http_method,
            route.path
        );
    }
    assert_services_ready(&platform).await;
    platform.stop().await;
}

/// Every service's readiness, which fails when one of its endpoint loops has ended.
async fn assert_services_ready(platform: &Platform) {
    for admin in platform.service_admin_addrs() {
        let response = reqwest::get(format!("http://{admin}/health/ready"))
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{admin}: {body}");
    }
}

/// One generated request and what was generated, for the failure report.
struct Generated {
    index: usize,
    method: Method,
    path: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Vec<u8>,
    about: String,
}

/// Sends it; a description when it was answered with a server error other than 503.
async fn send(http: &reqwest::Client, address: &str, generated: Generated) -> Option<String> {
    let mut request = http.request(
        generated.method.clone(),
        format!("{address}{}", generated.path),
    );
    for (name, value) in generated.headers {
        request = request.header(name, value);
    }
    if !generated.body.is_empty() {
        request = request.body(generated.body);
    }
    let describe = |outcome: &str| {
        format!(
            "#{} {} {} ({}): {outcome}",
            generated.index, generated.method, generated.path, generated.about
        )
    };
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => return Some(describe(&format!("no answer: {error:?}"))),
    };
    let status = response.status();
    let streaming = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if streaming {
        // An event stream that opened: it never ends on its own.
        return None;
    }
    let body = response.bytes().await.unwrap_or_default();
    (status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE).then(|| {
        describe(&format!(
            "{status} {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ))
    })
}

fn generate(random: &mut Random, index: usize, route: &api::Route, tokens: &[String]) -> Generated {
    let mut about = Vec::new();
    let path = fill_path(route.path, |_| path_value(random, &mut about));
    let path = match random.below(6) {
        0 => {
            about.push("query");
            format!("{path}?{}", query(random, route))
        }
        _ => path,
    };
    // Mostly the route's own method; sometimes another the path may not serve.
    let method = match random.below(10) {
        0 => random
            .pick(&["GET", "POST", "PUT", "PATCH", "DELETE"])
            .parse()
            .unwrap(),
        _ => route.http_method.parse().unwrap(),
    };
    let body = if matches!(route.http_method, "GET" | "DELETE") && random.below(4) != 0 {
        Vec::new()
    } else {
        body(random, route, &mut about)
    };
    let headers = headers(random, tokens, &mut about);
    Generated {
        index,
        method,
        path,
        headers,
        body,
        about: about.join(", "),
    }
}

fn fill_path(template: &str, mut value: impl FnMut(&str) -> String) -> String {
    let mut path = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').expect("a closed parameter") + open;
        path.push_str(&rest[..open]);
        path.push_str(&value(&rest[open + 1..close]));
        rest = &rest[close + 1..];
    }
    path.push_str(rest);
    path
}

/// A path parameter: an id, or something no id looks like, percent-encoded.
fn path_value(random: &mut Random, about: &mut Vec<&'static str>) -> String {
    match random.below(5) {
        0 | 1 => uuid::Uuid::now_v7().to_string(),
        2 => {
            about.push("path bytes");
            let length = random.below(40) + 1;
            percent_encode(&random.bytes(length))
        }
        3 => {
            about.push("long path");
            "a".repeat(random.below(3000) + 200)
        }
        _ => {
            about.push("odd path");
            random
                .pick(&[
                    "%00",
                    "%0A%0D",
                    "..",
                    "%2F%2F",
                    "-1",
                    "0",
                    "%E2%80%AE",
                    "%FF%FE",
                ])
                .to_owned()
        }
    }
}

fn query(random: &mut Random, route: &api::Route) -> String {
    let mut pairs = Vec::new();
    for _ in 0..random.below(4) + 1 {
        let name = match (random.below(3), route.request_fields) {
            (0 | 1, fields) if !fields.is_empty() => {
                fields[random.below(fields.len())].name.to_owned()
            }
            _ => percent_encode(&random.bytes(5)),
        };
        let value = match random.below(5) {
            0 => "99999999999999999999999999".to_owned(),
            1 => "-1".to_owned(),
            2 => "true".to_owned(),
            3 => {
                let length = random.below(30);
                percent_encode(&random.bytes(length))
            }
            _ => "%0A%0D%00".to_owned(),
        };
        pairs.push(format!("{name}={value}"));
    }
    pairs.join("&")
}

fn percent_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

fn body(random: &mut Random, route: &api::Route, about: &mut Vec<&'static str>) -> Vec<u8> {
    match random.below(80) {
        0..=9 => {
            about.push("random bytes");
            let length = random.below(512);
            random.bytes(length)
        }
        10..=19 => {
            about.push("invalid JSON");
            random
                .pick(&[
                    "{",
                    "[1,",
                    r#"{"a":}"#,
                    "nul",
                    r#""unterminated"#,
                    "{\"a\":1}}",
                    "\u{feff}{}",
                    "{'single':1}",
                    r#"{"a":1,"a":2}"#,
                    "{\"raw\u{1}control\":1}",
                ])
                .as_bytes()
                .to_vec()
        }
        20..=27 => {
            about.push("deep nesting");
            let depth = random.below(20_000) + 100;
            let (open, close) = random.pick(&[("[", "]"), ("{\"a\":", "}")]);
            let mut text = open.repeat(depth);
            text.push('1');
            text.push_str(&close.repeat(depth));
            text.into_bytes()
        }
        28..=37 => {
            about.push("huge numbers");
            object_of_fields(route, random, |_, random| {
                random
                    .pick(&[
                        "1e999999",
                        "-1e999999",
                        "123456789012345678901234567890",
                        "-99999999999999999999",
                        "18446744073709551616",
                        "0.0000000000000000000000000001",
                        "-0",
                    ])
                    .to_owned()
            })
            .into_bytes()
        }
        38..=47 => {
            about.push("control characters in keys");
            let key = random.pick(&[
                "\\n",
                "\\r\\n",
                "\\u0000",
                "a\\nb",
                "\\t",
                "\\u001b[31m",
                "\\u2028",
                "\\ud800",
            ]);
            format!("{{\"{key}\":0}}").into_bytes()
        }
        48..=59 => {
            about.push("wrong types");
            object_of_fields(route, random, |_, random| random_wrong_value(random)).into_bytes()
        }
        60..=61 => {
            about.push("huge field name");
            // Quoted into the error message twice (header and body), which together would
            // outgrow the largest message NATS carries (1 MiB).
            let name = "k".repeat(random.below(400_000) + 520_000);
            format!("{{\"{name}\":1}}").into_bytes()
        }
        62..=67 => {
            about.push("long strings");
            let text = "\u{1F600}\u{0301}".repeat(random.below(5_000) + 1);
            object_of_fields(route, random, |_, _| Value::from(text.clone()).to_string())
                .into_bytes()
        }
        _ => {
            about.push("plausible");
            object_of_fields(route, random, |_, random| {
                Value::from(String::from_utf8_lossy(&random_text(random)).into_owned()).to_string()
            })
            .into_bytes()
        }
    }
}

/// A JSON object with some of the route's fields (and an unknown one now and then), each
/// value written by `value`.
fn object_of_fields(
    route: &api::Route,
    random: &mut Random,
    mut value: impl FnMut(&api::Field, &mut Random) -> String,
) -> String {
    let mut members = Vec::new();
    for field in route.request_fields {
        if random.below(3) != 0 {
            let value = value(field, random);
            members.push(format!("\"{}\":{value}", field.name));
        }
    }
    if random.below(4) == 0 {
        members.push("\"not_a_field\":1".to_owned());
    }
    format!("{{{}}}", members.join(","))
}

fn random_wrong_value(random: &mut Random) -> String {
    random
        .pick(&[
            "null",
            "true",
            "[]",
            "{}",
            "\"\"",
            "\"12\"",
            "-1",
            "1.5",
            "[1,2,3]",
            "{\"minor_units\":\"x\",\"currency\":5}",
            "\"not-a-uuid\"",
        ])
        .to_owned()
}

fn random_text(random: &mut Random) -> Vec<u8> {
    let length = random.below(40);
    (0..length)
        .map(|_| b"abcXYZ019 @.-_\t"[random.below(15)])
        .collect()
}

fn headers(
    random: &mut Random,
    tokens: &[String],
    about: &mut Vec<&'static str>,
) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = Vec::new();
    let mut add = |name: &'static str, value: Vec<u8>| {
        if let Ok(value) = HeaderValue::from_bytes(&value) {
            headers.push((HeaderName::from_static(name), value));
        }
    };
    match random.below(6) {
        0 | 1 => {
            let token = &tokens[random.below(tokens.len())];
            add("authorization", format!("Bearer {token}").into_bytes());
        }
        2 => {
            about.push("bad authorization");
            let value = match random.below(5) {
                0 => b"Bearer ".to_vec(),
                1 => b"Basic YWxhZGRpbjpvcGVuc2VzYW1l".to_vec(),
                2 => [b"Bearer ".as_slice(), &random.header_bytes(64)].concat(),
                3 => [b"Bearer ".as_slice(), &vec![b'a'; 16 * 1024]].concat(),
                _ => b"Bearer a.b.c".to_vec(),
            };
            add("authorization", value);
        }
        _ => {}
    }
    match random.below(6) {
        0 => add("content-type", b"application/json".to_vec()),
        1 => {
            about.push("bad content type");
            add(
                "content-type",
                random
                    .pick(&[
                        "text/plain",
                        "application/protobuf",
                        "application/x-www-form-urlencoded",
                        "application/json; charset=\tx",
                        "application/json\u{0}",
                        "*/*",
                    ])
                    .as_bytes()
                    .to_vec(),
            );
        }
        2 => {
            about.push("odd content type");
            add("content-type", random.header_bytes(30));
        }
        _ => {}
    }
    if random.below(4) == 0 {
        about.push("odd request id");
        let value = match random.below(3) {
            0 => random.header_bytes(40),
            1 => vec![b'r'; 8 * 1024],
            _ => b"id\twith\ttabs".to_vec(),
        };
        add("x-request-id", value);
    }
    if random.below(5) == 0 {
        about.push("odd trace context");
        add("traceparent", random.header_bytes(55));
        add("tracestate", random.header_bytes(200));
    }
    if random.below(5) == 0 {
        about.push("odd forwarding headers");
        add("x-forwarded-for", random.header_bytes(30));
        add("x-forwarded-proto", random.header_bytes(8));
    }
    match random.below(8) {
        // A few keys shared by every route and body: repeats, replays, reuse and races.
        0 | 1 => {
            about.push("idempotency key");
            add(
                "idempotency-key",
                format!("fuzz-key-{}", random.below(4)).into_bytes(),
            );
        }
        2 => {
            about.push("odd idempotency key");
            let value = match random.below(2) {
                0 => random.header_bytes(40),
                _ => vec![b'k'; 4 * 1024],
            };
            add("idempotency-key", value);
        }
        _ => {}
    }
    if random.below(8) == 0 {
        about.push("huge header");
        add("x-anything", vec![b'h'; 32 * 1024]);
    }
    if random.below(5) == 0 {
        add(
            random.pick(&[
                "x-principal-id",
                "x-principal-roles",
                "x-timeout-ms",
                "emporium-deadline",
                "x-client-ip",
            ]),
            random.header_bytes(20),
        );
    }
    headers
}

/// SplitMix64: small, seeded, good enough to pick test inputs.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound`.
    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        choices[self.below(choices.len())]
    }

    fn bytes(&mut self, length: usize) -> Vec<u8> {
        (0..length).map(|_| self.next() as u8).collect()
    }

    /// Bytes HTTP allows in a header value: visible ASCII, space, tab and obs-text.
    fn header_bytes(&mut self, length: usize) -> Vec<u8> {
        (0..length)
            .map(|_| match self.next() as u8 {
                b @ (0x20..=0x7e | 0x80..=0xff | b'\t') => b,
                _ => b'\t',
            })
            .collect()
    }
}
