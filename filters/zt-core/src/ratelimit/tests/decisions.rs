//! Decisions, keys, fallbacks, advisory limits, the service's answers and the replies.

use serde_json::json;
use wasm_bindgen_test::wasm_bindgen_test;

use super::super::rls::{self, Code};
use super::super::{GlobalAnswer, Reason, Step, Verdict, admitted_headers, refusal};
use super::{Facts, config};
use crate::shared_store::MemoryStore;

/// A store with the configuration's tables prepared, as the filter does at start.
fn prepared(config: &super::super::RateLimitConfig) -> MemoryStore {
    let store = MemoryStore::default();
    config.prepare(&store).unwrap();
    store
}

const T0: u64 = 1_700_000_000_000;

fn decided(step: Step) -> super::super::Decision {
    match step {
        Step::Decided(decision) => decision,
        Step::AskGlobal(_) => panic!("asked the service"),
    }
}

fn per_user(quota: u64) -> serde_json::Value {
    json!({
        "limits": {"per-user": {"quota": quota, "window_seconds": 60, "key": [{"claim": "sub"}]}},
        "defaults": {"limits": ["per-user"]},
    })
}

#[wasm_bindgen_test(unsupported = test)]
fn each_key_has_its_own_bucket_and_refills_over_the_window() {
    let c = config(per_user(2));
    let store = prepared(&c);
    for _ in 0..2 {
        assert_eq!(decided(c.check(&Facts::get("/").who("alice").facts(), &store)).verdict, Verdict::Admitted);
    }
    let refused = decided(c.check(&Facts::get("/").who("alice").facts(), &store));
    assert_eq!((refused.verdict, refused.reason), (Verdict::Limited, Reason::OverLimit));
    assert_eq!(refused.limit.as_deref(), Some("per-user"));
    // Bob is not Alice.
    assert_eq!(decided(c.check(&Facts::get("/").who("bob").facts(), &store)).verdict, Verdict::Admitted);
    // Half a window later one token (of 2 per 60 s) is back: 30 s.
    let later = Facts::get("/").who("alice").at(T0 + 30_000);
    assert_eq!(decided(c.check(&later.facts(), &store)).verdict, Verdict::Admitted);
    assert_eq!(decided(c.check(&later.facts(), &store)).verdict, Verdict::Limited);
}

#[wasm_bindgen_test(unsupported = test)]
fn a_request_without_the_key_is_refused_or_falls_back_never_unlimited() {
    let c = config(per_user(5));
    let store = prepared(&c);
    let anonymous = decided(c.check(&Facts::get("/").facts(), &store));
    assert_eq!((anonymous.verdict, anonymous.reason), (Verdict::Limited, Reason::Unkeyed));
    let reply = refusal(&anonymous, false).unwrap();
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("retry-after"), None);

    let c = config(json!({
        "limits": {
            "per-user": {"quota": 5, "window_seconds": 60, "key": [{"claim": "sub"}], "unkeyed": {"fallback": "per-network"}},
            "per-network": {"quota": 1, "window_seconds": 60, "key": [{"source_prefix": {"ipv4": 24, "ipv6": 64}}]},
        },
        "defaults": {"limits": ["per-user"]},
    }));
    let store = prepared(&c);
    // Two anonymous clients of one /24 share the fallback's bucket of 1.
    let first = decided(c.check(&Facts::get("/").from("10.9.9.1").facts(), &store));
    assert_eq!(first.verdict, Verdict::Admitted);
    assert_eq!(first.statuses[0].name, "per-network");
    let second = decided(c.check(&Facts::get("/").from("10.9.9.2").facts(), &store));
    assert_eq!((second.verdict, second.limit.as_deref()), (Verdict::Limited, Some("per-network")));
    // Another network has its own.
    assert_eq!(decided(c.check(&Facts::get("/").from("10.9.10.2").facts(), &store)).verdict, Verdict::Admitted);
    // Without an address either, the fallback refuses.
    let mut nowhere = Facts::get("/");
    nowhere.source = None;
    let refused = decided(c.check(&nowhere.facts(), &store));
    assert_eq!((refused.reason, refused.limit.as_deref()), (Reason::Unkeyed, Some("per-network")));
}

