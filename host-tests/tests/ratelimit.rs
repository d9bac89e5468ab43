//! The rate-limit stage through the ABI after the JWT stage, in both layouts (chained after the
//! JWT filter as in Envoy, keys from the verified identity in filter state; and as the suite,
//! in memory): the source address from Envoy's attributes, buckets in shared data, the test
//! clock driving refills and sweeps.

use std::sync::OnceLock;
use std::time::Duration as StdDuration;

use jwt_simple::prelude::*;
use serde_json::{Value, json};
use zt_core::ratelimit::rls;
use zt_host_tests::{Exchange, FilterSpec, Harness, HarnessError, Layout, Request, ScriptedGrpc};

const NOW: u64 = 1_700_000_000;
const ISS: &str = "https://issuer.test";

fn key() -> &'static ES256KeyPair {
    static KEY: OnceLock<ES256KeyPair> = OnceLock::new();
    KEY.get_or_init(|| ES256KeyPair::generate().with_key_id("ec"))
}

fn jwt_config() -> Value {
    let jwk: Value = serde_json::from_str(&key().public_key().to_jwk()).unwrap();
    json!({
        "realm": "api",
        "providers": [{"name": "corp", "issuer": ISS, "audiences": ["api"], "jwks": {"inline": {"keys": [jwk]}}}],
        "requirements": {"default": {"allow_missing": true}},
    })
}

/// 3 requests a minute per subject; anonymous callers share 1 a minute per /24.
fn ratelimit_config() -> Value {
    json!({
        "limits": {
            "per-user": {"quota": 3, "window_seconds": 60, "key": [{"claim": "sub"}], "unkeyed": {"fallback": "anonymous"}},
            "anonymous": {"quota": 1, "window_seconds": 60, "key": [{"source_prefix": {"ipv4": 24, "ipv6": 64}}]},
        },
        "defaults": {"limits": ["per-user"]},
        "routes": [{"name": "health", "route_names": ["health"], "limits": [], "inherit_defaults": false}],
        "max_keys": 64,
        "headers": {"on_admitted": true, "x_ratelimit": true},
    })
}

/// The JWT and rate-limit stages as two filters or as the suite, decisions in filter state.
fn envoy_with(layout: Layout, ratelimit: &Value) -> Harness {
    let mut envoy = Harness::new();
    envoy.clock().set_unix_seconds(NOW);
    for filter in layout.filters_publishing(&[("jwt", &jwt_config()), ("ratelimit", ratelimit)], &[]) {
        envoy.load(filter).unwrap();
    }
    envoy
}

fn token(sub: &str) -> String {
    let mut claims = Claims::create(Duration::from_secs(3600)).with_issuer(ISS).with_audience("api").with_subject(sub);
    claims.issued_at = Some(UnixTimeStamp::from_secs(NOW));
    claims.invalid_before = None;
    claims.expires_at = Some(UnixTimeStamp::from_secs(NOW + 3600));
    key().sign(claims).unwrap()
}

fn as_user(sub: &str) -> Request {
    Request::get("/orders").header("authorization", format!("Bearer {}", token(sub)))
}

fn decision(layout: Layout, exchange: &Exchange) -> Value {
    layout.decision(exchange, "ratelimit").expect("a decision in filter state")
}

fn response_header(exchange: &Exchange, name: &str) -> Option<String> {
    exchange
        .response_headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
}

#[test]
fn a_subject_gets_its_quota_then_429_with_the_draft_headers() {
    for layout in Layout::ALL {
        let mut envoy = envoy_with(layout, &ratelimit_config());
        for remaining in [2, 1, 0] {
            let exchange = envoy.send(as_user("alice"));
            assert_eq!(exchange.status(), Some(200), "{}", envoy.log_text());
            assert_eq!(response_header(&exchange, "ratelimit-policy").as_deref(), Some("\"per-user\";q=3;w=60"));
            let current = response_header(&exchange, "ratelimit").unwrap();
            assert!(current.starts_with(&format!("\"per-user\";r={remaining};t=")), "{current}");
            assert_eq!(response_header(&exchange, "x-ratelimit-remaining"), Some(remaining.to_string()));
            assert_eq!(decision(layout, &exchange)["decision"], "admitted");
        }
        let refused = envoy.send(as_user("alice"));
        assert_eq!(refused.status(), Some(429));
        assert!(!refused.reached_upstream());
        let reply = refused.local_reply().unwrap();
        assert_eq!(reply.header("retry-after"), Some("20"));
        assert_eq!(reply.header("ratelimit"), Some("\"per-user\";r=0;t=60"));
        let body = reply.body_text();
        assert!(body.contains("\"limit\":\"per-user\"") && !body.contains("alice"), "{body}");
        assert_eq!(decision(layout, &refused)["decision"], "limited");
        assert_eq!(envoy.metric_sum("zt_ratelimit.limited.over_limit"), 1, "{:?}", envoy.metric_names());
        assert_eq!(envoy.metric("zt_ratelimit.limit.per-user.limited"), Some(1));
        // Another subject has its own bucket.
        assert_eq!(envoy.send(as_user("bob")).status(), Some(200));
        // 20 s later one token is back (3 a minute).
        envoy.advance(StdDuration::from_secs(20)).unwrap();
        assert_eq!(envoy.send(as_user("alice")).status(), Some(200));
        assert_eq!(envoy.send(as_user("alice")).status(), Some(429));
    }
}

