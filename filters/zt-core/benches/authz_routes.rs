//! What route selection costs as a configuration grows: `AuthzConfig::authorize` on a request
//! selected by Envoy route name, and on one selected by an exact path, against a 10-rule and a
//! 1,000-rule configuration. Both lookups are hash lookups, so the two sizes should cost about
//! the same. Each rule has a realistic ALLOW policy (request principals, methods, paths and a
//! scopes condition) and inherits a defaults DENY policy. Run with `make bench-core` (or
//! `cargo bench -p zt-core --bench authz_routes`); criterion prints the timings.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

// Criterion is a native-only dev-dependency (it needs threads and a clock); a Wasm build of the
// benches gets an empty `main`.
#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
criterion::criterion_main!(native::benches);

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::hint::black_box;

    use criterion::{Criterion, criterion_group};
    use serde_json::{Map, Value, json};
    use zt_core::UnixSeconds;
    use zt_core::authz::{AuthzConfig, RequestFacts, Verdict};
    use zt_core::jwt::Identity;

    const ISS: &str = "https://issuer.bench";
    const NOW: UnixSeconds = UnixSeconds(1_700_000_000);

    /// `rules` route rules `svc-<i>`, each selected by the Envoy route name `route-<i>` and by the
    /// exact path `/svc-<i>/items`, with its own ALLOW policy.
    fn configuration(rules: usize) -> AuthzConfig {
        let mut policies = Map::new();
        policies.insert(
            "deny-blocked".to_owned(),
            json!({"action": "DENY", "rules": [{"when": [{"claim": {"path": "blocked", "equals": true}}]}]}),
        );
        let mut routes = Vec::with_capacity(rules);
        for i in 0..rules {
            policies.insert(
                format!("allow-svc-{i}"),
                json!({"action": "ALLOW", "rules": [{
                    "from": [{"source": {"requestPrincipals": [format!("{ISS}/*")]}}],
                    "to": [{"operation": {"methods": ["GET", "HEAD"], "paths": [format!("/svc-{i}/*")]}}],
                    "when": [{"scopes": {"all_of": [format!("svc-{i}:read")]}}],
                }]}),
            );
            routes.push(json!({
                "name": format!("svc-{i}"),
                "route_names": [format!("route-{i}")],
                "match": {"path": {"exact": format!("/svc-{i}/items")}},
                "policies": [format!("allow-svc-{i}")],
            }));
        }
        let json = json!({"policies": policies, "defaults": {"policies": ["deny-blocked"]}, "routes": routes});
        AuthzConfig::from_json(json.to_string().as_bytes()).unwrap()
    }

    fn identity(service: usize) -> Identity {
        let claims = json!({"iss": ISS, "sub": "alice", "scope": format!("profile svc-{service}:read")});
        let Value::Object(claims) = claims else { unreachable!() };
        Identity::from_claims("bench", claims)
    }

    fn bench(c: &mut Criterion) {
        for rules in [10, 1_000] {
            let config = configuration(rules);
            let middle = rules / 2;
            let identity = identity(middle);
            let path = format!("/svc-{middle}/items");
            let route_name = format!("route-{middle}");
            let by_name = RequestFacts {
                route_name: Some(&route_name),
                identity: Some(&identity),
                ..RequestFacts::new("GET", &path, NOW)
            };
            let by_path = RequestFacts { identity: Some(&identity), ..RequestFacts::new("GET", &path, NOW) };
            for facts in [&by_name, &by_path] {
                let decision = config.authorize(facts);
                assert_eq!(decision.verdict, Verdict::Allow, "{decision:?}");
                assert_eq!(decision.route.as_deref(), Some(format!("svc-{middle}").as_str()));
            }
            c.bench_function(&format!("authorize/route_name/{rules}_rules"), |b| {
                b.iter(|| black_box(config.authorize(black_box(&by_name))))
            });
            c.bench_function(&format!("authorize/exact_path/{rules}_rules"), |b| {
                b.iter(|| black_box(config.authorize(black_box(&by_path))))
            });
        }
    }

    criterion_group!(benches, bench);
}