#[wasm_bindgen_test(unsupported = test)]
fn all_limits_must_admit_and_a_refused_request_takes_nothing() {
    let c = config(json!({
        "limits": {
            "per-user": {"quota": 10, "window_seconds": 60, "key": [{"claim": "sub"}]},
            "per-tenant": {"quota": 1, "window_seconds": 60, "key": [{"header": "x-tenant"}]},
        },
        "defaults": {"limits": ["per-user", "per-tenant"]},
    }));
    let store = prepared(&c);
    let request = |sub: &str, tenant: &str| Facts::get("/").who(sub).header("x-tenant", tenant);
    assert_eq!(decided(c.check(&request("alice", "t1").facts(), &store)).verdict, Verdict::Admitted);
    let refused = decided(c.check(&request("alice", "t1").facts(), &store));
    assert_eq!(refused.limit.as_deref(), Some("per-tenant"));
    // Alice's token for the refused request was given back: 9 left after the next one.
    let next = decided(c.check(&request("alice", "t2").facts(), &store));
    assert_eq!(next.verdict, Verdict::Admitted);
    assert_eq!(next.statuses[0].remaining, 8);
}

#[wasm_bindgen_test(unsupported = test)]
fn advisory_limits_count_and_record_but_never_refuse() {
    let c = config(json!({
        "limits": {"trial": {"quota": 1, "window_seconds": 60, "key": [{"claim": "sub"}], "advisory": true}},
        "defaults": {"limits": ["trial"]},
    }));
    let store = prepared(&c);
    let facts = Facts::get("/").who("alice");
    assert_eq!(decided(c.check(&facts.facts(), &store)).verdict, Verdict::Admitted);
    let over = decided(c.check(&facts.facts(), &store));
    assert_eq!(
        (over.verdict, over.reason, over.limit.as_deref()),
        (Verdict::AdvisoryLimited, Reason::OverLimit, Some("trial"))
    );
    assert!(refusal(&over, true).is_none());
    // Advisory limits are not advertised to clients.
    assert!(admitted_headers(&over, true).is_empty());
    assert_eq!(over.record().decision, Verdict::AdvisoryLimited);
}

#[wasm_bindgen_test(unsupported = test)]
fn headers_follow_the_draft_and_name_no_key_value() {
    let c = config(json!({
        "limits": {
            "per-user": {"quota": 2, "window_seconds": 60, "key": [{"claim": "sub"}]},
            "per-ip": {"quota": 100, "window_seconds": 1, "key": ["source_ip"]},
        },
        "defaults": {"limits": ["per-user", "per-ip"]},
    }));
    let store = prepared(&c);
    let facts = Facts::get("/").who("alice");
    let first = decided(c.check(&facts.facts(), &store));
    let headers = admitted_headers(&first, true);
    let get = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    assert_eq!(get("ratelimit-policy"), Some("\"per-user\";q=2;w=60, \"per-ip\";q=100;w=1"));
    assert_eq!(get("ratelimit"), Some("\"per-user\";r=1;t=30, \"per-ip\";r=99;t=1"));
    // The tightest limit for the older fields.
    assert_eq!(
        (get("x-ratelimit-limit"), get("x-ratelimit-remaining"), get("x-ratelimit-reset")),
        (Some("2"), Some("1"), Some("30"))
    );
    decided(c.check(&facts.facts(), &store));
    let refused = decided(c.check(&facts.facts(), &store));
    let reply = refusal(&refused, false).unwrap();
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("retry-after"), Some("30"));
    assert_eq!(reply.header("ratelimit"), Some("\"per-user\";r=0;t=60"));
    assert_eq!(reply.header("x-ratelimit-limit"), None);
    assert!(!reply.body.contains("alice") && !reply.body.contains("10.1.2.3"), "{}", reply.body);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&reply.body).unwrap()["limit"], "per-user");
    let record = serde_json::to_string(&refused.record()).unwrap();
    assert!(!record.contains("alice"), "{record}");
}

