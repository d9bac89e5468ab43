//! `zt-jwt` then `zt-authz` in a real Envoy (`configs/zero-trust.yaml`): plaintext and mutual
//! TLS on one listener, client certificates with SPIFFE URI SANs made by the test, the echo
//! upstream behind. What a client sees, and what never reaches the upstream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};
use zt_envoy_tests::full_chain::{
    Layout, StageConfigs, audit_plugin_config, chain_ratelimit_plugin_config, render_full_chain, render_stages,
    unlimited_ratelimit_plugin_config,
};
use zt_envoy_tests::zero_trust::{BILLING_SPIFFE_ID, Certs, SHOP_SPIFFE_ID, mtls_get};
use zt_envoy_tests::{Alg, EchoUpstream, Envoy, KeySet, Ports, SUBJECT, get, template};

const TIMEOUT: Duration = Duration::from_secs(5);
const BILLING: Option<usize> = Some(0);
const SHOP: Option<usize> = Some(1);

fn keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| KeySet::generate().unwrap())
}

struct Bed {
    echo: EchoUpstream,
    envoy: Envoy,
    certs: Certs,
}

fn bed(layout: Layout) -> Bed {
    // No limits here: these tests send many requests from one address to probe the policy.
    bed_with(layout, &unlimited_ratelimit_plugin_config())
}

fn bed_with(layout: Layout, ratelimit_config: &str) -> Bed {
    let certs = Certs::generate(&[BILLING_SPIFFE_ID, SHOP_SPIFFE_ID]).unwrap_or_else(|e| panic!("{e}"));
    let echo = EchoUpstream::start().unwrap();
    let ports = Ports { upstream: echo.port(), ..Ports::default() };
    let config =
        render_full_chain(layout, ports, 1, certs.dir(), &keys().jwks(), ratelimit_config, &audit_plugin_config(None))
            .unwrap_or_else(|e| panic!("{e}"));
    let envoy = Envoy::serve(&config).unwrap_or_else(|e| panic!("{e}"));
    Bed { echo, envoy, certs }
}

fn token(scope: &str, env: &str) -> String {
    keys().valid_with(Alg::Es256, json!({"scope": scope, "env": env})).unwrap()
}

fn policy_of(body: &str) -> Value {
    serde_json::from_str::<Value>(body).map(|b| b["policy"].clone()).unwrap_or(Value::Null)
}

#[test]
fn the_workload_identity_decides_the_admin_route() {
    for layout in Layout::ALL {
        let bed = bed(layout);
        let port = bed.envoy.port();
        let billing = mtls_get(&bed.certs, BILLING, port, "/admin/users", &[]).unwrap();
        assert_eq!(billing.status, 200, "{billing:?}\n{}", bed.envoy.log());
        let shop = mtls_get(&bed.certs, SHOP, port, "/admin/users", &[]).unwrap();
        assert_eq!(shop.status, 403, "{shop:?}");
        assert_eq!(policy_of(&shop.body), "default-deny");
        let plaintext = get(port, "/admin/users", &[], TIMEOUT).unwrap();
        assert_eq!(plaintext.status, 403, "no client certificate, no workload identity: {plaintext:?}");
        // A client that presents no certificate is refused by TLS itself on this side.
        assert!(mtls_get(&bed.certs, None, port, "/admin/users", &[]).is_err());
        assert_eq!(bed.echo.count("/admin/users"), 1, "only the billing workload's request went upstream");
        // zt-audit, last in the chain, recorded both workloads by their verified SPIFFE IDs.
        let expected = [(BILLING_SPIFFE_ID, "allow"), (SHOP_SPIFFE_ID, "deny")];
        let recorded = |log: &str, (peer, outcome): (&str, &str)| {
            let record =
                log.lines().find(|l| l.contains("zt.audit.v1 ") && l.contains(&format!("\"peer\":\"{peer}\"")));
            record.is_some_and(|r| r.contains(&format!("\"outcome\":\"{outcome}\"")))
        };
        let log = bed.envoy.log_when(|log| expected.iter().all(|e| recorded(log, *e)));
        for (peer, outcome) in expected {
            assert!(recorded(&log, (peer, outcome)), "{peer}: {log}");
        }
    }
}

