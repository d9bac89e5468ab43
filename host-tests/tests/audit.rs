//! The audit stage through the ABI, last after the JWT, authorization and rate-limit stages,
//! each scenario twice: as four filters chained as in Envoy (decisions handed on through filter
//! state) and as the one suite module (in memory). One record per request from `on_log` (also
//! for requests an earlier stage answered), the decisions, the chain, the redaction, and the
//! collector's lifecycle driven by the test clock.

use std::sync::OnceLock;
use std::time::Duration as StdDuration;

use jwt_simple::prelude::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use zt_host_tests::{FilterSpec, Harness, HarnessError, Layout, LogLevel, Request, ScriptedResponse};

const NOW: u64 = 1_795_463_791;
const ISS: &str = "https://issuer.test";
const MARKER: &str = "zt.audit.v1 ";
const COOKIE: &str = "session=COOKIE-SECRET-4242";

fn key() -> &'static ES256KeyPair {
    static KEY: OnceLock<ES256KeyPair> = OnceLock::new();
    KEY.get_or_init(|| ES256KeyPair::generate().with_key_id("ec"))
}

fn jwt_config() -> Value {
    let jwk: Value = serde_json::from_str(&key().public_key().to_jwk()).unwrap();
    json!({
        "realm": "api",
        "providers": [{"name": "corp", "issuer": ISS, "audiences": ["api"], "jwks": {"inline": {"keys": [jwk]}}}],
        "requirements": {"default": {}},
    })
}

fn authz_config() -> Value {
    json!({
        "policies": {
            "orders-read": {"action": "ALLOW", "rules": [{"when": [{"scopes": {"all_of": ["orders:read"]}}]}]},
        },
        "defaults": {"policies": ["orders-read"]},
    })
}

fn ratelimit_config() -> Value {
    json!({
        "limits": {"per-user": {"quota": 2, "window_seconds": 60, "key": [{"claim": "sub"}]}},
        "defaults": {"limits": ["per-user"]},
        "max_keys": 64,
    })
}

fn token(sub: &str, scope: &str) -> String {
    let mut claims = Claims::with_custom_claims(
        json!({"scope": scope, "azp": "web", "email": format!("{sub}@example.com")}),
        Duration::from_secs(3600),
    )
    .with_issuer(ISS)
    .with_audience("api")
    .with_subject(sub);
    claims.issued_at = Some(UnixTimeStamp::from_secs(NOW));
    claims.invalid_before = None;
    claims.expires_at = Some(UnixTimeStamp::from_secs(NOW + 3600));
    key().sign(claims).unwrap()
}

/// Every stage, in Envoy's order, with the audit stage configured by `audit`: as four filters or
/// as the suite.
fn full_chain(layout: Layout, audit: &Value) -> Harness {
    full_chain_with(layout, audit, &[])
}

/// The same with the VM environment `env`.
fn full_chain_with(layout: Layout, audit: &Value, env: &[(&str, &str)]) -> Harness {
    full_chain_at(layout, audit, env, LogLevel::Trace)
}

/// The same with Envoy's log level for Wasm at `level`.
fn full_chain_at(layout: Layout, audit: &Value, env: &[(&str, &str)], level: LogLevel) -> Harness {
    let mut envoy = Harness::new();
    envoy.clock().set_unix_seconds(NOW);
    let (jwt, authz, ratelimit) = (jwt_config(), authz_config(), ratelimit_config());
    let audit = each_record(audit.clone());
    let sections = [("jwt", &jwt), ("authz", &authz), ("ratelimit", &ratelimit), ("audit", &audit)];
    for filter in layout.filters(&sections, env) {
        envoy.load(filter.log_level(level)).unwrap();
    }
    envoy
}