#[wasm_bindgen_test(unsupported = test)]
fn routes_choose_limits_as_the_other_filters_do() {
    let c = config(json!({
        "limits": {
            "default": {"quota": 100, "window_seconds": 60, "key": ["source_ip"]},
            "login": {"quota": 1, "window_seconds": 60, "key": ["source_ip", "route"]},
        },
        "defaults": {"limits": ["default"]},
        "routes": [
            {"name": "login", "match": {"path": {"exact": "/login"}, "methods": ["POST"]}, "limits": ["login"]},
            {"name": "health", "route_names": ["health"], "limits": [], "inherit_defaults": false},
        ],
    }));
    let store = prepared(&c);
    let mut login = Facts::get("/login?next=/");
    login.method = "POST".to_owned();
    let first = decided(c.check(&login.facts(), &store));
    assert_eq!((first.route.as_deref(), first.statuses.len()), (Some("login"), 2));
    assert_eq!(decided(c.check(&login.facts(), &store)).limit.as_deref(), Some("login"));
    // GET /login is not the login rule.
    assert_eq!(decided(c.check(&Facts::get("/login").facts(), &store)).route, None);
    // The health route is exempt, explicitly.
    let mut health = Facts::get("/healthz");
    health.route_name = Some("health".to_owned());
    let exempt = decided(c.check(&health.facts(), &store));
    assert_eq!((exempt.verdict, exempt.statuses.len()), (Verdict::Admitted, 0));
    // Metadata naming an undefined rule: a configuration fault, refused with 500.
    let mut unknown = Facts::get("/");
    unknown.route_choice = Some("nope".to_owned());
    let refused = decided(c.check(&unknown.facts(), &store));
    assert_eq!(refused.reason, Reason::UnknownRouteRule);
    assert_eq!(refusal(&refused, false).unwrap().status, 500);
}

fn global_config(on_error: &str, mode: &str) -> serde_json::Value {
    let limit = if mode == "global" {
        json!({"key": [{"claim": "sub"}], "mode": "global"})
    } else {
        json!({"quota": 2, "window_seconds": 60, "key": [{"claim": "sub"}], "mode": mode})
    };
    json!({
        "limits": {"shared": limit},
        "defaults": {"limits": ["shared"]},
        "global": {"cluster": "rls", "domain": "zt", "timeout_ms": 50, "on_error": on_error},
    })
}

fn pending(step: Step) -> super::super::Pending {
    match step {
        Step::AskGlobal(pending) => pending,
        Step::Decided(decision) => panic!("decided without the service: {decision:?}"),
    }
}

fn response(code: Code, remaining: u32) -> Vec<u8> {
    let message = rls::RateLimitResponse {
        overall_code: code as i32,
        statuses: vec![rls::DescriptorStatus {
            code: code as i32,
            current_limit: Some(rls::RateLimit {
                name: String::new(),
                requests_per_unit: 5,
                unit: rls::Unit::Minute as i32,
            }),
            limit_remaining: remaining,
            duration_until_reset: Some(rls::Duration { seconds: 42, nanos: 0 }),
        }],
    };
    prost::Message::encode_to_vec(&message)
}

#[wasm_bindgen_test(unsupported = test)]
fn global_limits_send_descriptors_and_follow_the_answer() {
    let c = config(global_config("deny", "global"));
    let store = prepared(&c);
    let facts = Facts::get("/").who("alice");
    let asked = pending(c.check(&facts.facts(), &store));
    let request: rls::RateLimitRequest = prost::Message::decode(asked.request().as_slice()).unwrap();
    assert_eq!(request.domain, "zt");
    assert_eq!(request.hits_addend, 1);
    let entries: Vec<(&str, &str)> =
        request.descriptors[0].entries.iter().map(|e| (e.key.as_str(), e.value.as_str())).collect();
    assert_eq!(entries, vec![("limit", "shared"), ("claim.sub", "alice")]);

    let ok = c.finish(asked, GlobalAnswer::Response(&response(Code::Ok, 4)), &store, T0);
    assert_eq!(ok.verdict, Verdict::Admitted);
    assert_eq!(admitted_headers(&ok, false)[1].1, "\"shared\";r=4;t=42");

    let asked = pending(c.check(&facts.facts(), &store));
    let over = c.finish(asked, GlobalAnswer::Response(&response(Code::OverLimit, 0)), &store, T0);
    assert_eq!((over.verdict, over.reason), (Verdict::Limited, Reason::GlobalOverLimit));
    let reply = refusal(&over, false).unwrap();
    assert_eq!((reply.status, reply.header("retry-after")), (429, Some("42")));
    assert_eq!(reply.header("ratelimit-policy"), Some("\"shared\";q=5;w=60"));
}