#[test]
fn spellings_of_the_admin_path_cannot_reach_it_unprotected() {
    for layout in Layout::ALL {
        let bed = bed(layout);
        let port = bed.envoy.port();
        for path in
            ["/admin", "//admin", "/./admin", "/%61dmin", "/Admin", "/ADMIN/x", "/public/../admin", "/admin%2Fx"]
        {
            // The shop workload has a valid certificate but no business here.
            let shop = mtls_get(&bed.certs, SHOP, port, path, &[]).unwrap();
            let plain = get(port, path, &[], TIMEOUT).unwrap();
            for answer in [&shop, &plain] {
                // 403 from the policy, or Envoy's redirect to the unescaped path (decided again there).
                assert!(matches!(answer.status, 403 | 307), "{path}: {answer:?}");
            }
            let billing = mtls_get(&bed.certs, BILLING, port, path, &[]).unwrap();
            assert!(matches!(billing.status, 200 | 307), "{path}: the billing workload is admitted: {billing:?}");
        }
        let upstream_paths: Vec<String> = bed.echo.requests().into_iter().map(|r| r.path).collect();
        assert!(
            upstream_paths.iter().all(|p| p.eq_ignore_ascii_case("/admin") || p.eq_ignore_ascii_case("/admin/x")),
            "only normalised admin paths, from the billing workload: {upstream_paths:?}"
        );
    }
}

