use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rpc::{
    Access, Context, Endpoint, Error, Limits, MethodDescriptor, Principal, RunningService, Service,
};
use serde::{Deserialize, Serialize};

/// A message for the test service: prost for protobuf, serde for JSON, like generated ones.
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Echo {
    #[prost(string, tag = "1")]
    pub text: String,
    #[prost(uint64, tag = "2")]
    pub sleep_ms: u64,
}

/// No declared rules: the VALIDATE endpoint checks its own.
impl rpc::rules::Validate for Echo {
    fn validate(&self, _at: &str, _violations: &mut rpc::Violations) {}
}

const fn method(name: &'static str, subject: &'static str, access: Access) -> MethodDescriptor {
    MethodDescriptor {
        service: "echo",
        method: name,
        subject,
        access,
        request_type: "test.Echo",
        response_type: "test.Echo",
    }
}

pub static SAY: MethodDescriptor = method("say", "echo.say", Access::Public);
pub static PANIC: MethodDescriptor = method("panic", "echo.panic", Access::Public);
pub static SLOW: MethodDescriptor = method("slow", "echo.slow", Access::Public);
pub static ADMIN: MethodDescriptor = method("admin", "echo.admin", Access::Admin);
pub static VALIDATE: MethodDescriptor = method("validate", "echo.validate", Access::Public);
pub static GATE: MethodDescriptor = method("gate", "echo.gate", Access::Public);
pub static GROW: MethodDescriptor = method("grow", "echo.grow", Access::Public);
pub static REMAINING: MethodDescriptor = method("remaining", "echo.remaining", Access::Public);

/// The methods as types, as the contracts crate generates them.
macro_rules! echo_methods {
    ($($name:ident => $descriptor:ident),* $(,)?) => {$(
        pub enum $name {}
        impl rpc::Method for $name {
            type Request = Echo;
            type Response = Echo;
            const DESCRIPTOR: &'static MethodDescriptor = &$descriptor;
        }
    )*};
}

echo_methods!(
    Say => SAY,
    Panic => PANIC,
    Slow => SLOW,
    AdminOnly => ADMIN,
    Validate => VALIDATE,
    Gate => GATE,
    Grow => GROW,
    Remaining => REMAINING,
);

/// Counts handlers running at once, and the most ever seen; holds the GATE endpoint's
/// handlers until the test lets them through.
pub struct Gauge {
    now: AtomicUsize,
    pub max: AtomicUsize,
    pub served: AtomicUsize,
    /// GATE handlers that started: the handler's side effect.
    pub entered: AtomicUsize,
    /// One permit lets one GATE handler finish.
    pub gate: tokio::sync::Semaphore,
}

impl Default for Gauge {
    fn default() -> Self {
        Self {
            now: AtomicUsize::new(0),
            max: AtomicUsize::new(0),
            served: AtomicUsize::new(0),
            entered: AtomicUsize::new(0),
            gate: tokio::sync::Semaphore::new(0),
        }
    }
}

pub fn endpoints(gauge: Arc<Gauge>) -> Vec<Endpoint> {
    let gate = gauge.clone();
    vec![
        Endpoint::bind::<Gate, _, _>(move |_ctx: Context, request: Echo| {
            let gauge = gate.clone();
            async move {
                gauge.entered.fetch_add(1, Ordering::SeqCst);
                gauge
                    .gate
                    .acquire()
                    .await
                    .expect("the gate is open")
                    .forget();
                Ok(request)
            }
        }),
        // Replies with `text` repeated `sleep_ms` times.
        Endpoint::bind::<Grow, _, _>(|_ctx: Context, request: Echo| async move {
            Ok(Echo {
                text: request.text.repeat(request.sleep_ms as usize),
                sleep_ms: 0,
            })
        }),
        // Replies with the milliseconds the handler has left.
        Endpoint::bind::<Remaining, _, _>(|ctx: Context, _request: Echo| async move {
            let remaining = ctx.remaining().expect("a handler always has a deadline");
            Ok(Echo {
                text: remaining.as_millis().to_string(),
                sleep_ms: 0,
            })
        }),
        Endpoint::bind::<Say, _, _>(|_ctx: Context, request: Echo| async move { Ok(request) }),
        Endpoint::bind::<Panic, _, _>(|_ctx: Context, request: Echo| async move {
            if request.text == "boom" {
                panic!("handler blew up");
            }
            Ok(request)
        }),
        Endpoint::bind::<Slow, _, _>(move |_ctx: Context, request: Echo| {
            let gauge = gauge.clone();
            async move {
                let now = gauge.now.fetch_add(1, Ordering::SeqCst) + 1;
                gauge.max.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(request.sleep_ms)).await;
                gauge.now.fetch_sub(1, Ordering::SeqCst);
                gauge.served.fetch_add(1, Ordering::SeqCst);
                Ok(request)
            }
        }),
        Endpoint::bind::<AdminOnly, _, _>(|ctx: Context, request: Echo| async move {
            let principal = ctx.require_principal()?;
            Ok(Echo {
                text: principal.user_id.clone(),
                ..request
            })
        }),
        Endpoint::bind::<Validate, _, _>(|_ctx: Context, request: Echo| async move {
            let mut violations = rpc::Violations::new();
            violations.check(!request.text.is_empty(), "text", "must not be empty");
            violations.check(request.sleep_ms < 10, "sleep_ms", "must be below 10");
            violations.into_result()?;
            Ok::<_, Error>(request)
        }),
    ]
}

pub struct TestService {
    pub nats: testkit::NatsServer,
    pub client: async_nats::Client,
    pub rpc: rpc::Client,
    pub gauge: Arc<Gauge>,
}

impl TestService {
    pub async fn start() -> (Self, RunningService) {
        Self::start_with(Limits::default()).await
    }

    pub async fn start_with(limits: Limits) -> (Self, RunningService) {
        let nats = testkit::NatsServer::start().await.expect("nats-server");
        let client = nats.connect().await;
        let gauge = Arc::new(Gauge::default());
        let running = Self::replica(&client, limits, gauge.clone()).await;
        let rpc = rpc::Client::new(client.clone()).with_default_timeout(Duration::from_secs(5));
        (
            Self {
                nats,
                client,
                rpc,
                gauge,
            },
            running,
        )
    }

    pub async fn replica(
        client: &async_nats::Client,
        limits: Limits,
        gauge: Arc<Gauge>,
    ) -> RunningService {
        Service::new("echo", "1.2.3")
            .description("echoes what it is sent")
            .endpoints(endpoints(gauge))
            .limits(limits)
            .start(client.clone())
            .await
            .expect("service starts")
    }
}

pub fn admin() -> Context {
    Context::background().with_principal(Principal {
        user_id: "admin-1".into(),
        roles: vec!["admin".into()],
    })
}

pub fn customer() -> Context {
    Context::background().with_principal(Principal {
        user_id: "customer-1".into(),
        roles: vec!["customer".into()],
    })
}

pub fn echo(text: &str) -> Echo {
    Echo {
        text: text.into(),
        sleep_ms: 0,
    }
}
