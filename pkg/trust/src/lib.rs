//! Who may do what on NATS.
//!
//! The platform's nats-server lets nobody in without a credential. Each process connects as
//! one [`Identity`]: a service (one per contract), the gateway, or the operator (the `nats`
//! CLI and `cargo xtask` commands). What each may publish and subscribe is generated here from
//! the contracts (`api::CONTRACTS`, `api::EVENTS`, `api::ROUTES`) and the event names of
//! `pkg/events`, never written by hand:
//!
//! - only the gateway publishes to public, user and admin method subjects, so the principal
//!   headers a service reads were set by the gateway;
//! - a service subscribes to its own subjects, publishes to the internal methods its contract
//!   declares it calls (`calls` in its service option) and to its own event domains only,
//!   answers requests through `allow_responses`, and reads replies from its private inbox
//!   (`_INBOX_<user>`, [`config::inbox_prefix`]);
//! - the JetStream API is open to each only for its own streams and durable consumers, and
//!   `$SRV` (NATS micro discovery) only for answering about itself; the gateway alone asks
//!   every instance (`$SRV.INFO`, `$SRV.STATS`) for `GET /api/v1/admin/services`.
//!
//! The gateway's own contract (`api::gateway`: the routes it answers itself) is served by no
//! service, so it is no identity, and nobody may publish or subscribe to its subjects.
//!
//! [`Credentials`] makes one NKEY per identity at start-up (the dev stack, the tests'
//! nats-server, and docker-compose's `nats-credentials` step) and the `authorization` block
//! nats-server includes. Seeds are written with mode 0600 and never committed.

mod credentials;

use std::collections::BTreeSet;

pub use credentials::{AUTHORIZATION_FILE, Credentials, SIGNER_FILE};

/// The internal methods the gateway calls. It has no contract of its own; this is the one
/// exception the architecture names: it fetches the keys it verifies tokens with from auth.
pub const GATEWAY_CALLS: &[&rpc::MethodDescriptor] = &[&api::auth::methods::GET_SIGNED_KEY_SET];

/// The NATS micro discovery requests the gateway sends to every service instance at once
/// (`gateway/src/discovery.rs`): each instance's description and endpoints, and its counts.
/// Not `PING` (INFO says everything it says), and never one addressed to a single service.
pub const GATEWAY_DISCOVERY: [&str; 2] = ["$SRV.INFO", "$SRV.STATS"];

/// The event domains whose streams the gateway reads for live order status, the route's
/// domain first.
const GATEWAY_LIVE_DOMAINS: [&str; 2] = ["order", "suborder"];

/// The identity whose NKEY signs the key set the gateway trusts: the auth service.
pub const KEY_SET_SIGNER: &str = api::auth::SERVICE_NAME;

/// The JetStream API's subject prefix.
const JS_API: &str = "$JS.API";

/// One NATS user of the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    /// A service, as its contract describes it.
    Service(&'static api::Contract),
    /// The HTTP gateway.
    Gateway,
    /// People and tools operating the platform: the `nats` CLI, `cargo xtask dlq|events`.
    /// Everything is allowed.
    Operator,
}

impl Identity {
    /// Every identity of the platform: each contract's service, the gateway, the operator.
    pub fn all() -> Vec<Identity> {
        api::CONTRACTS
            .iter()
            .filter(|contract| is_served(contract))
            .map(Identity::Service)
            .chain([Identity::Gateway, Identity::Operator])
            .collect()
    }

    /// The identity named `name` ("product", "gateway", "operator").
    pub fn named(name: &str) -> Option<Identity> {
        Identity::all().into_iter().find(|i| i.name() == name)
    }

    /// The user name: the service's name, "gateway" or "operator". Also its seed's file name
    /// (`<name>.nk`) and its inbox prefix (`_INBOX_<name>`).
    pub fn name(&self) -> &'static str {
        match self {
            Identity::Service(contract) => contract.service.name,
            Identity::Gateway => "gateway",
            Identity::Operator => "operator",
        }
    }

    /// What this identity may publish and subscribe.
    pub fn permissions(&self) -> Permissions {
        match self {
            Identity::Service(contract) => service_permissions(contract),
            Identity::Gateway => gateway_permissions(),
            Identity::Operator => Permissions {
                publish: set([">"]),
                subscribe: set([">"]),
                allow_responses: false,
            },
        }
    }
}