#[test]
fn scopes_from_the_verified_token_decide_the_orders_route() {
    for layout in Layout::ALL {
        let bed = bed(layout);
        let port = bed.envoy.port();
        let bearer = |token: &str| format!("Bearer {token}");
        let allowed =
            get(port, "/orders/1", &[("authorization", &bearer(&token("orders:read", "production")))], TIMEOUT)
                .unwrap();
        assert_eq!(allowed.status, 200, "{allowed:?}\n{}", bed.envoy.log());

        let no_scope =
            get(port, "/orders/1", &[("authorization", &bearer(&token("profile", "production")))], TIMEOUT).unwrap();
        assert_eq!(no_scope.status, 403);
        assert_eq!(
            no_scope.header("www-authenticate"),
            Some(r#"Bearer realm="zt-demo", error="insufficient_scope", scope="orders:read""#)
        );

        let anonymous = get(port, "/orders/1", &[], TIMEOUT).unwrap();
        assert_eq!((anonymous.status, anonymous.header("www-authenticate")), (401, Some(r#"Bearer realm="zt-demo""#)));

        // A client cannot stand in for the JWT filter: filter state is not a header.
        let forged = json!({"provider": "demo", "iss": "x", "sub": "mallory", "aud": [], "scopes": ["orders:read"],
            "exp": null, "claims": {"env": "production"}})
        .to_string();
        let spoofed = get(port, "/orders/1", &[("zt.identity", &forged), ("x-zt-identity", &forged)], TIMEOUT).unwrap();
        assert_eq!(spoofed.status, 401, "{spoofed:?}");

        let dev = get(port, "/orders/1", &[("authorization", &bearer(&token("orders:read", "dev")))], TIMEOUT).unwrap();
        assert_eq!((dev.status, policy_of(&dev.body)), (403, json!("same-environment")), "{dev:?}");
        assert!(!dev.body.contains("dev"), "no claim value in the answer: {}", dev.body);
        assert_eq!(bed.echo.count("/orders/1"), 1);
    }
}

#[test]
fn routes_without_a_rule_are_denied_and_metrics_count_the_decisions() {
    for layout in Layout::ALL {
        let bed = bed(layout);
        let port = bed.envoy.port();
        assert_eq!(get(port, "/public/x", &[], TIMEOUT).unwrap().status, 200);
        let other = get(port, "/elsewhere", &[], TIMEOUT).unwrap();
        assert_eq!((other.status, policy_of(&other.body)), (403, json!("default-deny")));
        assert_eq!(bed.envoy.stat("wasmcustom.zt_authz.allowed.public.anyone"), Some(1), "by route rule and policy");
        assert_eq!(bed.envoy.stat("wasmcustom.zt_authz.denied.no_policy_matched.defaults.default-deny"), Some(1));
    }
}

/// The suite with `filter_state: true`: Envoy's own access log reads its decisions from the one
/// entry (`%FILTER_STATE(wasm.zt.suite:PLAIN)%`), for allowed and refused requests alike.
#[test]
fn the_suites_decisions_reach_envoys_access_log_when_asked() {
    let certs = Certs::generate(&[BILLING_SPIFFE_ID]).unwrap_or_else(|e| panic!("{e}"));
    let echo = EchoUpstream::start().unwrap();
    let access_log = std::env::temp_dir().join(format!("zt-suite-access-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&access_log);
    let ports = Ports { upstream: echo.port(), ..Ports::default() };
    let stages = StageConfigs {
        filter_state: true,
        ..StageConfigs::shipped(&keys().jwks(), &unlimited_ratelimit_plugin_config(), &audit_plugin_config(None))
    };
    let suite = template(Layout::Suite.template()).unwrap();
    let config = render_stages(&suite, ports, 1, certs.dir(), &stages).unwrap_or_else(|e| panic!("{e}"));
    let logger = format!(
        r#"stat_prefix: ingress
          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: "{}"
              log_format:
                text_format_source: {{ inline_string: "%RESPONSE_CODE% %FILTER_STATE(wasm.zt.suite:PLAIN)%\n" }}
"#,
        access_log.display()
    );
    let config = config.replacen("stat_prefix: ingress\n", &logger, 1);
    let mut envoy = Envoy::serve(&config).unwrap_or_else(|e| panic!("{e}"));
    let port = envoy.port();
    let bearer = format!("Bearer {}", token("orders:read", "production"));
    assert_eq!(get(port, "/orders/1", &[("authorization", &bearer)], TIMEOUT).unwrap().status, 200);
    assert_eq!(get(port, "/elsewhere", &[], TIMEOUT).unwrap().status, 403);
    // Envoy writes its access log out every 10 s (`--file-flush-interval-msec`) and when it
    // stops: stopped, every line is in the file.
    assert!(envoy.terminate(TIMEOUT), "Envoy stops on SIGTERM");
    let text = std::fs::read_to_string(&access_log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}\n{}", envoy.log());
    let entry = |line: &str| -> Value {
        let (_, json) = line.split_once(' ').unwrap();
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {line}"))
    };
    let allowed = entry(lines[0]);
    assert!(lines[0].starts_with("200 "), "{lines:?}");
    assert_eq!(allowed["identity"]["sub"], SUBJECT);
    assert_eq!(allowed["authz"]["policy"], "orders-read");
    assert_eq!(allowed["ratelimit"]["decision"], "admitted");
    assert!(allowed.get("claims").is_none() && allowed["identity"].get("claims").is_none(), "no claims: {allowed}");
    let refused = entry(lines[1]);
    assert!(lines[1].starts_with("403 "), "{lines:?}");
    let decided = (refused["jwt"]["decision"].as_str(), refused["authz"]["policy"].as_str());
    assert_eq!(decided, (Some("anonymous"), Some("default-deny")), "{refused}");
    let _ = std::fs::remove_file(&access_log);
}

/// `/stats/prometheus` of the shipped configurations: each refusal counted under its family
/// with its reason as a label (Envoy's tag extraction in the config), never as an untagged
/// total; and every metric and label the shipped alert rules and dashboard query exists there.
#[test]
fn prometheus_sees_reasons_as_labels_and_the_rules_and_dashboard_query_real_metrics() {
    for layout in Layout::ALL {
        // The shipped limits, so that the per-limit family exists.
        let bed = bed_with(layout, &chain_ratelimit_plugin_config());
        let port = bed.envoy.port();
        assert_eq!(get(port, "/elsewhere", &[], TIMEOUT).unwrap().status, 403);
        assert_eq!(get(port, "/orders/1", &[], TIMEOUT).unwrap().status, 401);
        let bearer = format!("Bearer {}", token("orders:read", "production"));
        assert_eq!(get(port, "/orders/1", &[("authorization", &bearer)], TIMEOUT).unwrap().status, 200);
        let expected = [
            r#"zt_authz_denied{reason="no_policy_matched",route="defaults",policy="default-deny"} 1"#,
            r#"zt_authz_denied{reason="identity_missing",route="orders",policy="default-deny"} 1"#,
            r#"zt_authz_allowed{route="orders",policy="orders-read"} 1"#,
            r#"zt_jwt_allowed{provider="demo"} 1"#,
            r#"zt_audit_records{outcome="deny"} 2"#,
            r#"zt_jwt_jwks_fetch_failed{provider="demo"} 0"#,
            r#"zt_ratelimit_admitted{route="defaults"} 1"#,
        ];
        // The audit stage counts its record as the stream ends, which may be just after the
        // client has its answer: read until every count is there (bounded).
        let complete = |text: &str| expected.iter().all(|line| text.lines().any(|l| l == *line));
        let deadline = std::time::Instant::now() + TIMEOUT;
        let mut text = bed.envoy.prometheus().unwrap_or_default();
        while !complete(&text) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            text = bed.envoy.prometheus().unwrap_or_default();
        }
        assert!(complete(&text), "{layout:?}: not all of {expected:?} in\n{text}");
        assert!(!text.contains("zt_authz_denied{}"), "{layout:?}: an untagged total would double the family's sum");
        let families: std::collections::BTreeSet<&str> =
            text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split(' ').next()).collect();
        for (file, query) in observability_queries() {
            for metric in
                query.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("zt_"))
            {
                assert!(families.contains(metric), "{file}: {metric} is not exported ({layout:?})");
            }
            for (label, value) in label_matchers(&query) {
                let labels = ["reason", "provider", "route", "policy", "limit", "outcome"];
                assert!(labels.contains(&label.as_str()), "{file}: label {label}");
                if label == "reason" {
                    for value in value.split('|') {
                        assert!(known_reason(value), "{file}: reason {value} is none a stage gives");
                    }
                }
            }
        }
    }
}

/// Every PromQL expression of `envoy/observability/`: the alert rules' and the dashboard's.
fn observability_queries() -> Vec<(&'static str, String)> {
    let dir = zt_envoy_tests::workspace_root().join("envoy/observability");
    let rules: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("prometheus-rules.yaml")).unwrap()).unwrap();
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("grafana-dashboard.json")).unwrap()).unwrap();
    let mut queries = Vec::new();
    for rule in rules["groups"][0]["rules"].as_sequence().unwrap() {
        queries.push(("prometheus-rules.yaml", rule["expr"].as_str().unwrap().to_owned()));
    }
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            queries.push(("grafana-dashboard.json", target["expr"].as_str().unwrap().to_owned()));
        }
    }
    assert!(queries.len() > 10, "{queries:?}");
    queries
}

