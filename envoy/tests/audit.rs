//! The whole chain in a real Envoy (`configs/zero-trust.yaml`): exactly one audit record per
//! request (allowed, refused by each filter, limited), each matching its request, in intact
//! per-worker chains, in Envoy's log and at an OTLP/HTTP collector whose bodies the official
//! OpenTelemetry protobuf definitions parse; then with the collector down: drops counted,
//! requests not slowed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use zt_envoy_tests::collector::Collector;
use zt_envoy_tests::full_chain::{Layout, audit_plugin_config, render_full_chain};
use zt_envoy_tests::otlp::decode_with_official_proto;
use zt_envoy_tests::zero_trust::Certs;
use zt_envoy_tests::{Alg, EchoUpstream, Envoy, KeySet, Ports, Started, get};

const TIMEOUT: Duration = Duration::from_secs(5);
const MARKER: &str = "zt.audit.v1 ";
/// Requests of the mixed run: a quarter each allowed, without a token (401), without the scope
/// (403), and one client's (quota 5, then 429).
const REQUESTS: usize = 64;
const HOT_QUOTA: usize = 5;

fn start(config: &str, concurrency: u32) -> Envoy {
    match Envoy::start(config, concurrency).unwrap_or_else(|e| panic!("{e}")) {
        Started::Ready(envoy) => envoy,
        Started::Exited { status, log } => panic!("Envoy exited ({status}):\n{log}"),
    }
}

/// Limits by `x-client`: every client its own bucket of 5 an hour.
fn ratelimit_config() -> String {
    json!({
        "limits": {"per-client": {"quota": HOT_QUOTA, "window_seconds": 3600, "key": [{"header": "x-client"}]}},
        "defaults": {"limits": ["per-client"]},
        "max_keys": 1024,
    })
    .to_string()
}

fn audit_config(collector: Value) -> String {
    let mut config: Value = serde_json::from_str(&audit_plugin_config(Some(collector))).unwrap();
    config["headers"] = json!(["x-test-id", "authorization", "cookie", "user-agent"]);
    config.to_string()
}

/// The records in Envoy's log, as text.
fn logged(log: &str) -> Vec<String> {
    log.lines().filter_map(|l| l.find(MARKER).map(|i| l[i + MARKER.len()..].trim_end().to_owned())).collect()
}

/// The chain rules over records in log order: per chain, seq from 0 up by one, each `prev` the
/// SHA-256 of the chain's record before it.
fn assert_chains(records: &[String]) -> BTreeMap<String, u64> {
    let mut chains: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for text in records {
        let r: Value = serde_json::from_str(text).unwrap();
        let chain = r["chain"].as_str().unwrap().to_owned();
        let (next, prev) = chains.entry(chain.clone()).or_insert((0, "0".repeat(64)));
        assert_eq!(r["seq"].as_u64(), Some(*next), "chain {chain}: {text}");
        assert_eq!(r["prev"].as_str(), Some(prev.as_str()), "chain {chain}: {text}");
        *next += 1;
        *prev = Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    }
    chains.into_iter().map(|(chain, (count, _))| (chain, count)).collect()
}

/// `ztctl verify` on a file: the operator's check of the same log.
fn ztctl_verify(path: &std::path::Path) -> (bool, String) {
    zt_envoy_tests::ztctl(&["verify", path.to_str().unwrap()])
}

struct Sent {
    id: usize,
    status: u16,
    millis: u128,
}

/// Sends the mixed workload from 8 threads, each request on its own connection.
fn mixed_workload(port: u16, keys: &KeySet, count: usize) -> Vec<Sent> {
    let allowed = format!(
        "Bearer {}",
        keys.valid_with(Alg::Es256, json!({"scope": "orders:read", "env": "production"})).unwrap()
    );
    let unscoped =
        format!("Bearer {}", keys.valid_with(Alg::Es256, json!({"scope": "profile", "env": "production"})).unwrap());
    let sent = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for worker in 0..8 {
            let (sent, allowed, unscoped) = (&sent, &allowed, &unscoped);
            scope.spawn(move || {
                for id in (worker..count).step_by(8) {
                    let test_id = id.to_string();
                    let client = format!("client-{id}");
                    let mut headers = vec![("x-test-id", test_id.as_str()), ("cookie", "session=COOKIE-SECRET-77")];
                    match id % 4 {
                        0 => headers.extend([("authorization", allowed.as_str()), ("x-client", client.as_str())]),
                        1 => headers.push(("x-client", client.as_str())),
                        2 => headers.extend([("authorization", unscoped.as_str()), ("x-client", client.as_str())]),
                        _ => headers.extend([("authorization", allowed.as_str()), ("x-client", "hot")]),
                    }
                    let started = Instant::now();
                    let status = get(port, &format!("/orders/{id}?access_token=QUERY-SECRET"), &headers, TIMEOUT)
                        .map(|r| r.status)
                        .unwrap_or_else(|e| panic!("request {id}: {e}"));
                    sent.lock().unwrap().push(Sent { id, status, millis: started.elapsed().as_millis() });
                }
            });
        }
    });
    sent.into_inner().unwrap()
}

