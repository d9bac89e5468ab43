//! Arbitrary request facts against three authorization configurations: never a panic, and
//! never an allow that no ALLOW policy grants. The first byte picks the configuration:
//! - a rich one (every kind of condition): only its one ALLOW policy may allow;
//! - one with DENY and AUDIT policies only: nothing is ever allowed;
//! - a narrow one whose answer this file computes on its own: allowed exactly when the request
//!   is `GET /public` from 10.0.0.0/8 with `x-env: prod` and without `x-block`.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use zt_core::UnixSeconds;
use zt_core::authz::{AuthzConfig, RequestFacts, Verdict, denial};

const RICH: &str = r#"{
  "scope_claim": "perms",
  "environment": "prod",
  "policies": {
    "deny-admin": {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin/*"], "notMethods": ["GET"]}}]}]},
    "audit": {"action": "AUDIT", "rules": [{"when": [{"key": "request.auth.claims[org][id]", "values": ["1*"]}]}]},
    "allow": {"action": "ALLOW", "rules": [
      {"from": [{"source": {"ipBlocks": ["10.0.0.0/8", "::1"], "principals": ["cluster.local/*"]}}],
       "to": [{"operation": {"hosts": ["api.example.com"], "paths": ["/v1/{*}/items/{**}"]}}]},
      {"when": [{"all": [{"scopes": {"any_of": ["read"]}}, {"claim": {"path": "level", "gte": 3}}]},
                {"any": [{"header": {"name": "x-env", "prefix": "pr"}}, {"not": {"time_window": {"start": "22:00", "end": "06:00"}}}]},
                {"environment": {"claim": "env"}},
                {"peer": {"trust_domain": "cluster.local", "path_prefix": "/ns/shop"}},
                {"key": "request.auth.principal", "values": ["https://a/*"]}]}]}
  },
  "defaults": {"policies": ["deny-admin", "audit", "allow"]},
  "routes": [{"name": "r1", "route_names": ["r1"], "match": {"path": {"prefix": "/v1"}}, "policies": []}]
}"#;

const DENY_ONLY: &str = r#"{
  "policies": {
    "deny": {"action": "DENY", "rules": [{"to": [{"operation": {"notPaths": ["/public"]}}]}]},
    "audit": {"action": "AUDIT", "rules": [{}]},
    "advisory-deny": {"action": "DENY", "advisory": true, "rules": [{"when": [{"authenticated": false}]}]}
  },
  "defaults": {"policies": ["deny", "audit", "advisory-deny"]}
}"#;

const NARROW: &str = r#"{
  "policies": {
    "public": {"action": "ALLOW", "rules": [{
      "to": [{"operation": {"methods": ["GET"], "paths": ["/public"]}}],
      "from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}],
      "when": [{"header": {"name": "x-env", "exact": "prod"}}]}]},
    "block": {"action": "DENY", "rules": [{"when": [{"header": {"name": "x-block", "present": true}}]}]}
  },
  "defaults": {"policies": ["block", "public"]}
}"#;

thread_local! {
    static CONFIGS: [AuthzConfig; 3] = [RICH, DENY_ONLY, NARROW].map(|text| match AuthzConfig::from_json(text.as_bytes()) {
        Ok(config) => config,
        Err(error) => panic!("fuzz configuration: {error}"),
    });
}

fuzz_target!(|data: &[u8]| {
    let f = common::Facts::parse(data);
    let which = usize::from(f.selector % 3);
    let route_choice = (which == 0 && !f.rest.is_empty()).then(|| String::from_utf8_lossy(&f.rest).into_owned());
    let mut facts = RequestFacts::new(&f.method, &f.path, UnixSeconds(f.now));
    facts.route_name = f.route_name.as_deref();
    facts.route_choice = route_choice.as_deref();
    facts.authority = f.authority.as_deref();
    facts.headers = &f.headers;
    facts.source = f.source;
    facts.peer_uri_san = f.san.as_deref();
    facts.identity = f.identity.as_ref();
    CONFIGS.with(|configs| {
        let config = &configs[which];
        let decision = config.authorize(&facts);
        let _ = denial(&decision, config.realm());
        let _ = decision.record();
        let allowed = decision.verdict == Verdict::Allow;
        match which {
            0 => assert!(!allowed || decision.policy == "allow", "allowed by {}", decision.policy),
            1 => assert!(!allowed, "allowed without an ALLOW policy"),
            _ => {
                let path = f.path.split(['?', '#']).next().unwrap_or_default();
                let in_ten = f.source.map(|ip| ip.to_canonical()).is_some_and(|ip| match ip {
                    std::net::IpAddr::V4(v4) => v4.octets()[0] == 10,
                    std::net::IpAddr::V6(_) => false,
                });
                let expected = f.method == "GET"
                    && path == "/public"
                    && in_ten
                    && f.header_is("x-env", b"prod")
                    && !f.has_header("x-block");
                assert_eq!(allowed, expected, "narrow policy: {decision:?}");
            }
        }
    });
});
