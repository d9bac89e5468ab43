//! `zt-jwt` then `zt-ratelimit` in a real Envoy (`configs/ratelimit.yaml`), and the suite with
//! the same two sections in its place: limits exact across worker threads, the draft's header
//! fields, and (with the test rate-limit service on Limitador and Redis) one global limit
//! shared by two Envoy processes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use zt_envoy_tests::full_chain::Layout;
use zt_envoy_tests::ratelimit::{ratelimit_plugin_config, render_ratelimit};
use zt_envoy_tests::{EchoUpstream, Envoy, KeySet, Ports, Started, get};
use zt_rls::{RedisServer, RlsServer};

const TIMEOUT: Duration = Duration::from_secs(5);

fn keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| KeySet::generate().unwrap())
}

fn start(config: &str, concurrency: u32) -> Envoy {
    match Envoy::start(config, concurrency).unwrap_or_else(|e| panic!("{e}")) {
        Started::Ready(envoy) => envoy,
        Started::Exited { status, log } => panic!("Envoy exited ({status}):\n{log}"),
    }
}

/// Concurrent clients, each request on a new connection so that the kernel spreads them over
/// the workers; answers the count of each status.
fn hammer(port: u16, clients: usize, requests: usize, headers: &[(&str, &str)]) -> (usize, usize) {
    let (admitted, limited) = (AtomicUsize::new(0), AtomicUsize::new(0));
    std::thread::scope(|scope| {
        for _ in 0..clients {
            scope.spawn(|| {
                for _ in 0..requests {
                    match get(port, "/api", headers, TIMEOUT).map(|r| r.status) {
                        Ok(200) => admitted.fetch_add(1, Ordering::Relaxed),
                        Ok(429) => limited.fetch_add(1, Ordering::Relaxed),
                        other => panic!("unexpected answer: {other:?}"),
                    };
                }
            });
        }
    });
    (admitted.into_inner(), limited.into_inner())
}

/// Exactness across workers: one bucket, many concurrent clients, 2 and 4 worker threads;
/// Envoy admits exactly the quota (the window is an hour: no refill during the test).
#[test]
fn workers_together_admit_exactly_the_limit() {
    for layout in Layout::ALL {
        const QUOTA: usize = 150;
        let echo = EchoUpstream::start().unwrap();
        let limit = json!({
            "limits": {"per-client": {"quota": QUOTA, "window_seconds": 3600, "key": [{"header": "x-client"}]}},
            "defaults": {"limits": ["per-client"]},
            "max_keys": 1024,
        });
        for workers in [2, 4] {
            let ports = Ports { upstream: echo.port(), ..Ports::default() };
            let config = render_ratelimit(layout, ports, 1, &keys().jwks(), &limit.to_string()).unwrap();
            let envoy = start(&config, workers);
            let (admitted, limited) = hammer(envoy.port(), 8, 40, &[("x-client", "acme")]);
            assert_eq!(
                admitted,
                QUOTA,
                "{layout:?}: {workers} workers admitted {admitted} of {QUOTA}\n{}",
                envoy.log()
            );
            assert_eq!(limited, 8 * 40 - QUOTA);
            // Both (all) workers served: the bucket really was shared across threads. (Listener
            // stats are named after the configured address, port 0 here.)
            let served: Vec<u64> = (0..workers)
                .map(|w| envoy.stat(&format!("listener.127.0.0.1_0.worker_{w}.downstream_cx_total")).unwrap_or(0))
                .collect();
            assert!(served.iter().filter(|n| **n > 0).count() >= 2, "connections per worker: {served:?}");
            let retries = envoy.stat("wasmcustom.zt_ratelimit.cas_retries").unwrap_or(0);
            let waits = envoy.stat("wasmcustom.zt_ratelimit.lock_waits").unwrap_or(0);
            eprintln!(
                "{layout:?}, {workers} workers: admitted {admitted}, limited {limited}, connections per worker {served:?}, CAS retries {retries}, lock waits {waits}"
            );
        }
    }
}

