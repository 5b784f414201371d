//! The gateway's settings, read once at start from flags or environment variables.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use config::{NatsArgs, RedisArgs, TelemetryArgs};

/// Settings of the gateway binary.
#[derive(clap::Parser, Clone, Debug)]
#[command(
    name = "gateway",
    version,
    about = "The Emporium HTTP API gateway: HTTP in, NATS request/reply out."
)]
pub struct Config {
    /// The public HTTP port: the API, /openapi.json and the health probes; 0 picks a free one.
    #[arg(long = "port", env = "GATEWAY_PORT", default_value_t = 8080)]
    pub port: u16,
    /// The address to listen on.
    #[arg(long = "bind", env = "GATEWAY_BIND", default_value = "0.0.0.0")]
    pub bind: IpAddr,
    /// Address of the admin HTTP server, kept off the public port: /metrics, /docs,
    /// /openapi.json and the health probes. A free port on 127.0.0.1 when not given (the
    /// gateway logs the one it bound).
    #[arg(long = "admin-addr", env = "ADMIN_ADDR")]
    pub admin_addr: Option<SocketAddr>,
    #[command(flatten)]
    pub nats: NatsArgs,
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    /// A JWKS document with the public keys access tokens are signed with, read at start.
    #[arg(
        long = "jwt-jwks-file",
        env = "JWT_JWKS_FILE",
        conflicts_with = "jwt_jwks_url"
    )]
    pub jwt_jwks_file: Option<PathBuf>,
    /// The URL of a JWKS document, fetched at start and refreshed periodically.
    #[arg(
        long = "jwt-jwks-url",
        env = "JWT_JWKS_URL",
        conflicts_with = "jwt_jwks_nats"
    )]
    pub jwt_jwks_url: Option<String>,
    /// Fetch the key set from the auth service over NATS (what `/.well-known/jwks.json`
    /// serves) at start, and refresh it periodically: no URL and no shared secret to
    /// configure. The usual choice when the auth service runs on the same NATS.
    #[arg(
        long = "jwt-jwks-nats",
        env = "JWT_JWKS_NATS",
        conflicts_with = "jwt_jwks_file"
    )]
    pub jwt_jwks_nats: bool,
    /// A file holding the public NKEY ("U...") of the auth service's NATS identity. With
    /// `--jwt-jwks-nats` the key set must be signed by it: keys answered by anyone else are
    /// refused. The dev stack and docker-compose write it when they make the NATS credentials.
    #[arg(long = "jwt-jwks-signer-file", env = "JWT_JWKS_SIGNER_FILE")]
    pub jwt_jwks_signer_file: Option<PathBuf>,
    /// How long keys fetched from the auth service (URL or NATS) stay trusted when they can no
    /// longer be refreshed, in seconds; after that every token is refused until a fetch
    /// succeeds, so a key withdrawn while the gateway could not see it is not trusted forever.
    #[arg(
        long = "jwt-jwks-max-stale-seconds",
        env = "JWT_JWKS_MAX_STALE_SECONDS",
        default_value_t = 3600
    )]
    pub jwt_jwks_max_stale_seconds: u64,
    /// How often the key set is fetched again (URL or NATS), in seconds.
    #[arg(
        long = "jwt-jwks-refresh-seconds",
        env = "JWT_JWKS_REFRESH_SECONDS",
        default_value_t = 300
    )]
    pub jwt_jwks_refresh_seconds: u64,
    /// The `iss` access tokens must carry.
    #[arg(long = "jwt-issuer", env = "JWT_ISSUER", default_value = tokens::DEFAULT_ISSUER)]
    pub jwt_issuer: String,
    /// The `aud` access tokens must carry.
    #[arg(long = "jwt-audience", env = "JWT_AUDIENCE", default_value = tokens::DEFAULT_AUDIENCE)]
    pub jwt_audience: String,
    /// Origins browsers may call the API from, comma separated; "*" allows any (development
    /// only). Empty: no cross-origin access.
    #[arg(
        long = "cors-allowed-origins",
        env = "CORS_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_allowed_origins: Vec<String>,
    /// The largest request body accepted, in bytes; larger bodies get 413.
    #[arg(long = "body-limit-bytes", env = "BODY_LIMIT_BYTES", default_value_t = 1024 * 1024)]
    pub body_limit_bytes: usize,
    /// The time a request may take end to end, in milliseconds; it is also the deadline the
    /// services see. Slower requests get 504.
    #[arg(
        long = "request-timeout-ms",
        env = "REQUEST_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub request_timeout_ms: u64,
    /// Token buckets per rate class: "class=capacity/refill_seconds,...". A bucket holds
    /// `capacity` requests and refills completely in `refill_seconds`. Routes of a class not
    /// listed use "default".
    #[arg(
        long = "rate-limits",
        env = "RATE_LIMITS",
        default_value = "default=600/60,search=300/60,auth=30/60"
    )]
    pub rate_limits: RateLimits,
    /// The gateway runs behind one reverse proxy or load balancer of our own that appends
    /// the address it saw to X-Forwarded-For (and sets X-Forwarded-Proto). The client address
    /// (rate limits, the X-Client-Ip services count login attempts by) is then the right-most
    /// X-Forwarded-For entry, the one that proxy appended; anything left of it is whatever
    /// the client claimed and is ignored. Off (the default), the client address is the TCP
    /// peer and X-Forwarded-For is ignored: never turn it on where clients reach the gateway
    /// directly, or each can pick its own address.
    #[arg(long = "trust-forwarded-for", env = "TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,
    /// Clients reach the gateway over HTTPS (TLS ends at a proxy in front of it): every
    /// answer carries Strict-Transport-Security. Without it the header is sent only when a
    /// trusted proxy says so (X-Forwarded-Proto: https with --trust-forwarded-for).
    #[arg(long = "public-tls", env = "PUBLIC_TLS")]
    pub public_tls: bool,
    /// Requests handled at once; past it the gateway answers 503 with Retry-After at once
    /// (load shedding) instead of queueing. The health probes are never shed.
    #[arg(long = "max-in-flight", env = "MAX_IN_FLIGHT", default_value_t = 1024)]
    pub max_in_flight: usize,
    /// Live connections (order events over SSE or WebSocket) this gateway holds at once;
    /// past it a new one is refused with 503.
    #[arg(
        long = "live-max-connections",
        env = "LIVE_MAX_CONNECTIONS",
        default_value_t = 20_000
    )]
    pub live_max_connections: usize,
    /// Orders one WebSocket may follow at once.
    #[arg(
        long = "live-max-subscriptions",
        env = "LIVE_MAX_SUBSCRIPTIONS",
        default_value_t = 32
    )]
    pub live_max_subscriptions: usize,
    /// Events queued for one live connection; a client that lets more pile up is too slow
    /// and is disconnected.
    #[arg(long = "live-queue", env = "LIVE_QUEUE", default_value_t = 64)]
    pub live_queue: usize,
    /// How often an idle live connection gets a heartbeat (SSE comment, WebSocket ping), in
    /// seconds, so proxies keep it open.
    #[arg(
        long = "live-heartbeat-seconds",
        env = "LIVE_HEARTBEAT_SECONDS",
        default_value_t = 15
    )]
    pub live_heartbeat_seconds: u64,
    /// The built web app (`index.html` and `assets/`, from `npm run build` in gateway/web) to
    /// serve at `/` on the public port beside the API. Without it the gateway serves the API
    /// only.
    #[arg(long = "web-dir", env = "WEB_DIR")]
    pub web_dir: Option<PathBuf>,
}