#[test]
fn anonymous_callers_fall_back_to_their_network() {
    for layout in Layout::ALL {
        let mut envoy = envoy_with(layout, &ratelimit_config());
        let from = |address: &str| Request::get("/orders").attribute("source.address", address);
        assert_eq!(envoy.send(from("192.0.2.10:1234")).status(), Some(200));
        let refused = envoy.send(from("192.0.2.99:4321"));
        assert_eq!(refused.status(), Some(429));
        assert_eq!(decision(layout, &refused)["limit"], "anonymous");
        assert_eq!(envoy.send(from("198.51.100.1:1")).status(), Some(200));
    }
}

#[test]
fn an_exempt_route_is_not_limited() {
    for layout in Layout::ALL {
        let mut envoy = envoy_with(layout, &ratelimit_config());
        for _ in 0..5 {
            let exchange = envoy.send(Request::get("/healthz").route_name("health"));
            assert_eq!(exchange.status(), Some(200));
            assert_eq!(response_header(&exchange, "ratelimit"), None);
        }
    }
}

/// Two VMs with one `vm_id` share shared data, as Envoy's workers do: both draw from the same
/// bucket, so each request (through both) takes two tokens of ten.
#[test]
fn vms_sharing_a_vm_id_share_the_buckets() {
    for layout in Layout::ALL {
        let limit = json!({
            "limits": {"per-user": {"quota": 10, "window_seconds": 60, "key": [{"claim": "sub"}]}},
            "defaults": {"limits": ["per-user"]},
            "max_keys": 64,
        });
        let mut envoy = Harness::new();
        envoy.clock().set_unix_seconds(NOW);
        let workers = match layout {
            Layout::Chain => vec![
                FilterSpec::new("zt_jwt", jwt_config().to_string()),
                FilterSpec::new("zt_ratelimit", limit.to_string()).name("worker-1").vm_id("rl"),
                FilterSpec::new("zt_ratelimit", limit.to_string()).name("worker-2").vm_id("rl"),
            ],
            // Each suite verifies the token, so the first one leaves it for the second.
            Layout::Suite => {
                let mut jwt = jwt_config();
                jwt["forward_token"] = json!(true);
                let worker = |name: &str| {
                    let sections = [("jwt", &jwt), ("ratelimit", &limit)];
                    Layout::Suite.filters(&sections, &[]).remove(0).name(name).vm_id("rl")
                };
                vec![worker("worker-1"), worker("worker-2")]
            }
        };
        for filter in workers {
            envoy.load(filter).unwrap_or_else(|e| panic!("{e:?}: {}", envoy.log_text()));
        }
        let admitted = (0..10).filter(|_| envoy.send(as_user("alice")).status() == Some(200)).count();
        assert_eq!(admitted, 5);
    }
}

#[test]
fn advisory_limits_let_requests_through_and_say_so() {
    for layout in Layout::ALL {
        let mut config = ratelimit_config();
        config["limits"]["per-user"]["advisory"] = json!(true);
        let mut envoy = envoy_with(layout, &config);
        for _ in 0..5 {
            assert_eq!(envoy.send(as_user("alice")).status(), Some(200));
        }
        let last = envoy.send(as_user("alice"));
        assert_eq!(decision(layout, &last)["decision"], "advisory_limited");
        // Not advertised: the client is not bound by it.
        assert_eq!(response_header(&last, "ratelimit"), None);
        assert_eq!(envoy.metric("zt_ratelimit.advisory_limited"), Some(3));
    }
}