fn expected(id: usize, status: u16) -> (&'static str, u16) {
    match id % 4 {
        0 => ("allow", 200),
        1 => ("deny", 401),
        2 => ("deny", 403),
        _ if status == 200 => ("allow", 200),
        _ => ("limited", 429),
    }
}

#[test]
fn every_request_gets_one_record_in_intact_chains_in_the_log_and_at_the_collector() {
    for layout in Layout::ALL {
        let keys = KeySet::generate().unwrap();
        let echo = EchoUpstream::start().unwrap();
        let collector = Collector::start().unwrap();
        let audit = audit_config(json!({"cluster": "otel", "batch_records": 10, "batch_age_ms": 200}));
        let ports = Ports { upstream: echo.port(), ..Ports::default() };
        let certs = Certs::generate(&[]).unwrap();
        let config =
            render_full_chain(layout, ports, collector.port(), certs.dir(), &keys.jwks(), &ratelimit_config(), &audit)
                .unwrap();
        let envoy = start(&config, 2);

        let sent = mixed_workload(envoy.port(), &keys, REQUESTS);
        assert_eq!(sent.len(), REQUESTS);
        let hot_admitted = sent.iter().filter(|s| s.id % 4 == 3 && s.status == 200).count();
        assert_eq!(hot_admitted, HOT_QUOTA, "{}", envoy.log());
        for s in &sent {
            assert_eq!(s.status, expected(s.id, s.status).1, "request {}\n{}", s.id, envoy.log());
        }

        // Envoy's log: exactly one record per request, matching it.
        let deadline = Instant::now() + TIMEOUT;
        while logged(&envoy.log()).len() < REQUESTS && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = envoy.log();
        let records = logged(&log);
        assert_eq!(records.len(), REQUESTS, "{log}");
        let mut by_id: BTreeMap<usize, Value> = BTreeMap::new();
        for text in &records {
            let r: Value = serde_json::from_str(text).unwrap();
            let id: usize = r["headers"]["x-test-id"].as_str().unwrap().parse().unwrap();
            assert!(by_id.insert(id, r).is_none(), "two records for request {id}");
        }
        for s in &sent {
            let r = &by_id[&s.id];
            let (outcome, status) = expected(s.id, s.status);
            assert_eq!((r["outcome"].as_str(), r["status"].as_u64()), (Some(outcome), Some(u64::from(status))), "{r}");
            assert_eq!((r["method"].as_str(), r["route"].as_str()), (Some("GET"), Some("orders")), "{r}");
            assert_eq!(r["path"], format!("/orders/{}", s.id), "query dropped");
            assert!(r["request_id"].is_string() && r["time"].is_string() && r["duration_ms"].is_number(), "{r}");
            assert_eq!(r["source"]["address"], "127.0.0.1");
            assert_eq!(r["headers"]["cookie"], "[redacted]");
            if status == 200 {
                assert_eq!(r["cluster"], "upstream");
                assert_eq!(r["identity"]["sub"], zt_envoy_tests::SUBJECT);
                assert_eq!(r["decisions"]["ratelimit"]["decision"], "admitted");
            }
            match status {
                // A token is optional for the JWT filter; the orders policy needs an identity.
                401 => {
                    assert_eq!(r["decisions"]["jwt"]["decision"], "anonymous", "{r}");
                    assert_eq!(r["decisions"]["authz"]["reason"], "identity_missing", "{r}");
                }
                403 => assert_eq!(r["decisions"]["authz"]["decision"], "deny", "{r}"),
                429 => assert_eq!(r["decisions"]["ratelimit"]["limit"], "per-client", "{r}"),
                _ => {}
            }
        }
        let chains = assert_chains(&records);
        assert!(!chains.is_empty() && chains.values().sum::<u64>() == REQUESTS as u64, "{chains:?}");
        for secret in ["COOKIE-SECRET-77", "QUERY-SECRET", keys.valid(Alg::Es256).unwrap().split('.').nth(1).unwrap()] {
            assert!(!log.contains(secret), "{secret} in Envoy's log");
        }

        // The collector: the same records, parsed with the official OTLP protobuf definitions.
        assert!(
            collector.wait_for(
                |r| r.iter().map(|r| r.body_text().matches("\"logRecords\"").count()).sum::<usize>() > 0
                    && decode_count(r) >= REQUESTS,
                TIMEOUT
            ),
            "collector got {} records\n{}",
            decode_count(&collector.requests()),
            envoy.log()
        );
        let received = collector.requests();
        assert!(received.iter().all(|r| r.path == "/v1/logs" && r.header("content-type") == Some("application/json")));
        let bodies: Vec<Vec<u8>> = received.iter().map(|r| r.body.clone()).collect();
        let decoded = decode_with_official_proto(&bodies).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(decoded.len(), REQUESTS);
        let mut exported: Vec<String> = decoded.iter().map(|d| d.body_str().unwrap().to_owned()).collect();
        let mut in_log = records.clone();
        exported.sort();
        in_log.sort();
        assert_eq!(exported, in_log, "the collector got exactly the logged records");
        for d in &decoded {
            assert_eq!(d.resource.get("service.name"), Some(&json!("zt-audit")));
            assert_eq!(d.scope.name, "zt-audit");
            assert!(d.time_unix_nano > 1_700_000_000_000_000_000 && d.observed_time_unix_nano >= d.time_unix_nano);
            assert!(d.attribute("zt.audit.chain").is_some() && d.attribute("zt.audit.seq").is_some());
        }
        assert_eq!(envoy.stat("wasmcustom.zt_audit.collector.exported"), Some(REQUESTS as u64));

        // The operator's tool agrees on the log, and finds an edit.
        let dir = std::env::temp_dir().join(format!("zt-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("envoy.log");
        std::fs::write(&file, &log).unwrap();
        let (intact, report) = ztctl_verify(&file);
        assert!(intact, "{report}");
        let edited = log.replacen("\"status\":403", "\"status\":200", 1);
        std::fs::write(&file, edited).unwrap();
        let (intact, report) = ztctl_verify(&file);
        assert!(!intact && report.contains("broken"), "{report}");
        std::fs::remove_dir_all(&dir).unwrap();
        let p50 = median(sent.iter().map(|s| s.millis).collect());
        eprintln!(
            "{REQUESTS} requests, {} chains {chains:?}, {} export requests, p50 {p50} ms",
            chains.len(),
            received.len()
        );
    }
}

fn decode_count(received: &[zt_envoy_tests::collector::Received]) -> usize {
    received
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .map(|v| v["resourceLogs"][0]["scopeLogs"][0]["logRecords"].as_array().map_or(0, Vec::len))
        .sum()
}

fn median(mut values: Vec<u128>) -> u128 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

#[test]
fn with_the_collector_down_records_are_dropped_and_counted_and_requests_do_not_wait() {
    for layout in Layout::ALL {
        let keys = KeySet::generate().unwrap();
        let echo = EchoUpstream::start().unwrap();
        let collector = Collector::start().unwrap();
        let collector_port = collector.port();
        collector.stop();
        let audit =
            audit_config(json!({"cluster": "otel", "batch_records": 5, "batch_age_ms": 100, "queue_records": 10,
                                        "drop_after_ms": 500, "timeout_ms": 1000}));
        let ports = Ports { upstream: echo.port(), ..Ports::default() };
        let certs = Certs::generate(&[]).unwrap();
        let config =
            render_full_chain(layout, ports, collector_port, certs.dir(), &keys.jwks(), &ratelimit_config(), &audit)
                .unwrap();
        let envoy = start(&config, 2);
        let sent = mixed_workload(envoy.port(), &keys, REQUESTS);
        let slowest = sent.iter().map(|s| s.millis).max().unwrap();
        // Give the timers time to try, fail, back off and give up on every record.
        let deadline = Instant::now() + Duration::from_secs(10);
        while envoy.stat("wasmcustom.zt_audit.collector.dropped").unwrap_or(0) < REQUESTS as u64
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        let dropped = envoy.stat("wasmcustom.zt_audit.collector.dropped").unwrap_or(0);
        let failures = envoy.stat("wasmcustom.zt_audit.collector.failures").unwrap_or(0);
        let log = envoy.log();
        assert_eq!(dropped, REQUESTS as u64, "every record was given up on for the collector\n{log}");
        assert!(failures >= 2, "{failures}");
        assert!(log.contains("records of chain") && log.contains("it was slow or down"), "{log}");
        // Envoy's log still has them all, chained.
        let records = logged(&log);
        assert_eq!(records.len(), REQUESTS);
        assert_chains(&records);
        // The request path never waited for the collector: no request took as long as one export
        // timeout (1 s); the typical one took milliseconds.
        let p50 = median(sent.iter().map(|s| s.millis).collect());
        assert!(slowest < 1000, "slowest request {slowest} ms");
        eprintln!("collector down: {dropped} dropped, {failures} failed exports, p50 {p50} ms, slowest {slowest} ms");
    }
}

#[test]
fn records_waiting_for_the_log_are_written_when_envoy_stops() {
    let keys = KeySet::generate().unwrap();
    let echo = EchoUpstream::start().unwrap();
    let mut audit: Value = serde_json::from_str(&audit_config(json!({"cluster": "otel"}))).unwrap();
    // Neither a full batch nor its age: only the VM's stop can write them.
    audit["log_batch_records"] = json!(1000);
    audit["log_batch_age_ms"] = json!(10_000);
    let ports = Ports { upstream: echo.port(), ..Ports::default() };
    let certs = Certs::generate(&[]).unwrap();
    let config =
        render_full_chain(Layout::Suite, ports, 1, certs.dir(), &keys.jwks(), &ratelimit_config(), &audit.to_string())
            .unwrap();
    let mut envoy = start(&config, 2);
    let sent = mixed_workload(envoy.port(), &keys, 8);
    assert_eq!(sent.len(), 8);
    assert!(logged(&envoy.log()).is_empty(), "the records wait in their workers");
    assert!(envoy.terminate(Duration::from_secs(10)), "Envoy stops on SIGTERM");
    let log = envoy.log();
    let records = logged(&log);
    assert_eq!(records.len(), 8, "{log}");
    assert_chains(&records);
}

/// Istio's pilot-agent starts Envoy with these `--log-format`s (text, and JSON when
/// `proxyMetadata`/mesh config asks for JSON logs), at its proxy log level `warning` with
/// `misc:error`.
const ISTIO_LOG_FORMATS: [(&str, &str); 2] = [
    ("text", "%Y-%m-%dT%T.%fZ\t%l\tenvoy %n %g:%#\t%v\tthread=%t"),
    ("json", r#"{"level":"%l","time":"%Y-%m-%dT%T.%fZ","scope":"envoy %n","msg":"%j","caller":"%g:%#","thread":%t}"#),
];

/// Envoy as Istio runs it, the audit stage at `log_level: warning` (the one setting the Istio
/// examples carry): every record reaches the log in batches, and `ztctl verify` reads Istio's
/// text and JSON lines as they come out of the container (`kubectl logs`), every chain intact,
/// the count exact.
#[test]
fn records_verify_under_istios_log_formats_at_its_log_level() {
    const SENT: usize = 12;
    let keys = KeySet::generate().unwrap();
    let certs = Certs::generate(&[]).unwrap();
    let dir = std::env::temp_dir().join(format!("zt-audit-istio-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for layout in Layout::ALL {
        for (name, format) in ISTIO_LOG_FORMATS {
            let echo = EchoUpstream::start().unwrap();
            let mut audit: Value = serde_json::from_str(&audit_plugin_config(None)).unwrap();
            audit["log_level"] = json!("warning");
            let ports = Ports { upstream: echo.port(), ..Ports::default() };
            let config =
                render_full_chain(layout, ports, 1, certs.dir(), &keys.jwks(), &ratelimit_config(), &audit.to_string())
                    .unwrap();
            let istio = ["-l", "warning", "--component-log-level", "misc:error", "--log-format", format];
            let mut envoy = match Envoy::start_logging(&config, 2, &istio).unwrap_or_else(|e| panic!("{e}")) {
                Started::Ready(envoy) => envoy,
                Started::Exited { status, log } => panic!("Envoy exited ({status}):\n{log}"),
            };
            assert_eq!(mixed_workload(envoy.port(), &keys, SENT).len(), SENT);
            // Records wait in their workers' batches: stopping writes them all.
            assert!(envoy.terminate(Duration::from_secs(10)), "Envoy stops on SIGTERM");
            let log = envoy.log();
            assert!(!log.contains("drops audit records"), "{layout:?} {name}: the level keeps them:\n{log}");
            let file = dir.join(format!("{layout:?}-{name}.log"));
            std::fs::write(&file, &log).unwrap();
            let (intact, report) = ztctl_verify(&file);
            assert!(intact, "{layout:?} {name}: {report}\n{log}");
            assert!(report.contains(&format!("{SENT} records")), "{layout:?} {name}: {report}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