/// The `label="value"` and `label=~"a|b"` matchers of a query.
fn label_matchers(query: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for part in query.split('{').skip(1) {
        let inner = part.split('}').next().unwrap_or_default();
        for matcher in inner.split(',').filter(|m| !m.trim().is_empty()) {
            let (label, value) = matcher.split_once('=').unwrap();
            found.push((label.trim().to_owned(), value.trim_start_matches('~').trim().trim_matches('"').to_owned()));
        }
    }
    found
}

fn known_reason(value: &str) -> bool {
    let ratelimit = zt_core::ratelimit::Reason::ALL.map(|r| r.as_str());
    zt_core::jwt::JwtError::REASONS.contains(&value)
        || zt_core::authz::AuthzReason::REASONS.contains(&value)
        || ratelimit.contains(&value)
}

/// With `latency_histogram: true` in each stage's configuration, `/stats/prometheus` shows a
/// histogram per stage in the shipped configurations' microsecond buckets, one sample per
/// request the stage decided on.
#[test]
fn stage_latency_histograms_reach_prometheus_in_microseconds() {
    for layout in Layout::ALL {
        let certs = Certs::generate(&[]).unwrap();
        let echo = EchoUpstream::start().unwrap();
        let mut stages =
            StageConfigs::shipped(&keys().jwks(), &chain_ratelimit_plugin_config(), &audit_plugin_config(None));
        for config in [&mut stages.jwt, &mut stages.authz, &mut stages.ratelimit, &mut stages.audit] {
            let mut value: Value = serde_json::from_str(config).unwrap();
            value["latency_histogram"] = json!(true);
            *config = value.to_string();
        }
        let ports = Ports { upstream: echo.port(), ..Ports::default() };
        let config = render_stages(&template(layout.template()).unwrap(), ports, 1, certs.dir(), &stages).unwrap();
        // Histograms reach the admin endpoints when stats are flushed: sooner than every 5 s.
        let config = config.replacen("stats_config:", "stats_flush_interval: 0.2s\nstats_config:", 1);
        let envoy = Envoy::serve(&config).unwrap_or_else(|e| panic!("{e}"));
        let bearer = format!("Bearer {}", token("orders:read", "production"));
        assert_eq!(get(envoy.port(), "/orders/1", &[("authorization", &bearer)], TIMEOUT).unwrap().status, 200);
        assert_eq!(get(envoy.port(), "/elsewhere", &[], TIMEOUT).unwrap().status, 403);
        // Both requests pass the JWT and authorization stages and are recorded; only the first
        // reaches the rate limit.
        let expected = [
            "zt_jwt_latency_us_count{} 2",
            "zt_authz_latency_us_count{} 2",
            "zt_ratelimit_latency_us_count{} 1",
            "zt_audit_latency_us_count{} 2",
            r#"zt_authz_latency_us_bucket{le="2.5"}"#,
            r#"zt_authz_latency_us_bucket{le="1000000"} 2"#,
        ];
        let complete = |text: &str| expected.iter().all(|want| text.lines().any(|line| line.starts_with(want)));
        let deadline = std::time::Instant::now() + TIMEOUT;
        let mut text = envoy.prometheus().unwrap_or_default();
        while !complete(&text) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            text = envoy.prometheus().unwrap_or_default();
        }
        let ours: Vec<&str> = text.lines().filter(|line| line.contains("latency_us")).collect();
        assert!(complete(&text), "{layout:?}: not all of {expected:?} in\n{}", ours.join("\n"));
    }
}