#[test]
fn a_refusal_carries_retry_after_and_the_draft_fields() {
    for layout in Layout::ALL {
        let echo = EchoUpstream::start().unwrap();
        let limit = json!({
            "limits": {"per-client": {"quota": 2, "window_seconds": 60, "key": [{"header": "x-client"}]}},
            "defaults": {"limits": ["per-client"]},
            "routes": [{"name": "health", "route_names": ["health"], "limits": [], "inherit_defaults": false}],
            "headers": {"on_admitted": true, "x_ratelimit": true},
        });
        let ports = Ports { upstream: echo.port(), ..Ports::default() };
        let envoy = start(&render_ratelimit(layout, ports, 1, &keys().jwks(), &limit.to_string()).unwrap(), 1);
        let port = envoy.port();
        let first = get(port, "/api", &[("x-client", "a")], TIMEOUT).unwrap();
        assert_eq!(first.status, 200, "{first:?}\n{}", envoy.log());
        assert_eq!(first.header("ratelimit-policy"), Some("\"per-client\";q=2;w=60"));
        assert_eq!(first.header("ratelimit"), Some("\"per-client\";r=1;t=30"));
        assert_eq!(first.header("x-ratelimit-limit"), Some("2"));
        get(port, "/api", &[("x-client", "a")], TIMEOUT).unwrap();
        let refused = get(port, "/api", &[("x-client", "a")], TIMEOUT).unwrap();
        assert_eq!(refused.status, 429);
        assert_eq!(refused.header("retry-after"), Some("30"));
        assert_eq!(refused.header("ratelimit"), Some("\"per-client\";r=0;t=60"));
        assert!(
            refused.body.contains("\"limit\":\"per-client\"") && !refused.body.contains("\"a\""),
            "{}",
            refused.body
        );
        // Without the header the request has no key: refused, never unlimited.
        assert_eq!(get(port, "/api", &[], TIMEOUT).unwrap().status, 429);
        // The exempt route by Envoy route name.
        assert_eq!(get(port, "/healthz", &[], TIMEOUT).unwrap().status, 200);
        assert_eq!(echo.count("/api"), 2);
        assert_eq!(envoy.stat("wasmcustom.zt_ratelimit.limited.unkeyed.defaults"), Some(1), "by reason and route rule");
    }
}

#[test]
fn the_example_policy_limits_anonymous_networks_and_subjects() {
    for layout in Layout::ALL {
        let echo = EchoUpstream::start().unwrap();
        let ports = Ports { upstream: echo.port(), ..Ports::default() };
        let envoy = start(&render_ratelimit(layout, ports, 1, &keys().jwks(), &ratelimit_plugin_config()).unwrap(), 1);
        let anonymous = (0..12).filter(|_| get(envoy.port(), "/api", &[], TIMEOUT).unwrap().status == 200).count();
        assert_eq!(anonymous, 10, "{}", envoy.log());
        let token = keys().valid(zt_envoy_tests::Alg::Es256).unwrap();
        let bearer = format!("Bearer {token}");
        let user = get(envoy.port(), "/api", &[("authorization", &bearer)], TIMEOUT).unwrap();
        assert_eq!(user.status, 200, "{user:?}");
        assert_eq!(user.header("ratelimit-policy"), Some("\"per-user\";q=100;w=60"));
    }
}

/// One Limitador limit of 7 a minute per `x-client`, in the namespace the filter sends as its
/// domain; the filter sends the limit's name and key as the first descriptor.
const LIMITS: &str = r#"
- namespace: zt
  name: partner
  max_value: 7
  seconds: 60
  conditions: ["descriptors[0]['limit'] == 'partner'"]
  variables: ["descriptors[0]['header.x-client']"]
"#;

/// Two Envoy processes, each with its own rate-limit service, both services counting in one
/// Redis: together they admit the limit, not twice it. Then the services stop, and the filter
/// fails closed (503) as configured.
#[test]
fn two_envoys_share_a_global_limit_through_the_service_and_redis() {
    for layout in Layout::ALL {
        let redis = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
        let services = [
            RlsServer::start(LIMITS, Some(&redis.url())).unwrap(),
            RlsServer::start(LIMITS, Some(&redis.url())).unwrap(),
        ];
        let echo = EchoUpstream::start().unwrap();
        let limit = json!({
            "limits": {"partner": {"key": [{"header": "x-client"}], "mode": "global"}},
            "defaults": {"limits": ["partner"]},
            "global": {"cluster": "ratelimit", "domain": "zt", "timeout_ms": 1000, "on_error": "deny"},
        });
        let envoys: Vec<Envoy> = services
            .iter()
            .map(|service| {
                let ports = Ports { upstream: echo.port(), ..Ports::default() };
                start(&render_ratelimit(layout, ports, service.port(), &keys().jwks(), &limit.to_string()).unwrap(), 2)
            })
            .collect();
        let mut statuses = Vec::new();
        for i in 0..20 {
            let envoy = &envoys[i % 2];
            let answer = get(envoy.port(), "/api", &[("x-client", "acme")], TIMEOUT).unwrap();
            statuses.push(answer.status);
            if i == 0 {
                assert_eq!(answer.status, 200, "{answer:?}\n{}", envoy.log());
                assert_eq!(answer.header("ratelimit-policy"), Some("\"partner\";q=7;w=60"));
            }
        }
        let admitted = statuses.iter().filter(|s| **s == 200).count();
        assert_eq!(admitted, 7, "statuses: {statuses:?}");
        assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");
        // Another client has its own counter.
        assert_eq!(get(envoys[1].port(), "/api", &[("x-client", "other")], TIMEOUT).unwrap().status, 200);
        assert_eq!(echo.count("/api"), 8);

        drop(services);
        let unavailable = get(envoys[0].port(), "/api", &[("x-client", "new")], TIMEOUT).unwrap();
        assert_eq!(unavailable.status, 503, "{unavailable:?}");
        assert_eq!(envoys[0].stat("wasmcustom.zt_ratelimit.global.errors"), Some(1));
        assert!(envoys[0].log().contains("rate-limit service"), "{}", envoys[0].log());
    }
}