#[wasm_bindgen_test(unsupported = test)]
fn the_upstream_argument_is_a_grpc_service_naming_the_cluster() {
    let upstream = rls::upstream("ratelimit");
    let service: rls::GrpcService = rls::decode(upstream.as_bytes()).unwrap();
    assert_eq!(service.envoy_grpc.unwrap().cluster_name, "ratelimit");
    assert!(rls::upstream(&"c".repeat(100)).len() > 100);
}

#[wasm_bindgen_test(unsupported = test)]
fn a_failed_service_refuses_or_admits_per_configuration() {
    let store = MemoryStore::default();
    let facts = Facts::get("/").who("alice");
    let closed = config(global_config("deny", "global"));
    for answer in [GlobalAnswer::Failed, GlobalAnswer::Response(b"\xff\xff not protobuf"), GlobalAnswer::Response(b"")]
    {
        let decision = closed.finish(pending(closed.check(&facts.facts(), &store)), answer, &store, T0);
        assert_eq!((decision.verdict, decision.reason), (Verdict::Limited, Reason::GlobalUnavailable), "{answer:?}");
        assert_eq!(refusal(&decision, false).unwrap().status, 503);
    }
    let open = config(global_config("allow", "global"));
    let decision = open.finish(pending(open.check(&facts.facts(), &store)), GlobalAnswer::Failed, &store, T0);
    assert_eq!((decision.verdict, decision.reason), (Verdict::Admitted, Reason::GlobalUnavailable));
}

#[wasm_bindgen_test(unsupported = test)]
fn local_then_global_asks_only_what_the_local_bucket_admitted_and_gives_back_on_refusal() {
    let c = config(global_config("deny", "local_then_global"));
    let store = prepared(&c);
    let facts = Facts::get("/").who("alice");
    // The service refuses: the local token is given back.
    let over = c.finish(
        pending(c.check(&facts.facts(), &store)),
        GlobalAnswer::Response(&response(Code::OverLimit, 0)),
        &store,
        T0,
    );
    assert_eq!(over.verdict, Verdict::Limited);
    for _ in 0..2 {
        let ok = c.finish(
            pending(c.check(&facts.facts(), &store)),
            GlobalAnswer::Response(&response(Code::Ok, 3)),
            &store,
            T0,
        );
        assert_eq!(ok.verdict, Verdict::Admitted);
    }
    // The local bucket (2 per minute) now refuses without asking.
    let local = decided(c.check(&facts.facts(), &store));
    assert_eq!(local.reason, Reason::OverLimit);
}

#[wasm_bindgen_test(unsupported = test)]
fn source_keys_read_the_peer_and_remote_ip_the_remote_address() {
    let c = config(json!({
        "limits": {
            "per-peer": {"quota": 2, "window_seconds": 60, "key": ["source_ip"]},
            "per-client": {"quota": 1, "window_seconds": 60, "key": ["remote_ip"]},
        },
        "routes": [{"name": "clients", "match": {"path": {"prefix": "/clients"}}, "limits": ["per-client"]}],
        "defaults": {"limits": ["per-peer"]},
    }));
    let store = prepared(&c);
    // A client changing X-Forwarded-For changes only the remote address: the peer's bucket
    // runs dry all the same.
    for (i, forged) in ["10.0.0.1", "10.0.0.2", "10.0.0.3"].into_iter().enumerate() {
        let step = c.check(&Facts::get("/").from("127.0.0.1").remote(forged).facts(), &store);
        let expected = if i < 2 { Verdict::Admitted } else { Verdict::Limited };
        assert_eq!(decided(step).verdict, expected, "request {i}");
    }
    // Without a trustworthy peer the key is missing: refused (`unkeyed` defaults to deny),
    // never keyed by the forged address.
    let forged = decided(c.check(&Facts::get("/").peer_unknown().remote("10.7.7.7").facts(), &store));
    assert_eq!((forged.verdict, forged.reason), (Verdict::Limited, Reason::Unkeyed));
    // `remote_ip`: one bucket per client address behind the trusted proxies.
    let client = |ip: &str| decided(c.check(&Facts::get("/clients").from("192.0.2.1").remote(ip).facts(), &store));
    assert_eq!(client("198.51.100.1").verdict, Verdict::Admitted);
    assert_eq!(client("198.51.100.1").verdict, Verdict::Limited);
    assert_eq!(client("198.51.100.2").verdict, Verdict::Admitted);
}