impl Config {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The configured admin address, or a free port on 127.0.0.1.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
    }
}

/// One token bucket: `capacity` requests, refilled completely over `refill`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub capacity: u32,
    pub refill: Duration,
}

/// The token bucket of every rate class; always has a "default" class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimits {
    classes: BTreeMap<String, RateLimit>,
}

impl RateLimits {
    pub const DEFAULT_CLASS: &'static str = "default";
    const BUILT_IN_DEFAULT: RateLimit = RateLimit {
        capacity: 600,
        refill: Duration::from_secs(60),
    };

    /// The limit of `class`, or the default class's when `class` has none of its own.
    pub fn limit_for<'a>(&'a self, class: &'a str) -> (&'a str, RateLimit) {
        match self.classes.get(class) {
            Some(limit) => (class, *limit),
            None => (Self::DEFAULT_CLASS, self.classes[Self::DEFAULT_CLASS]),
        }
    }
}

impl FromStr for RateLimits {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut classes = BTreeMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (class, limit) = entry
                .split_once('=')
                .ok_or_else(|| format!("{entry:?}: expected class=capacity/refill_seconds"))?;
            let (capacity, refill) = limit
                .split_once('/')
                .ok_or_else(|| format!("{entry:?}: expected class=capacity/refill_seconds"))?;
            let class = class.trim();
            if class.is_empty() {
                return Err(format!("{entry:?}: the class name is empty"));
            }
            let capacity: u32 = capacity
                .trim()
                .parse()
                .ok()
                .filter(|c| *c > 0)
                .ok_or_else(|| format!("{entry:?}: capacity must be a positive integer"))?;
            let refill_seconds: u64 = refill
                .trim()
                .parse()
                .ok()
                .filter(|s| *s > 0)
                .ok_or_else(|| format!("{entry:?}: refill_seconds must be a positive integer"))?;
            let limit = RateLimit {
                capacity,
                refill: Duration::from_secs(refill_seconds),
            };
            if classes.insert(class.to_owned(), limit).is_some() {
                return Err(format!("rate class {class:?} is listed twice"));
            }
        }
        classes
            .entry(Self::DEFAULT_CLASS.to_owned())
            .or_insert(Self::BUILT_IN_DEFAULT);
        Ok(Self { classes })
    }
}