fn request(sub: &str, scope: &str) -> Request {
    Request::get("/orders/7?access_token=QUERY-SECRET&page=2")
        .header("authorization", format!("Bearer {}", token(sub, scope)))
        .header("cookie", COOKIE)
        .header("x-request-id", format!("req-{sub}"))
        .header("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        .header("user-agent", "curl/8.5")
        .route_name("orders")
        .attribute("xds.cluster_name", "backend")
        .attribute("connection.uri_san_peer_certificate", "spiffe://cluster.local/ns/shop/sa/web")
}

/// Every record written to the log, as text, in order: a log call carries one or more records,
/// one per line, each line starting with the marker (the first after Envoy's prefix).
fn logged(envoy: &Harness) -> Vec<String> {
    let logs = envoy.logs();
    let lines = logs.iter().flat_map(|l| l.message.lines());
    lines.filter_map(|line| line.find(MARKER).map(|i| line[i + MARKER.len()..].to_owned())).collect()
}

/// An audit configuration that writes each record to the log as its stream ends, for scenarios
/// that read a record right after its request; batching has its own test
/// (`records_reach_the_log_several_per_log_call_within_the_batch_age`).
fn each_record(mut audit: Value) -> Value {
    audit["log_batch_records"] = json!(1);
    audit
}

/// [`each_record`] as configuration text.
fn each_record_text(audit: &str) -> String {
    each_record(serde_json::from_str(audit).unwrap()).to_string()
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// Checks the chain rules over records of one VM: seq from 0, each `prev` the hash of the one before.
fn assert_chain(records: &[String]) {
    let mut prev = "0".repeat(64);
    let chain = parse(&records[0])["chain"].clone();
    for (seq, text) in records.iter().enumerate() {
        let record = parse(text);
        assert_eq!((record["seq"].as_u64(), &record["chain"]), (Some(seq as u64), &chain), "{text}");
        assert_eq!(record["prev"], prev.as_str(), "{text}");
        prev = Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    }
}

#[test]
fn records_an_allowed_request_with_every_field() {
    for layout in Layout::ALL {
        let mut envoy = full_chain(layout, &json!({"headers": ["user-agent", "authorization", "cookie"]}));
        envoy.clock().set_nanos(NOW * 1_000_000_000 + 123_000_000);
        let exchange = envoy.send(request("alice", "orders:read").attribute("response.size", 512u64.to_le_bytes()));
        assert!(exchange.reached_upstream());
        let records = logged(&envoy);
        assert_eq!(records.len(), 1, "{}", envoy.log_text());
        let r = parse(&records[0]);
        assert_eq!(r["v"], 1);
        assert_eq!(r["seq"], 0);
        assert_eq!(r["time"], "2026-11-23T19:56:31.123Z");
        assert_eq!(r["request_id"], "req-alice");
        assert_eq!(r["traceparent"], "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        assert_eq!(r["source"], json!({"address": "127.0.0.1", "port": 45710}));
        assert_eq!(r["peer"], "spiffe://cluster.local/ns/shop/sa/web");
        assert_eq!(r["authority"], "example.com");
        assert_eq!((r["method"].as_str(), r["path"].as_str()), (Some("GET"), Some("/orders/7")));
        assert_eq!((r["route"].as_str(), r["cluster"].as_str()), (Some("orders"), Some("backend")));
        assert_eq!((r["status"].as_u64(), r["details"].as_str()), (Some(200), Some("via_upstream")));
        assert_eq!((r["bytes_in"].as_u64(), r["bytes_out"].as_u64()), (Some(0), Some(512)));
        assert!(r["duration_ms"].is_number());
        assert_eq!(
            r["identity"],
            json!({"provider": "corp", "iss": ISS, "sub": "alice", "client_id": "web", "scopes": ["orders:read"]})
        );
        assert_eq!(r["decisions"]["jwt"]["decision"], "allow");
        assert_eq!(r["decisions"]["authz"]["policy"], "orders-read");
        assert_eq!(r["decisions"]["ratelimit"]["decision"], "admitted");
        assert_eq!(r["outcome"], "allow");
        // The JWT filter removed the Authorization header before the request went on.
        assert_eq!(r["headers"], json!({"user-agent": "curl/8.5", "cookie": "[redacted]"}));
        assert_eq!(envoy.metric("zt_audit.records.allow"), Some(1));
    }
}

#[test]
fn records_requests_that_earlier_filters_refused() {
    for layout in Layout::ALL {
        let mut envoy = full_chain(layout, &json!({}));
        // No token: the JWT filter answers 401 and the later filters never see the request.
        let unauthenticated = envoy.send(Request::get("/orders/1").header("cookie", COOKIE));
        assert_eq!(unauthenticated.status(), Some(401));
        // A token without the scope: 403 from the authorization filter.
        assert_eq!(envoy.send(request("bob", "profile")).status(), Some(403));
        // The third request of a subject with a quota of 2: 429.
        for expected in [200, 200, 429] {
            assert_eq!(envoy.send(request("carol", "orders:read")).status(), Some(expected));
        }
        let records: Vec<Value> = logged(&envoy).iter().map(|t| parse(t)).collect();
        assert_eq!(records.len(), 5, "{}", envoy.log_text());
        // Status, outcome and how many filters decided (the later ones never saw a refused request).
        let summary: Vec<(u64, &str, usize)> = records
            .iter()
            .map(|r| {
                (
                    r["status"].as_u64().unwrap(),
                    r["outcome"].as_str().unwrap(),
                    r["decisions"].as_object().unwrap().len(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [(401, "deny", 1), (403, "deny", 2), (200, "allow", 3), (200, "allow", 3), (429, "limited", 3)]
        );
        assert_eq!(records[0]["decisions"]["jwt"]["reason"], "missing");
        assert!(records[0].get("identity").is_none());
        assert_eq!(records[1]["decisions"]["authz"]["decision"], "deny");
        assert_eq!(records[4]["decisions"]["ratelimit"]["limit"], "per-user");
        assert_eq!(
            (envoy.metric("zt_audit.records.deny"), envoy.metric("zt_audit.records.limited")),
            (Some(2), Some(1))
        );
    }
}

#[test]
fn never_writes_a_token_or_a_cookie_anywhere() {
    for layout in Layout::ALL {
        let mut envoy = full_chain(
            layout,
            &json!({
                "headers": ["authorization", "cookie", "user-agent"],
                "query": "keep",
                "identity": {"claims": ["email"], "hash": ["email"], "hash_key": "an-hmac-key-of-at-least-32-bytes!"},
                "collector": {"cluster": "otel", "batch_records": 1}
            }),
        );
        envoy.script_http("otel", ScriptedResponse::ok("{}"));
        let tok = token("dave", "orders:read");
        let sent = Request::get("/orders/7?access_token=QUERY-SECRET")
            .header("authorization", format!("Bearer {tok}"))
            .header("cookie", COOKIE);
        assert!(envoy.send(sent).reached_upstream());
        envoy
            .send(Request::get("/orders/7").header("authorization", format!("Bearer {tok}x")).header("cookie", COOKIE));
        envoy.advance(StdDuration::from_secs(2)).unwrap();
        let calls = envoy.http_calls();
        assert_eq!(calls.len(), 2, "one export per record");
        let everything = format!(
            "{}\n{}",
            envoy.log_text(),
            calls.iter().map(|c| String::from_utf8_lossy(&c.body).into_owned()).collect::<Vec<_>>().join("\n")
        );
        let signature = tok.rsplit('.').next().unwrap();
        for secret in [tok.as_str(), signature, "COOKIE-SECRET-4242", "QUERY-SECRET", "dave@example.com"] {
            assert!(!everything.contains(secret), "{secret} leaked:\n{everything}");
        }
        assert!(everything.contains("access_token=[redacted]") && everything.contains("hmac-sha256:"));
    }
}

#[test]
fn chains_records_and_samples_only_allowed_requests() {
    for layout in Layout::ALL {
        let mut envoy = full_chain(layout, &json!({"sample_allowed": 0.0}));
        for _ in 0..3 {
            envoy.send(request("erin", "orders:read"));
        }
        envoy.send(request("frank", "nothing"));
        envoy.send(Request::get("/orders/1"));
        let records = logged(&envoy);
        // Two allowed (sampled out), the third limited, then a 403 and a 401: all three denials kept.
        assert_eq!(records.len(), 3, "{}", envoy.log_text());
        assert_chain(&records);
        assert_eq!(envoy.metric("zt_audit.sampled_out"), Some(2));

        let mut envoy = full_chain(layout, &json!({}));
        for sub in ["a", "b", "c", "d"] {
            envoy.send(request(sub, "orders:read"));
        }
        assert_chain(&logged(&envoy));
    }
}

#[test]
fn records_reach_the_log_several_per_log_call_within_the_batch_age() {
    for layout in Layout::ALL {
        let mut envoy = Harness::new();
        envoy.clock().set_unix_seconds(NOW);
        let (jwt, authz, ratelimit, audit) = (
            jwt_config(),
            authz_config(),
            ratelimit_config(),
            json!({"log_batch_records": 4, "log_batch_age_ms": 200}),
        );
        let sections = [("jwt", &jwt), ("authz", &authz), ("ratelimit", &ratelimit), ("audit", &audit)];
        for filter in layout.filters(&sections, &[]) {
            envoy.load(filter).unwrap();
        }
        let log_calls = |envoy: &Harness| envoy.logs().iter().filter(|l| l.message.contains(MARKER)).count();
        for sub in ["a", "b", "c"] {
            envoy.send(request(sub, "orders:read"));
        }
        assert_eq!(log_calls(&envoy), 0, "{layout:?}: three records wait for a fourth");
        envoy.send(request("d", "orders:read"));
        assert_eq!((log_calls(&envoy), logged(&envoy).len()), (1, 4), "{layout:?}: a full batch, one log call");
        envoy.send(request("e", "orders:read"));
        envoy.advance(std::time::Duration::from_millis(150)).unwrap();
        assert_eq!(logged(&envoy).len(), 4, "{layout:?}: the fifth is younger than the batch age");
        envoy.advance(std::time::Duration::from_millis(100)).unwrap();
        assert_eq!((log_calls(&envoy), logged(&envoy).len()), (2, 5), "{layout:?}: written once 200 ms old");
        assert_chain(&logged(&envoy));
    }
}

#[test]
fn two_workers_keep_two_chains() {
    let mut envoy = Harness::new();
    envoy.load(FilterSpec::new("zt_audit", each_record_text("{}")).name("audit-a")).unwrap();
    envoy.load(FilterSpec::new("zt_audit", each_record_text("{}")).name("audit-b").vm_id("other")).unwrap();
    envoy.send(Request::get("/x"));
    let records: Vec<Value> = logged(&envoy).iter().map(|t| parse(t)).collect();
    assert_eq!(records.len(), 2);
    assert_ne!(records[0]["chain"], records[1]["chain"]);
    assert!(records.iter().all(|r| r["seq"] == 0));
}

#[test]
fn alone_it_records_what_envoy_knows() {
    let mut envoy = Harness::new();
    envoy
        .load(FilterSpec::new(
            "zt_audit",
            each_record_text(r#"{"headers": ["authorization", "x-api-key"], "redact_headers": ["x-api-key"]}"#),
        ))
        .unwrap();
    let exchange = envoy.send(
        Request::post("/upload", vec![b'x'; 300])
            .header("authorization", "Bearer NOT-VERIFIED-BUT-SECRET")
            .header("x-api-key", "KEY-SECRET")
            .upstream_response(403, &[])
            .attribute("response.flags", (0x2u64 | 0x4000).to_le_bytes())
            .attribute("source.address", "[2001:db8::7]:443"),
    );
    assert!(exchange.reached_upstream());
    let r = parse(&logged(&envoy)[0]);
    assert!(r.get("decisions").is_none() && r.get("identity").is_none());
    assert_eq!(r["outcome"], "deny", "a 403 from elsewhere is a denial");
    assert_eq!(r["flags"], json!(["UH", "DC"]));
    assert_eq!(r["bytes_in"], 300);
    assert_eq!(r["source"], json!({"address": "2001:db8::7", "port": 443}));
    assert_eq!(r["headers"], json!({"authorization": "[redacted]", "x-api-key": "[redacted]"}));
    assert!(!envoy.log_text().contains("SECRET"));
}

fn otlp_records(body: &[u8]) -> Vec<Value> {
    let export: Value = serde_json::from_slice(body).unwrap();
    export["resourceLogs"][0]["scopeLogs"][0]["logRecords"].as_array().unwrap().clone()
}

fn seqs(body: &[u8]) -> Vec<u64> {
    otlp_records(body)
        .iter()
        .map(|r| parse(r["body"]["stringValue"].as_str().unwrap())["seq"].as_u64().unwrap())
        .collect()
}

#[test]
fn exports_batches_to_the_collector() {
    for layout in Layout::ALL {
        let audit = json!({"collector": {"cluster": "otel", "batch_records": 3, "batch_age_ms": 1000,
                                         "headers": {"x-api-key": "COLLECTOR-KEY"}}});
        let mut envoy = full_chain(layout, &audit);
        envoy.script_http("otel", ScriptedResponse::ok("{}"));
        for sub in ["a", "b", "c", "d"] {
            envoy.send(request(sub, "orders:read"));
        }
        assert!(envoy.http_calls().is_empty(), "nothing leaves on the request path");
        envoy.advance(StdDuration::from_millis(300)).unwrap();
        let calls = envoy.http_calls();
        assert_eq!(calls.len(), 1, "a full batch leaves at the next tick");
        let call = &calls[0];
        assert_eq!(call.cluster, "otel");
        assert_eq!((call.header(":method"), call.header(":path")), (Some("POST"), Some("/v1/logs")));
        assert_eq!(
            (call.header("content-type"), call.header("x-api-key")),
            (Some("application/json"), Some("COLLECTOR-KEY"))
        );
        assert_eq!(call.timeout, StdDuration::from_millis(5000));
        assert_eq!(seqs(&call.body), [0, 1, 2]);
        let first = &otlp_records(&call.body)[0];
        assert_eq!(first["traceId"], "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(first["severityText"], "INFO");
        // The fourth record leaves when it is a batch age old.
        envoy.advance(StdDuration::from_millis(1000)).unwrap();
        let calls = envoy.http_calls();
        assert_eq!(calls.len(), 2);
        assert_eq!(seqs(&calls[1].body), [3]);
        assert_eq!(envoy.metric("zt_audit.collector.exported"), Some(4));
        assert_eq!(envoy.metric("zt_audit.collector.batches"), Some(2));
        assert!(!envoy.log_text().contains("COLLECTOR-KEY"));
    }
}

#[test]
fn a_failing_collector_gets_the_records_again_in_order() {
    for layout in Layout::ALL {
        let mut envoy =
            full_chain(layout, &json!({"collector": {"cluster": "otel", "batch_records": 2, "batch_age_ms": 400}}));
        envoy.script_http("otel", ScriptedResponse::status(503, "busy"));
        envoy.send(request("a", "orders:read"));
        envoy.send(request("b", "orders:read"));
        envoy.advance(StdDuration::from_millis(100)).unwrap();
        assert_eq!(envoy.metric("zt_audit.collector.failures"), Some(1));
        envoy.script_http("otel", ScriptedResponse::Fail);
        envoy.advance(StdDuration::from_millis(500)).unwrap();
        assert_eq!(envoy.metric("zt_audit.collector.failures"), Some(2), "retried once after the back-off");
        envoy.script_http("otel", ScriptedResponse::ok("{}"));
        envoy.send(request("c", "orders:read"));
        envoy.advance(StdDuration::from_millis(500)).unwrap();
        let calls = envoy.http_calls();
        // The failed pair twice, then delivered; the newer record once it is a batch age old.
        assert_eq!(
            calls.iter().map(|c| seqs(&c.body)).collect::<Vec<_>>(),
            [vec![0, 1], vec![0, 1], vec![0, 1], vec![2]]
        );
        assert_eq!(envoy.metric("zt_audit.collector.exported"), Some(3));
        assert_eq!(envoy.metric("zt_audit.collector.dropped").unwrap_or(0), 0);
        assert!(envoy.log_text().contains("collector export failed"));
    }
}

#[test]
fn a_slow_collector_makes_records_wait_then_drop_without_blocking_requests() {
    for layout in Layout::ALL {
        let audit = json!({"collector": {"cluster": "otel", "batch_records": 2, "batch_age_ms": 100, "queue_records": 4,
                                         "drop_after_ms": 2000, "timeout_ms": 1000}});
        let mut envoy = full_chain(layout, &audit);
        envoy.script_http("otel", ScriptedResponse::Hold);
        envoy.send(request("a", "orders:read"));
        envoy.send(request("b", "orders:read"));
        envoy.advance(StdDuration::from_millis(50)).unwrap();
        assert_eq!(envoy.http_calls().len(), 1, "one export in flight");
        // Requests keep flowing while the export hangs; their records queue behind it.
        for sub in ["c", "d", "e", "f", "g", "h"] {
            assert!(envoy.send(request(sub, "orders:read")).reached_upstream());
        }
        envoy.advance(StdDuration::from_millis(500)).unwrap();
        assert_eq!(envoy.http_calls().len(), 1, "no second export while one is in flight");
        // The queue holds 4: of the 6 queued, the 2 oldest went.
        assert_eq!(envoy.metric("zt_audit.collector.dropped"), Some(2));
        assert!(envoy.log_text().contains("dropped 1 records of chain"), "{}", envoy.log_text());
        // Envoy's timeout fails the call; the 2 come back first, the queue is full: the oldest go.
        envoy.script_http("otel", ScriptedResponse::Fail);
        envoy.advance(StdDuration::from_millis(100)).unwrap();
        assert_eq!(envoy.metric("zt_audit.collector.dropped"), Some(4));
        envoy.script_http("otel", ScriptedResponse::ok("{}"));
        envoy.advance(StdDuration::from_millis(400)).unwrap();
        let delivered: Vec<u64> =
            envoy.http_calls().iter().skip(1).filter(|c| !c.body.is_empty()).flat_map(|c| seqs(&c.body)).collect();
        assert_eq!(delivered, [4, 5, 6, 7], "the newest survive, in order");
        // Envoy's log still holds every record: its chain is whole.
        let all = logged(&envoy);
        assert_eq!(all.len(), 8);
        assert_chain(&all);
    }
}

#[test]
fn old_records_are_dropped_when_the_collector_stays_down() {
    for layout in Layout::ALL {
        let audit =
            json!({"collector": {"cluster": "otel", "batch_records": 10, "batch_age_ms": 100, "drop_after_ms": 1000}});
        let mut envoy = full_chain(layout, &audit);
        envoy.script_http("otel", ScriptedResponse::Fail);
        envoy.send(request("a", "orders:read"));
        envoy.advance(StdDuration::from_millis(1500)).unwrap();
        assert_eq!(envoy.metric("zt_audit.collector.dropped"), Some(1));
        assert!(envoy.metric("zt_audit.collector.failures").unwrap() >= 2);
    }
}

#[test]
fn ndjson_exports_one_record_per_line() {
    for layout in Layout::ALL {
        let mut envoy = full_chain(
            layout,
            &json!({"log": false, "collector": {"cluster": "logs", "format": "ndjson", "path": "/ingest", "batch_records": 2}}),
        );
        envoy.script_http("logs", ScriptedResponse::ok(""));
        envoy.send(request("a", "orders:read"));
        envoy.send(request("b", "orders:read"));
        envoy.advance(StdDuration::from_millis(300)).unwrap();
        let call = &envoy.http_calls()[0];
        assert_eq!(
            (call.header(":path"), call.header("content-type")),
            (Some("/ingest"), Some("application/x-ndjson"))
        );
        let lines: Vec<String> = String::from_utf8(call.body.clone()).unwrap().lines().map(str::to_owned).collect();
        assert_chain(&lines);
        assert!(logged(&envoy).is_empty(), "log: false");
    }
}

#[test]
fn refuses_a_bad_configuration_naming_the_field() {
    let mut envoy = Harness::new();
    let refused = envoy.load(FilterSpec::new("zt_audit", r#"{"collector": {"cluster": "otel", "batch_records": 0}}"#));
    assert!(matches!(refused, Err(HarnessError::ConfigureRefused { .. })), "{refused:?}");
    assert!(envoy.log_text().contains("collector.batch_records"), "{}", envoy.log_text());
}

#[test]
fn the_source_is_the_real_peer_never_a_forwarded_for_header() {
    let mut envoy = Harness::new();
    envoy.load(FilterSpec::new("zt_audit", each_record_text("{}"))).unwrap();
    envoy.send(Request::get("/x").forwarded_for("10.1.2.3"));
    envoy.send(Request::get("/x").forwarded_for("10.1.2.3").peer_address_state("127.0.0.1:40000"));
    let records = logged(&envoy);
    let forged = parse(&records[0]);
    assert!(forged.get("source").is_none(), "no trustworthy peer: no source, {forged}");
    assert_eq!(forged["remote"], "10.1.2.3");
    let named = parse(&records[1]);
    assert_eq!(named["source"], json!({"address": "127.0.0.1", "port": 40000}));
    assert_eq!(named["remote"], "10.1.2.3");
}

const CHAIN_KEY: &str = "audit-chain-key-for-tests-0123456789";

fn hmac_hex(text: &str) -> String {
    let key = zt_core::audit::ChainKey::from_secret(CHAIN_KEY.as_bytes()).unwrap();
    key.mac(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_keyed_chain_takes_its_key_from_the_vm_environment_and_checkpoints_to_the_collector() {
    for layout in Layout::ALL {
        let audit = json!({
            "chain_key": {"env": "ZT_AUDIT_CHAIN_KEY"},
            "collector": {"cluster": "logs", "format": "ndjson", "batch_records": 10, "checkpoint_records": 3},
        });
        // As a Kubernetes Secret mounted as an environment variable often is: with a newline.
        let key = format!("{CHAIN_KEY}\n");
        let mut envoy = full_chain_with(layout, &audit, &[("ZT_AUDIT_CHAIN_KEY", &key)]);
        envoy.script_http("logs", ScriptedResponse::ok(""));
        for sub in ["a", "b", "c", "d"] {
            envoy.send(request(sub, "orders:read"));
        }
        let records = logged(&envoy);
        assert_eq!(records.len(), 4);
        let mut prev = "0".repeat(64);
        for (seq, text) in records.iter().enumerate() {
            let record = parse(text);
            assert_eq!((record["seq"].as_u64(), record["prev_alg"].as_str()), (Some(seq as u64), Some("hmac-sha256")));
            assert_eq!(record["prev"], prev.as_str(), "{text}");
            assert_ne!(prev, Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect::<String>());
            prev = hmac_hex(text);
        }
        assert!(!envoy.log_text().contains(CHAIN_KEY), "the key is never logged");
        assert!(envoy.log_text().contains("prev hmac-sha256"), "{}", envoy.log_text());
        // The collector gets records 0-2, the checkpoint after record 2, then record 3.
        envoy.advance(StdDuration::from_millis(1300)).unwrap();
        let body = String::from_utf8(envoy.http_calls()[0].body.clone()).unwrap();
        let lines: Vec<Value> = body.lines().map(parse).collect();
        assert_eq!(lines.len(), 5, "{body}");
        let checkpoint = &lines[3]["checkpoint"];
        assert_eq!((checkpoint["seq"].as_u64(), checkpoint["prev_alg"].as_str()), (Some(2), Some("hmac-sha256")));
        assert_eq!(checkpoint["chain"], parse(&records[0])["chain"]);
        assert_eq!(checkpoint["head"], hmac_hex(&records[2]).as_str());
        assert_eq!(lines[4]["seq"], 3);
        assert_eq!(envoy.metric("zt_audit.collector.exported"), Some(4), "a checkpoint is not a record");
    }
}

#[test]
fn a_quiet_worker_checkpoints_its_last_records_on_the_timer() {
    for layout in Layout::ALL {
        let audit = json!({"collector": {"cluster": "otel", "batch_age_ms": 100, "checkpoint_interval_ms": 1000}});
        let mut envoy = full_chain(layout, &audit);
        envoy.script_http("otel", ScriptedResponse::ok("{}"));
        envoy.send(request("a", "orders:read"));
        envoy.advance(StdDuration::from_millis(2000)).unwrap();
        let bodies: Vec<Value> = envoy.http_calls().iter().flat_map(|call| otlp_records(&call.body)).collect();
        assert_eq!(bodies.len(), 2, "the record, then its checkpoint: {bodies:?}");
        let event = json!({"key": "event.name", "value": {"stringValue": "zt.audit.checkpoint"}});
        assert!(bodies[1]["attributes"].as_array().unwrap().contains(&event));
        let checkpoint = parse(bodies[1]["body"]["stringValue"].as_str().unwrap());
        let record = bodies[0]["body"]["stringValue"].as_str().unwrap();
        assert_eq!(checkpoint["checkpoint"]["prev_alg"], "sha256");
        let digest: String = Sha256::digest(record.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(checkpoint["checkpoint"]["head"], digest.as_str());
        // Nothing new: no further checkpoint.
        envoy.advance(StdDuration::from_millis(3000)).unwrap();
        let after: usize = envoy.http_calls().iter().map(|call| otlp_records(&call.body).len()).sum();
        assert_eq!(after, 2);
    }
}

#[test]
fn refuses_to_start_when_the_configured_key_is_missing_or_short() {
    let audit = r#"{"chain_key": {"env": "ZT_AUDIT_CHAIN_KEY"}}"#;
    let mut envoy = Harness::new();
    let refused = envoy.load(FilterSpec::new("zt_audit", audit));
    assert!(matches!(refused, Err(HarnessError::ConfigureRefused { .. })), "{refused:?}");
    assert!(envoy.log_text().contains("chain_key.env: the environment variable ZT_AUDIT_CHAIN_KEY is not set"));
    let mut envoy = Harness::new();
    let refused = envoy.load(FilterSpec::new("zt_audit", audit).env("ZT_AUDIT_CHAIN_KEY", "too-short-a-key"));
    assert!(matches!(refused, Err(HarnessError::ConfigureRefused { .. })), "{refused:?}");
    assert!(envoy.log_text().contains("chain_key.env: ZT_AUDIT_CHAIN_KEY: the chain key has 15 bytes"));
    assert!(!envoy.log_text().contains("too-short-a-key"), "the key is never logged");
}

/// Istio's proxies log at `warning`, where Envoy drops `info` messages without a word: records at
/// the default level are then counted and the operator told how to keep them, never silently
/// lost; with `log_level: warning` they are written at that level.
#[test]
fn below_envoys_log_level_records_are_counted_and_at_warning_they_are_written() {
    for layout in Layout::ALL {
        let mut envoy = full_chain_at(layout, &json!({}), &[], LogLevel::Warn);
        for _ in 0..2 {
            assert!(envoy.send(request("alice", "orders:read")).reached_upstream());
        }
        assert!(logged(&envoy).is_empty(), "{layout:?}: nothing written that Envoy would drop");
        assert_eq!(envoy.metric("zt_audit.log.below_level"), Some(2), "{layout:?}");
        let told: Vec<_> = envoy.logs().into_iter().filter(|l| l.message.contains("log_level to warning")).collect();
        assert_eq!(told.len(), 1, "{layout:?}: told once per VM: {}", envoy.log_text());
        assert_eq!(told[0].level, LogLevel::Error, "at a level Envoy keeps");

        let mut envoy = full_chain_at(layout, &json!({"log_level": "warning"}), &[], LogLevel::Warn);
        assert!(envoy.send(request("alice", "orders:read")).reached_upstream());
        let records: Vec<_> = envoy.logs().into_iter().filter(|l| l.message.contains(MARKER)).collect();
        assert_eq!(records.len(), 1, "{layout:?}: {}", envoy.log_text());
        assert_eq!(records[0].level, LogLevel::Warn);
        assert_eq!(envoy.metric("zt_audit.log.below_level"), Some(0), "{layout:?}");
    }
}