#[test]
fn idle_buckets_are_swept_on_the_timer() {
    for layout in Layout::ALL {
        let mut envoy = envoy_with(layout, &ratelimit_config());
        for sub in ["a", "b", "c"] {
            assert_eq!(envoy.send(as_user(sub)).status(), Some(200));
        }
        // A minute and a sweep later, all three buckets are full again and freed.
        envoy.advance(StdDuration::from_secs(75)).unwrap();
        assert_eq!(envoy.metric("zt_ratelimit.evicted"), Some(3), "{}", envoy.log_text());
    }
}

#[test]
fn an_invalid_configuration_refuses_to_start_and_names_the_field() {
    for layout in Layout::ALL {
        let mut bad = ratelimit_config();
        bad["limits"]["per-user"]["quota"] = json!(0);
        let mut envoy = Harness::new();
        for filter in layout.filters(&[("ratelimit", &bad)], &[]) {
            let refused = envoy.load(filter);
            assert!(matches!(refused, Err(HarnessError::ConfigureRefused { .. })), "{layout:?}: {refused:?}");
        }
        assert!(envoy.log_text().contains("limits.per-user.quota"), "{}", envoy.log_text());
    }
}

#[test]
fn a_forged_identity_header_keys_nothing() {
    for layout in Layout::ALL {
        let mut envoy = envoy_with(layout, &ratelimit_config());
        let forged = json!({"provider": "corp", "iss": ISS, "sub": "mallory", "aud": [], "scopes": [], "exp": null, "claims": {"sub": "mallory"}});
        let request = || Request::get("/orders").header("zt.identity", forged.to_string());
        // Keyed by the network fallback, not by the forged subject.
        assert_eq!(envoy.send(request()).status(), Some(200));
        let refused = envoy.send(request());
        assert_eq!(decision(layout, &refused)["limit"], "anonymous");
    }
}

fn global_config(on_error: &str) -> Value {
    json!({
        "limits": {"partner": {"key": [{"claim": "sub"}], "mode": "global"}},
        "defaults": {"limits": ["partner"]},
        "global": {"cluster": "ratelimit", "domain": "zt", "timeout_ms": 250, "on_error": on_error},
    })
}

fn rls_answer(code: rls::Code, remaining: u32) -> ScriptedGrpc {
    let status = rls::DescriptorStatus {
        code: code as i32,
        current_limit: Some(rls::RateLimit {
            name: String::new(),
            requests_per_unit: 10,
            unit: rls::Unit::Minute as i32,
        }),
        limit_remaining: remaining,
        duration_until_reset: Some(rls::Duration { seconds: 30, nanos: 0 }),
    };
    let response = rls::RateLimitResponse { overall_code: code as i32, statuses: vec![status] };
    ScriptedGrpc::reply(zt_core::ratelimit::rls::encode(&response))
}

#[test]
fn a_global_limit_asks_the_service_and_follows_its_answer() {
    for layout in Layout::ALL {
        let mut envoy = envoy_with(layout, &global_config("deny"));
        envoy
            .script_grpc_sequence("ratelimit", vec![rls_answer(rls::Code::Ok, 9), rls_answer(rls::Code::OverLimit, 0)]);
        let admitted = envoy.send(as_user("alice"));
        assert_eq!(admitted.status(), Some(200), "{}", envoy.log_text());
        assert_eq!(response_header(&admitted, "ratelimit").as_deref(), Some("\"partner\";r=9;t=30"));
        let call = &envoy.grpc_calls()[0];
        assert_eq!(
            (call.cluster.as_str(), call.service.as_str(), call.method.as_str()),
            ("ratelimit", rls::SERVICE, rls::METHOD)
        );
        assert_eq!(call.timeout, StdDuration::from_millis(250));
        let request: rls::RateLimitRequest = rls::decode(&call.message).unwrap();
        assert_eq!(request.domain, "zt");
        let entries: Vec<(&str, &str)> =
            request.descriptors[0].entries.iter().map(|e| (e.key.as_str(), e.value.as_str())).collect();
        assert_eq!(entries, vec![("limit", "partner"), ("claim.sub", "alice")]);

        let refused = envoy.send(as_user("alice"));
        assert_eq!(refused.status(), Some(429));
        let reply = refused.local_reply().unwrap();
        assert_eq!(reply.header("retry-after"), Some("30"));
        assert_eq!(reply.header("ratelimit-policy"), Some("\"partner\";q=10;w=60"));
        assert_eq!(decision(layout, &refused)["reason"], "global_over_limit");
        assert_eq!(envoy.metric("zt_ratelimit.global.calls"), Some(2));
    }
}