impl fmt::Display for RateLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (class, limit) in &self.classes {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{class}={}/{}", limit.capacity, limit.refill.as_secs())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn rate_limits_parse_and_fall_back_to_default() {
        let limits: RateLimits = "default=600/60, search=300/60,auth=20/60".parse().unwrap();
        assert_eq!(
            limits.limit_for("search"),
            (
                "search",
                RateLimit {
                    capacity: 300,
                    refill: Duration::from_secs(60)
                }
            )
        );
        assert_eq!(limits.limit_for("nonesuch").0, "default");
        assert_eq!(limits.limit_for("nonesuch").1.capacity, 600);
        assert_eq!(
            limits.to_string(),
            "auth=20/60,default=600/60,search=300/60"
        );
    }

    #[test]
    fn a_missing_default_class_gets_the_built_in_one() {
        let limits: RateLimits = "search=5/1".parse().unwrap();
        assert_eq!(limits.limit_for("default").1, RateLimits::BUILT_IN_DEFAULT);
    }

    #[test]
    fn malformed_rate_limits_are_refused() {
        for bad in [
            "default",
            "default=600",
            "default=0/60",
            "default=600/0",
            "default=-1/60",
            "=5/5",
            "a=1/1,a=2/2",
        ] {
            assert!(bad.parse::<RateLimits>().is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let config = Config::try_parse_from(["gateway"]).unwrap();
        assert_eq!(config.port, 8080);
        assert_eq!(config.jwt_issuer, tokens::DEFAULT_ISSUER);
        assert_eq!(config.jwt_audience, tokens::DEFAULT_AUDIENCE);
        assert_eq!(config.body_limit_bytes, 1024 * 1024);
        assert_eq!(config.rate_limits.limit_for("search").1.capacity, 300);
        assert!(config.cors_allowed_origins.is_empty());
        assert!(!config.trust_forwarded_for);
        assert!(!config.public_tls);
        assert_eq!(config.max_in_flight, 1024);
        assert!(config.web_dir.is_none(), "the API only unless told");
        assert_eq!(
            config.admin_addr(),
            SocketAddr::from(([127, 0, 0, 1], 0)),
            "a free local port unless told"
        );

        let config = Config::try_parse_from([
            "gateway",
            "--cors-allowed-origins",
            "https://shop.example,https://admin.example",
        ])
        .unwrap();
        assert_eq!(config.cors_allowed_origins.len(), 2);
    }
}
