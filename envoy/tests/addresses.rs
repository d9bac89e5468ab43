//! The two spoofs of a client-chosen source address, in a real Envoy: an authorization policy
//! allowing only `10.0.0.0/8` peers, and a rate limit of 2 per `source_ip`, each tried with a
//! forged `X-Forwarded-For`. On the shipped `zero-trust.yaml` and `zero-trust-suite.yaml` (edge
//! settings and the peer in filter state) and on the same configurations with Envoy's defaults
//! (`use_remote_address` unset, no filter state), both are refused, and the audit record names
//! the real peer or none.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};
use zt_envoy_tests::full_chain::{Layout, StageConfigs, audit_plugin_config, render_stages};
use zt_envoy_tests::zero_trust::Certs;
use zt_envoy_tests::{EchoUpstream, Envoy, KeySet, Ports, Response, get, template};

const TIMEOUT: Duration = Duration::from_secs(5);

fn keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| KeySet::generate().unwrap())
}

/// `/admin` only from peers in `10.0.0.0/8`; everything else open.
fn authz_config() -> String {
    json!({
        "policies": {
            "internal": {"action": "ALLOW", "rules": [{"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}]}]},
            "anyone": {"action": "ALLOW", "rules": [{}]},
        },
        "defaults": {"policies": ["anyone"]},
        "routes": [{"name": "admin", "route_names": ["admin"], "policies": ["internal"], "inherit_defaults": false}],
    })
    .to_string()
}

/// `/public/` (named by route metadata) 2 a minute per peer address; nothing elsewhere.
fn ratelimit_config() -> String {
    json!({
        "limits": {"per-peer": {"quota": 2, "window_seconds": 60, "key": ["source_ip"]}},
        "defaults": {"limits": []},
        "routes": [{"name": "public", "limits": ["per-peer"], "inherit_defaults": false}],
    })
    .to_string()
}

/// The shipped template with Envoy's defaults instead of its address hardening: no
/// `use_remote_address`, no trusted hops, no `zt.peer_address` filter state.
fn with_envoy_defaults(shipped: &str) -> String {
    let mut out = Vec::new();
    let mut skipping = false;
    for line in shipped.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("use_remote_address:") || trimmed.starts_with("xff_num_trusted_hops:") {
            continue;
        }
        if trimmed == "- name: envoy.filters.http.set_filter_state" {
            skipping = true;
            continue;
        }
        if skipping && trimmed.starts_with("- name: ") {
            skipping = false;
        }
        if !skipping {
            out.push(line);
        }
    }
    let text = out.join("\n");
    assert!(!text.contains("zt.peer_address") && !text.contains("use_remote_address"), "{text}");
    text
}

struct Bed {
    _echo: EchoUpstream,
    envoy: Envoy,
    _certs: Certs,
}

fn bed(layout: Layout, shipped: bool) -> Bed {
    let certs = Certs::generate(&[]).unwrap_or_else(|e| panic!("{e}"));
    let echo = EchoUpstream::start().unwrap();
    let ports = Ports { upstream: echo.port(), ..Ports::default() };
    let stages = StageConfigs {
        authz: authz_config(),
        ..StageConfigs::shipped(&keys().jwks(), &ratelimit_config(), &audit_plugin_config(None))
    };
    let mut text = template(layout.template()).unwrap();
    if !shipped {
        text = with_envoy_defaults(&text);
    }
    let config = render_stages(&text, ports, 1, certs.dir(), &stages).unwrap_or_else(|e| panic!("{e}"));
    let envoy = Envoy::serve(&config).unwrap_or_else(|e| panic!("{e}"));
    Bed { _echo: echo, envoy, _certs: certs }
}

fn send(bed: &Bed, path: &str, tag: &str, forwarded_for: Option<&str>) -> Response {
    let mut headers = vec![("user-agent", tag)];
    if let Some(address) = forwarded_for {
        headers.push(("x-forwarded-for", address));
    }
    get(bed.envoy.port(), path, &headers, TIMEOUT).unwrap()
}

/// The audit record of the request sent with user agent `tag`.
fn record(bed: &Bed, tag: &str) -> Value {
    let find = |log: &str| {
        let mut records = log.lines().filter_map(|l| l.split_once("zt.audit.v1 ").map(|(_, json)| json.to_owned()));
        records.find(|json| json.contains(&format!("\"user-agent\":\"{tag}\"")))
    };
    let log = bed.envoy.log_when(|log| find(log).is_some());
    let line = find(&log).unwrap_or_else(|| panic!("no record for {tag}:\n{log}"));
    serde_json::from_str(&line).unwrap()
}

/// Both spoofs, then what the audit records say; `named_peer`: the filter state names it.
fn spoofs_are_refused(bed: &Bed, named_peer: bool) {
    // An allow-list of 10.0.0.0/8 refuses 127.0.0.1, and still does when it claims 10.1.2.3.
    assert_eq!(send(bed, "/admin/x", "admin-plain", None).status, 403);
    let spoof = send(bed, "/admin/x", "admin-spoof", Some("10.1.2.3"));
    assert_eq!(spoof.status, 403, "{spoof:?}\n{}", bed.envoy.log());
    if !named_peer {
        assert!(spoof.body.contains("source_address_unknown"), "{spoof:?}");
    }
    // 2 per source address: the third is refused, and six more with six addresses are too.
    for i in 0..2 {
        assert_eq!(send(bed, "/public/x", &format!("public-{i}"), None).status, 200, "{}", bed.envoy.log());
    }
    assert_eq!(send(bed, "/public/x", "public-2", None).status, 429);
    for i in 1..=6 {
        let forged = format!("10.1.2.{i}");
        let response = send(bed, "/public/x", &format!("public-spoof-{i}"), Some(&forged));
        assert_eq!(response.status, 429, "spoof {i}: {response:?}");
    }
    // The audit record: the real peer as `source`, or none; the forged address at most as
    // `remote`, never as `source`.
    let spoofed = record(bed, "admin-spoof");
    assert_eq!(spoofed["outcome"], "deny");
    if named_peer {
        assert_eq!(spoofed["source"]["address"], "127.0.0.1", "{spoofed}");
    } else {
        assert!(spoofed.get("source").is_none(), "{spoofed}");
        assert_eq!(spoofed["remote"], "10.1.2.3", "{spoofed}");
    }
    assert_eq!(record(bed, "admin-plain")["source"]["address"], "127.0.0.1");
}

#[test]
fn the_shipped_config_decides_on_the_real_peer() {
    for layout in Layout::ALL {
        let bed = bed(layout, true);
        spoofs_are_refused(&bed, true);
        // The edge config never takes a client's X-Forwarded-For as the remote address either.
        assert!(record(&bed, "public-spoof-1").get("remote").is_none(), "{layout:?}");
    }
}

#[test]
fn with_envoy_defaults_a_forged_address_is_refused_not_believed() {
    for layout in Layout::ALL {
        let bed = bed(layout, false);
        spoofs_are_refused(&bed, false);
        let log = bed.envoy.log();
        assert!(
            log.contains("set filter state zt.peer_address"),
            "{layout:?}: the operator is told what to set:\n{log}"
        );
    }
}
