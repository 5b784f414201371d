//! A saga's steps continue the trace of the request that created the instance, even when a
//! replica that did not create it runs them from its poll, as after a restart.

use std::sync::{Arc, Mutex, OnceLock};

use opentelemetry::trace::TracerProvider as _;
use saga::{Definition, Outcome, State};
use telemetry::propagation::TraceHeaders;
use tracing::Instrument as _;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::{Runner, TestEnv, Toy, config, finished};

/// The trace the request that creates the saga belongs to.
const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// What one step saw of the trace.
#[derive(Clone, Debug)]
struct Seen {
    step: String,
    /// The context current in the step, as a call would send it.
    current: TraceHeaders,
    /// What the step's context hands it: the instance's context and the one to send.
    kept: TraceHeaders,
    to_send: TraceHeaders,
}

type Sent = Arc<Mutex<Vec<Seen>>>;

fn traced(sent: &Sent) -> Definition<Toy> {
    let mut definition = Definition::new("traced");
    for step in ["reserve", "charge"] {
        let sent = sent.clone();
        definition = definition.remote(step, move |ctx, data| {
            let sent = sent.clone();
            async move {
                sent.lock().unwrap().push(Seen {
                    step: step.to_owned(),
                    current: telemetry::propagation::current(&TraceHeaders::default()),
                    kept: ctx.trace(),
                    to_send: ctx.current_trace(),
                });
                Ok(Outcome::Done(data))
            }
        });
    }
    definition
}

/// Installs, once for this test binary, a global subscriber whose spans get OpenTelemetry
/// contexts (nothing is exported). Global rather than scoped: tracing caches whether a callsite
/// is enabled by the dispatcher of the thread that first reaches it, so a subscriber scoped to
/// one test misses the spans other tests' threads reached first.
fn install_tracer() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("saga-it")));
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in the saga tests");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_run_by_another_replica_continue_the_trace_that_created_the_saga() {
    install_tracer();
    let env = TestEnv::start().await;
    let sent = Sent::default();

    // The request's span continues its caller's trace; the instance is created inside it by a
    // replica that stops before driving it.
    let request = tracing::info_span!("request");
    telemetry::propagation::set_parent(
        &request,
        &TraceHeaders {
            traceparent: Some(CALLER.to_owned()),
            tracestate: None,
        },
    );
    let creator = env.orchestrator(config(), vec![traced(&sent)]);
    let id = env
        .create(&creator, "traced")
        .instrument(request.clone())
        .await;
    drop(creator);
    drop(request);
    let stored: Option<String> =
        sqlx::query_scalar("SELECT traceparent FROM saga_instances WHERE id = $1")
            .bind(id)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    let stored = stored.expect("the instance keeps the request's trace context");
    assert!(stored.contains(TRACE_ID), "{stored}");
    assert_ne!(
        stored, CALLER,
        "the request's own span is the parent, not its caller"
    );

    // Another replica takes the instance once the creator's claim has expired.
    let replica = env.orchestrator(config(), vec![traced(&sent)]);
    let runner = Runner::start(&replica);
    assert_eq!(finished(&replica, id).await.state, State::Completed);
    runner.stop().await;

    let sent = sent.lock().unwrap().clone();
    let steps: Vec<&str> = sent.iter().map(|seen| seen.step.as_str()).collect();
    assert_eq!(steps, ["reserve", "charge"]);
    let mut span_ids = Vec::new();
    for Seen {
        step,
        current,
        kept,
        to_send,
    } in &sent
    {
        assert_eq!(current.trace_id(), Some(TRACE_ID), "{step}: {current:?}");
        let traceparent = current.traceparent.as_deref().unwrap();
        assert_ne!(
            traceparent, stored,
            "{step} sends its own span as the parent"
        );
        span_ids.push(traceparent.to_owned());
        // The step is handed the instance's context, and sends its own span's.
        assert_eq!(kept.traceparent.as_deref(), Some(stored.as_str()), "{step}");
        assert_eq!(to_send, current, "{step}");
    }
    assert_ne!(span_ids[0], span_ids[1], "each step has a span of its own");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_created_outside_any_span_keeps_the_incoming_trace_headers() {
    install_tracer();
    let env = TestEnv::start().await;
    let sent = Sent::default();
    // A request whose span has no trace context (nothing exported): the headers it came with
    // are what the instance keeps, so the trace id still reaches the steps' calls.
    let incoming = TraceHeaders {
        traceparent: Some(CALLER.to_owned()),
        tracestate: Some("vendor=1".to_owned()),
    };
    let orchestrator = env.orchestrator(config(), vec![traced(&sent)]);
    let id = env
        .create_in_trace(&orchestrator, "traced", &incoming)
        .await;
    let stored: (Option<String>, Option<String>) =
        sqlx::query_as("SELECT traceparent, tracestate FROM saga_instances WHERE id = $1")
            .bind(id)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(
        stored,
        (incoming.traceparent.clone(), incoming.tracestate.clone())
    );

    orchestrator.drive(id);
    assert_eq!(finished(&orchestrator, id).await.state, State::Completed);
    let sent = sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 2, "{sent:?}");
    for Seen {
        step,
        kept,
        to_send,
        ..
    } in &sent
    {
        assert_eq!(kept, &incoming, "{step}");
        assert_eq!(to_send.trace_id(), Some(TRACE_ID), "{step}: {to_send:?}");
    }
}