#[test]
fn a_failing_service_fails_closed_or_open_as_configured() {
    for layout in Layout::ALL {
        for (on_error, status) in [("deny", 503), ("allow", 200)] {
            for failure in [
                ScriptedGrpc::Timeout,
                ScriptedGrpc::status(14, "unavailable"),
                ScriptedGrpc::reply(b"\xff not protobuf".to_vec()),
            ] {
                let mut envoy = envoy_with(layout, &global_config(on_error));
                envoy.script_grpc("ratelimit", failure.clone());
                let exchange = envoy.send(as_user("alice"));
                assert_eq!(exchange.status(), Some(status), "{on_error} {failure:?}\n{}", envoy.log_text());
                assert_eq!(decision(layout, &exchange)["reason"], "global_unavailable");
                assert_eq!(envoy.metric("zt_ratelimit.global.errors"), Some(1), "{failure:?}");
                assert!(envoy.log_text().contains("rate-limit service"), "{}", envoy.log_text());
            }
        }
        // An unknown cluster: refused by the host at once, same rule.
        let mut envoy = envoy_with(layout, &global_config("deny"));
        assert_eq!(envoy.send(as_user("alice")).status(), Some(503));
    }
}

/// Route metadata names the rule (`filter_metadata.zt.ratelimit_route`) before the route name
/// and the match; a name the configuration lacks is a configuration fault, never unlimited.
#[test]
fn route_metadata_names_the_rule_and_an_unknown_name_is_refused() {
    for layout in Layout::ALL {
        let mut envoy = envoy_with(layout, &ratelimit_config());
        for _ in 0..5 {
            let exempt = envoy.send(as_user("alice").route_metadata("zt", "ratelimit_route", "health"));
            assert_eq!(exempt.status(), Some(200), "{}", envoy.log_text());
            assert_eq!(decision(layout, &exempt)["route"], "health");
        }
        let unknown = envoy.send(as_user("alice").route_metadata("zt", "ratelimit_route", "ghost"));
        assert_eq!(unknown.status(), Some(500));
        assert_eq!(decision(layout, &unknown)["reason"], "unknown_route_rule");
        // Another filter's key is not this filter's choice.
        let other = envoy.send(as_user("alice").route_metadata("zt", "authz_route", "health"));
        assert_eq!(decision(layout, &other)["route"], Value::Null);
    }
}

/// 2 a minute per peer address; 1 a minute per client behind the trusted proxies on `/edge`.
fn address_config() -> Value {
    json!({
        "limits": {
            "per-peer": {"quota": 2, "window_seconds": 60, "key": ["source_ip"]},
            "per-client": {"quota": 1, "window_seconds": 60, "key": ["remote_ip"]},
        },
        "defaults": {"limits": ["per-peer"]},
        "routes": [{"name": "edge", "match": {"path": {"prefix": "/edge"}}, "limits": ["per-client"], "inherit_defaults": false}],
        "max_keys": 64,
    })
}

#[test]
fn a_new_forwarded_for_per_request_never_buys_a_new_bucket() {
    for layout in Layout::ALL {
        let mut envoy = envoy_with(layout, &address_config());
        // The measured spoof: 2 per source, then a different X-Forwarded-For on each request.
        let plain = || Request::get("/orders").attribute("source.address", "127.0.0.1:40000");
        assert_eq!(envoy.send(plain()).status(), Some(200));
        assert_eq!(envoy.send(plain()).status(), Some(200));
        assert_eq!(envoy.send(plain()).status(), Some(429));
        for i in 1..=6 {
            let spoof = envoy.send(Request::get("/orders").forwarded_for(&format!("10.1.2.{i}")));
            assert_eq!(spoof.status(), Some(429), "spoof {i}");
            assert_eq!(decision(layout, &spoof)["reason"], "unkeyed", "no bucket for a forged address");
        }
        assert_eq!(envoy.metric("zt_ratelimit.peer_address_unknown"), Some(6));
        // With the peer named in filter state, the header changes nothing: still the one bucket.
        let named = Request::get("/orders").forwarded_for("10.9.9.9").peer_address_state("127.0.0.1:40001");
        assert_eq!(envoy.send(named).status(), Some(429));
    }
}

#[test]
fn remote_ip_keys_the_client_behind_the_trusted_proxies() {
    for layout in Layout::ALL {
        let mut envoy = envoy_with(layout, &address_config());
        let via_proxy = |client: &str| Request::get("/edge").forwarded_for(client).peer_address_state("10.0.0.2:40000");
        assert_eq!(envoy.send(via_proxy("203.0.113.9")).status(), Some(200));
        assert_eq!(envoy.send(via_proxy("203.0.113.9")).status(), Some(429));
        assert_eq!(envoy.send(via_proxy("203.0.113.10")).status(), Some(200));
    }
}