/// A user's permissions, as nats-server's `permissions` block takes them: subjects it may
/// publish to, subjects it may subscribe to (wildcards allowed), and whether it may answer
/// the requests it receives (once each, to the reply subject they carry).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Permissions {
    pub publish: BTreeSet<String>,
    pub subscribe: BTreeSet<String>,
    pub allow_responses: bool,
}

impl Permissions {
    /// The `permissions` block of nats-server's configuration, as JSON (which its
    /// configuration format reads).
    pub fn to_json(&self) -> serde_json::Value {
        let mut block = serde_json::json!({
            "publish": { "allow": self.publish },
            "subscribe": { "allow": self.subscribe },
        });
        if self.allow_responses {
            block["allow_responses"] = serde_json::Value::Bool(true);
        }
        block
    }

    /// Whether a literal subject is covered by one of `patterns` with NATS wildcard rules
    /// (`*` one token, `>` the rest): what the server will decide, for tests and reports.
    pub fn allows(patterns: &BTreeSet<String>, subject: &str) -> bool {
        patterns
            .iter()
            .any(|pattern| subject_matches(pattern, subject))
    }
}

fn set<const N: usize>(items: [&str; N]) -> BTreeSet<String> {
    items.into_iter().map(str::to_owned).collect()
}

/// NATS subject matching of a literal `subject` against `pattern`.
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    for token in pattern.split('.') {
        match (token, subject_tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (literal, Some(actual)) if literal == actual => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}

/// Whether a service serves `contract`: every contract but the gateway's own, whose routes
/// the gateway answers without NATS.
pub fn is_served(contract: &api::Contract) -> bool {
    contract.service.name != api::gateway::SERVICE_NAME
}

/// What every connection needs: its own inbox for replies.
fn inbox(name: &str) -> String {
    format!("{}.>", config::inbox_prefix(name))
}

fn service_permissions(contract: &'static api::Contract) -> Permissions {
    let name = contract.service.name;
    let mut publish = BTreeSet::new();
    let mut subscribe = BTreeSet::new();

    // Its endpoints (queue subscriptions on its own subjects) and its replies.
    subscribe.insert(format!("{name}.>"));
    subscribe.insert(inbox(name));
    // NATS micro discovery: PING, INFO and STATS for all services, this one, or this instance.
    subscribe.insert("$SRV.*".to_owned());
    subscribe.insert(format!("$SRV.*.{name}"));
    subscribe.insert(format!("$SRV.*.{name}.*"));
    // The internal methods it declares it calls.
    for method in contract.calls {
        publish.insert(method.subject.to_owned());
    }

    // The event domains it produces: publish their events, declare their streams.
    let produced: BTreeSet<&str> = api::EVENTS
        .iter()
        .filter(|e| e.producer == name)
        .map(|e| e.domain)
        .collect();
    for domain in produced {
        publish.insert(events::names::stream_subjects(domain));
        declare_stream(&mut publish, &events::names::stream_name(domain));
    }

    // The events it consumes: its durable consumers, their acknowledgements, the messages it
    // copies to the dead letters, and the advisories that tell it to.
    for event in api::EVENTS.iter().filter(|e| e.consumers.contains(&name)) {
        let stream = events::names::stream_of(event);
        let Ok(durable) = events::names::durable_name(name, event) else {
            continue;
        };
        declare_stream(&mut publish, &stream);
        for action in ["CREATE", "DURABLE.CREATE", "INFO"] {
            publish.insert(format!("{JS_API}.CONSUMER.{action}.{stream}.{durable}"));
        }
        publish.insert(format!("{JS_API}.CONSUMER.CREATE.{stream}.{durable}.>"));
        publish.insert(format!("{JS_API}.CONSUMER.MSG.NEXT.{stream}.{durable}"));
        publish.insert(format!("$JS.ACK.{stream}.{durable}.>"));
        publish.insert(format!("{JS_API}.STREAM.MSG.GET.{stream}"));
        publish.insert(format!("{JS_API}.DIRECT.GET.{stream}"));
        if let Ok(subject) = events::names::dead_letter_subject(&durable) {
            publish.insert(subject);
        }
        // A redrive puts a dead letter back on this durable alone.
        if let Ok(subject) = events::names::redrive_subject(event.domain, &durable) {
            publish.insert(subject);
        }
        declare_stream(&mut publish, events::names::DEAD_LETTER_STREAM);
        // Its redrive endpoint reads the dead letters by sequence and deletes those it put
        // back (it checks each names one of its own durables).
        publish.insert(format!(
            "{JS_API}.STREAM.MSG.GET.{}",
            events::names::DEAD_LETTER_STREAM
        ));
        publish.insert(format!(
            "{JS_API}.STREAM.MSG.DELETE.{}",
            events::names::DEAD_LETTER_STREAM
        ));
        subscribe.insert(events::names::max_deliveries_advisory(&stream, &durable));
        subscribe.insert(events::names::terminated_advisory(&stream, &durable));
    }
    settings_bucket(name, &mut publish);
    Permissions {
        publish,
        subscribe,
        allow_responses: true,
    }
}

/// The settings key-value bucket (`settings::BUCKET` of pkg/settings; apps/settings' tests
/// check the two agree) and the service that alone writes it.
pub const SETTINGS_BUCKET: &str = "settings";
pub const SETTINGS_WRITER: &str = "settings";

/// Every service reads and watches the settings bucket (pkg/settings: its info, direct gets,
/// an ordered consumer of its own with flow control, delivered to its inbox); only the
/// settings service creates it and puts values.
fn settings_bucket(name: &str, publish: &mut BTreeSet<String>) {
    let stream = format!("KV_{SETTINGS_BUCKET}");
    publish.insert(format!("{JS_API}.STREAM.INFO.{stream}"));
    publish.insert(format!("{JS_API}.STREAM.MSG.GET.{stream}"));
    publish.insert(format!("{JS_API}.DIRECT.GET.{stream}"));
    publish.insert(format!("{JS_API}.DIRECT.GET.{stream}.>"));
    publish.insert(format!("{JS_API}.CONSUMER.CREATE.{stream}"));
    publish.insert(format!("{JS_API}.CONSUMER.CREATE.{stream}.>"));
    // The client deletes the consumer it replaces when it recreates its watch.
    publish.insert(format!("{JS_API}.CONSUMER.DELETE.{stream}.>"));
    publish.insert(format!("$JS.FC.{stream}.>"));
    if name == SETTINGS_WRITER {
        // Creating a bucket reads the account's JetStream limits first.
        publish.insert(format!("{JS_API}.INFO"));
        declare_stream(publish, &stream);
        publish.insert(format!("$KV.{SETTINGS_BUCKET}.>"));
    }
}

/// Creating, updating and reading one stream (never deleting or purging it).
fn declare_stream(publish: &mut BTreeSet<String>, stream: &str) {
    for action in ["INFO", "CREATE", "UPDATE"] {
        publish.insert(format!("{JS_API}.STREAM.{action}.{stream}"));
    }
}

fn gateway_permissions() -> Permissions {
    let mut publish: BTreeSet<String> = api::CONTRACTS
        .iter()
        .filter(|c| is_served(c))
        .flat_map(|c| c.methods.iter())
        .filter(|m| m.access != rpc::Access::Internal)
        .map(|m| m.subject.to_owned())
        .collect();
    publish.extend(GATEWAY_CALLS.iter().map(|m| m.subject.to_owned()));
    // Service discovery: the replies come back to its inbox, one per instance.
    publish.extend(GATEWAY_DISCOVERY.map(str::to_owned));
    let mut subscribe = BTreeSet::from([inbox(Identity::Gateway.name())]);
    // Streaming routes follow one aggregate's events as they are published; the order's
    // are followed through JetStream instead (below).
    subscribe.extend(
        api::ROUTES
            .iter()
            .filter_map(|r| r.stream.as_ref())
            .filter(|s| s.domain != GATEWAY_LIVE_DOMAINS[0])
            .map(|s| events::names::stream_subjects(s.domain)),
    );
    // Live order status (gateway/src/live): ordered push consumers (ephemeral, no acks)
    // on the order streams, delivered to the gateway's inbox: read the stream's info,
    // create them (the client names a consumer it recreates), answer flow control. Never
    // a durable's MSG.NEXT or ACK, never DELETE (an abandoned ordered consumer expires).
    for domain in GATEWAY_LIVE_DOMAINS {
        let stream = events::names::stream_name(domain);
        publish.insert(format!("{JS_API}.STREAM.INFO.{stream}"));
        publish.insert(format!("{JS_API}.CONSUMER.CREATE.{stream}"));
        publish.insert(format!("{JS_API}.CONSUMER.CREATE.{stream}.>"));
        publish.insert(format!("$JS.FC.{stream}.>"));
    }
    // Dead letters (gateway/src/dead_letters.rs): it reads the DEAD_LETTERS stream (its info
    // with the count per consumer, messages by sequence) and asks a consuming service's redrive
    // endpoint to put them back; it never publishes an event or deletes a dead letter itself.
    let dead_letters = events::names::DEAD_LETTER_STREAM;
    publish.insert(format!("{JS_API}.STREAM.INFO.{dead_letters}"));
    publish.insert(format!("{JS_API}.STREAM.MSG.GET.{dead_letters}"));
    publish.extend(
        events::names::durables()
            .into_iter()
            .map(|(service, _, _)| events::names::redrive_endpoint_subject(service)),
    );
    Permissions {
        publish,
        subscribe,
        allow_responses: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_match_with_nats_wildcards() {
        assert!(subject_matches("product.>", "product.get_product"));
        assert!(!subject_matches("product.>", "product"));
        assert!(subject_matches("$SRV.*", "$SRV.PING"));
        assert!(!subject_matches("$SRV.*", "$SRV.PING.product"));
        assert!(subject_matches("$SRV.*.product.*", "$SRV.INFO.product.abc"));
        assert!(!subject_matches("auth.login", "auth.login.x"));
    }

    #[test]
    fn only_the_gateway_publishes_to_routed_methods() {
        let gateway = Identity::Gateway.permissions();
        for contract in api::CONTRACTS {
            for method in contract.methods {
                // The gateway answers its own contract's routes without NATS.
                let routed = method.access != rpc::Access::Internal && is_served(contract);
                assert_eq!(
                    Permissions::allows(&gateway.publish, method.subject),
                    routed || GATEWAY_CALLS.iter().any(|m| m.subject == method.subject),
                    "{}",
                    method.subject
                );
                for identity in Identity::all() {
                    if matches!(identity, Identity::Gateway | Identity::Operator) {
                        continue;
                    }
                    let allowed =
                        Permissions::allows(&identity.permissions().publish, method.subject);
                    if routed {
                        assert!(!allowed, "{} may call {}", identity.name(), method.subject);
                    }
                }
            }
        }
        assert!(!gateway.allow_responses);
    }

    #[test]
    fn dead_letters_are_read_by_the_gateway_and_redriven_by_their_consumer_alone() {
        let gateway = Identity::Gateway.permissions();
        let gateway_publishes = |subject: &str| Permissions::allows(&gateway.publish, subject);
        assert!(gateway_publishes("$JS.API.STREAM.INFO.DEAD_LETTERS"));
        assert!(gateway_publishes("$JS.API.STREAM.MSG.GET.DEAD_LETTERS"));
        assert!(!gateway_publishes("$JS.API.STREAM.MSG.DELETE.DEAD_LETTERS"));
        let durables = events::names::durables();
        assert!(!durables.is_empty());
        for (service, event, durable) in &durables {
            // The gateway asks the consuming service, and never publishes an event itself.
            assert!(gateway_publishes(&events::names::redrive_endpoint_subject(
                service
            )));
            let redrive = events::names::redrive_subject(event.domain, durable).unwrap();
            assert!(!gateway_publishes(&redrive), "{redrive}");
            assert!(!gateway_publishes(
                &events::names::subject(event, "x").unwrap()
            ));
            for identity in Identity::all() {
                if matches!(identity, Identity::Operator) {
                    continue;
                }
                let permissions = identity.permissions();
                // Only the service that runs the durable may put events back on it (and the
                // domain's producer, which may publish anything of its domain anyway).
                assert_eq!(
                    Permissions::allows(&permissions.publish, &redrive),
                    identity.name() == *service || identity.name() == event.producer,
                    "{} publishing {redrive}",
                    identity.name()
                );
            }
            // Its redrive endpoint is its own subject, which only it serves.
            let own = Identity::all()
                .into_iter()
                .find(|i| i.name() == *service)
                .unwrap()
                .permissions();
            assert!(Permissions::allows(
                &own.subscribe,
                &events::names::redrive_endpoint_subject(service)
            ));
        }
        // A service without consumers serves no redrive, so the gateway may not ask it.
        assert!(!gateway_publishes(
            &events::names::redrive_endpoint_subject("address")
        ));
    }

    #[test]
    fn the_gateway_asks_every_instance_for_info_and_stats_and_nothing_more() {
        let gateway = Identity::Gateway.permissions();
        let publishes = |subject: &str| Permissions::allows(&gateway.publish, subject);
        assert!(publishes("$SRV.INFO"));
        assert!(publishes("$SRV.STATS"));
        for refused in [
            "$SRV.PING",
            "$SRV.INFO.product",
            "$SRV.STATS.product.abc",
            "$SRV.INFO.x.y.z",
        ] {
            assert!(!publishes(refused), "{refused}");
        }
        assert!(
            !gateway
                .publish
                .iter()
                .any(|p| p.contains('>') && p.starts_with("$SRV"))
        );
        // The replies come to its own inbox, and it listens to no discovery request.
        assert!(Permissions::allows(
            &gateway.subscribe,
            "_INBOX_gateway.abc.info"
        ));
        assert!(!Permissions::allows(&gateway.subscribe, "$SRV.INFO"));
        // A service answers discovery, but asks nobody.
        for identity in Identity::all() {
            if let Identity::Service(_) = identity {
                let permissions = identity.permissions();
                for subject in GATEWAY_DISCOVERY {
                    assert!(
                        !Permissions::allows(&permissions.publish, subject),
                        "{} may publish {subject}",
                        identity.name()
                    );
                    assert!(Permissions::allows(&permissions.subscribe, subject));
                }
            }
        }
    }

    #[test]
    fn nobody_serves_or_calls_the_gateways_own_contract() {
        let own = api::contract(api::gateway::SERVICE_NAME).expect("the gateway's contract");
        assert!(!is_served(own));
        assert!(
            Identity::all()
                .iter()
                .all(|i| !matches!(i, Identity::Service(c) if !is_served(c)))
        );
        assert_eq!(Identity::named("gateway"), Some(Identity::Gateway));
        assert_eq!(
            Identity::all()
                .iter()
                .filter(|i| i.name() == "gateway")
                .count(),
            1
        );
        for method in own.methods {
            for identity in Identity::all() {
                if identity == Identity::Operator {
                    continue;
                }
                let permissions = identity.permissions();
                assert!(
                    !Permissions::allows(&permissions.publish, method.subject),
                    "{} may publish {}",
                    identity.name(),
                    method.subject
                );
                assert!(
                    !Permissions::allows(&permissions.subscribe, method.subject),
                    "{} may subscribe to {}",
                    identity.name(),
                    method.subject
                );
            }
        }
    }

    #[test]
    fn the_gateway_reads_the_order_streams_and_nothing_more() {
        let gateway = Identity::Gateway.permissions();
        let allows = |subject: &str| Permissions::allows(&gateway.publish, subject);
        assert!(allows("$JS.API.CONSUMER.CREATE.EVENTS_ORDER"));
        assert!(allows(
            "$JS.API.CONSUMER.CREATE.EVENTS_SUBORDER.c_1.events.suborder.>"
        ));
        assert!(allows("$JS.API.STREAM.INFO.EVENTS_ORDER"));
        assert!(allows("$JS.FC.EVENTS_ORDER.c.1"));
        assert!(!allows("$JS.API.CONSUMER.CREATE.EVENTS_PAYMENT"));
        assert!(!allows("$JS.API.CONSUMER.DELETE.EVENTS_ORDER.notification"));
        assert!(!allows("$JS.API.STREAM.DELETE.EVENTS_ORDER"));
        assert!(!allows("$JS.API.STREAM.PURGE.EVENTS_ORDER"));
        assert!(!allows("events.order.o1.paid"));
        assert!(!Permissions::allows(
            &gateway.subscribe,
            "events.order.o1.paid"
        ));
    }

    #[test]
    fn a_service_calls_only_what_it_declares_and_reads_only_its_inbox() {
        for contract in api::CONTRACTS.iter().filter(|c| is_served(c)) {
            let identity = Identity::Service(contract);
            let permissions = identity.permissions();
            for other in api::CONTRACTS {
                for method in other.methods {
                    assert_eq!(
                        Permissions::allows(&permissions.publish, method.subject),
                        contract.calls.iter().any(|m| m.subject == method.subject),
                        "{} publishing {}",
                        contract.service.name,
                        method.subject
                    );
                }
                if other.service.name != contract.service.name {
                    let theirs = format!("_INBOX_{}.abc", other.service.name);
                    assert!(!Permissions::allows(&permissions.subscribe, &theirs));
                    assert!(!Permissions::allows(
                        &permissions.subscribe,
                        &format!("{}.x", other.service.name)
                    ));
                }
            }
            assert!(!Permissions::allows(&permissions.subscribe, "_INBOX.abc"));
            assert!(!Permissions::allows(&permissions.subscribe, ">"));
            assert!(!Permissions::allows(&permissions.publish, "$SRV.PING"));
        }
    }

    #[test]
    fn only_the_settings_service_writes_the_settings_bucket_and_every_service_reads_it() {
        let put = format!("$KV.{SETTINGS_BUCKET}.platform.checkout.tax_rates");
        let create = format!("{JS_API}.STREAM.CREATE.KV_{SETTINGS_BUCKET}");
        let watch = format!("{JS_API}.CONSUMER.CREATE.KV_{SETTINGS_BUCKET}");
        let purge = format!("{JS_API}.STREAM.PURGE.KV_{SETTINGS_BUCKET}");
        let delete = format!("{JS_API}.STREAM.DELETE.KV_{SETTINGS_BUCKET}");
        assert!(
            api::CONTRACTS
                .iter()
                .any(|c| c.service.name == SETTINGS_WRITER)
        );
        for contract in api::CONTRACTS.iter().filter(|c| is_served(c)) {
            let permissions = Identity::Service(contract).permissions();
            let writer = contract.service.name == SETTINGS_WRITER;
            assert_eq!(Permissions::allows(&permissions.publish, &put), writer);
            assert_eq!(Permissions::allows(&permissions.publish, &create), writer);
            assert!(Permissions::allows(&permissions.publish, &watch));
            assert!(!Permissions::allows(&permissions.publish, &purge));
            assert!(!Permissions::allows(&permissions.publish, &delete));
        }
        assert!(!Permissions::allows(
            &Identity::Gateway.permissions().publish,
            &put
        ));
    }

    #[test]
    fn a_service_publishes_only_its_own_event_domains() {
        for contract in api::CONTRACTS.iter().filter(|c| is_served(c)) {
            let permissions = Identity::Service(contract).permissions();
            for event in api::EVENTS {
                let subject = events::names::subject(event, "a1").unwrap();
                assert_eq!(
                    Permissions::allows(&permissions.publish, &subject),
                    event.producer == contract.service.name,
                    "{} publishing {}",
                    contract.service.name,
                    event.name
                );
            }
        }
    }
}
