use serde_json::{Value, json};
use wasm_bindgen_test::wasm_bindgen_test;

use super::{allowed_facts, config};
use crate::audit::{Chain, Handed, HandedIdentity, Outcome, REDACTED, StreamFacts};

fn record(config_json: Value, facts: &StreamFacts) -> Value {
    let draft = config(config_json).draft(facts);
    let sealed = Chain::new([7; 16]).seal(&draft);
    serde_json::from_str(&sealed.text).unwrap()
}

#[wasm_bindgen_test(unsupported = test)]
fn records_every_field_of_an_allowed_request() {
    let r = record(json!({"headers": ["user-agent", "authorization", "cookie"]}), &allowed_facts());
    assert_eq!(r["v"], 1);
    assert_eq!(r["chain"], "07".repeat(16));
    assert_eq!(r["seq"], 0);
    assert_eq!(r["prev"], "0".repeat(64));
    assert_eq!(r["time"], "2026-11-23T19:56:31.123Z");
    assert_eq!(r["request_id"], "5e1c2a9d-aaaa-4bbb-8ccc-0123456789ab");
    assert_eq!(r["traceparent"], "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    assert_eq!(r["source"], json!({"address": "127.0.0.1", "port": 45710}));
    assert!(r.get("remote").is_none(), "the remote address is the peer's");
    assert_eq!(r["peer"], "spiffe://cluster.local/ns/shop/sa/web");
    assert_eq!(r["authority"], "api.example.com");
    assert_eq!(r["method"], "GET");
    assert_eq!(r["path"], "/orders/7", "query dropped by default");
    assert_eq!(r["route"], "orders");
    assert_eq!(r["cluster"], "backend");
    assert_eq!(r["status"], 200);
    assert!(r.get("flags").is_none());
    assert_eq!(r["details"], "via_upstream");
    assert_eq!(r["duration_ms"], 2.5);
    assert_eq!((r["bytes_in"].as_u64(), r["bytes_out"].as_u64()), (Some(0), Some(512)));
    assert_eq!(
        r["identity"],
        json!({"provider": "corp", "iss": "https://issuer.example", "sub": "alice", "client_id": "web",
               "scopes": ["orders:read"]})
    );
    assert_eq!(r["decisions"]["jwt"]["decision"], "allow");
    assert_eq!(r["decisions"]["authz"]["policy"], "orders-read");
    assert!(r["decisions"].get("ratelimit").is_none());
    assert_eq!(r["outcome"], "allow");
    assert_eq!(r["headers"], json!({"user-agent": "curl/8", "authorization": REDACTED, "cookie": REDACTED}));
}

#[wasm_bindgen_test(unsupported = test)]
fn never_carries_a_secret() {
    let configs = [
        json!({}),
        json!({"headers": ["authorization", "cookie", "x-api-key"], "redact_headers": ["x-api-key"], "query": "keep"}),
        json!({"identity": {"claims": ["email", "org"], "hash": ["email", "sub"], "hash_key": "k".repeat(32)}}),
    ];
    let mut facts = allowed_facts();
    facts.headers.push(("x-api-key".into(), b"SECRET-API-KEY".to_vec()));
    for c in configs {
        let text = record(c.clone(), &facts).to_string();
        for secret in ["SECRET-QUERY-TOKEN", "SECRET-HEADER-TOKEN", "SECRET-COOKIE", "SECRET-API-KEY"] {
            assert!(!text.contains(secret), "{secret} in {text} with {c}");
        }
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn keeps_the_query_with_credentials_redacted_when_asked() {
    let r = record(json!({"query": "keep", "redact_query_params": ["page"]}), &allowed_facts());
    assert_eq!(r["path"], "/orders/7?access_token=[redacted]&page=[redacted]");
    let r = record(json!({"query": "keep"}), &allowed_facts());
    assert_eq!(r["path"], "/orders/7?access_token=[redacted]&page=2");
}

#[wasm_bindgen_test(unsupported = test)]
fn copies_hashes_and_omits_identity_fields_as_configured() {
    let key = "k".repeat(32);
    let r = record(
        json!({"identity": {"claims": ["org", "email", "missing"], "hash": ["sub", "email"], "omit": ["scopes", "iss"],
                            "hash_key": key}}),
        &allowed_facts(),
    );
    let identity = &r["identity"];
    assert_eq!(identity["claims"]["org"], "acme");
    let hashed =
        |v: &str| format!("hmac-sha256:{}", crate::audit::chain::hex(&hmac_sha256::HMAC::mac(v, key.as_bytes())));
    assert_eq!(identity["claims"]["email"], hashed("alice@example.com"));
    assert_eq!(identity["sub"], hashed("alice"));
    assert!(identity["claims"].get("missing").is_none());
    assert!(identity.get("scopes").is_none() && identity.get("iss").is_none());
    assert_eq!(identity["client_id"], "web");
    assert!(!r.to_string().contains("alice"), "{r}");
}

#[wasm_bindgen_test(unsupported = test)]
fn outcome_is_the_most_severe_decision() {
    type Case<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>, u64, Outcome);
    let cases: [Case<'_>; 8] = [
        (Some("allow"), Some("allow"), Some("admitted"), 200, Outcome::Allow),
        (Some("deny"), None, None, 401, Outcome::Deny),
        (Some("allow"), Some("deny"), None, 403, Outcome::Deny),
        (Some("allow"), Some("allow"), Some("limited"), 429, Outcome::Limited),
        (Some("allow"), Some("advisory_deny"), Some("admitted"), 200, Outcome::Advisory),
        (Some("advisory_deny"), Some("deny"), None, 403, Outcome::Deny),
        (Some("anonymous"), None, Some("advisory_limited"), 200, Outcome::Advisory),
        // Another filter (native rbac, say) answered 403 and none of ours decided.
        (None, None, None, 403, Outcome::Deny),
    ];
    for (jwt, authz, ratelimit, status, expected) in cases {
        let mut facts = allowed_facts();
        let entry = |d: Option<&str>| d.map(|d| Handed::FilterState(json!({"decision": d}).to_string().into_bytes()));
        (facts.jwt, facts.authz, facts.ratelimit, facts.status) =
            (entry(jwt), entry(authz), entry(ratelimit), Some(status));
        let draft = config(json!({})).draft(&facts);
        assert_eq!(draft.outcome(), expected, "{jwt:?} {authz:?} {ratelimit:?} {status}");
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn a_request_answered_early_or_abandoned_is_recorded_with_what_is_known() {
    let facts = StreamFacts {
        now_ns: 1_795_463_791_000_000_000,
        method: Some("GET".into()),
        path: Some("/x".into()),
        flags: 0x4000,
        jwt: Some(Handed::FilterState(
            br#"{"decision":"deny","reason":"missing","requirement":"default","provider":null}"#.to_vec(),
        )),
        ..StreamFacts::default()
    };
    let r = record(json!({}), &facts);
    assert_eq!(r["status"], 0);
    assert_eq!(r["flags"], json!(["DC"]));
    assert_eq!(r["time"], "2026-11-23T19:56:31.000Z", "the record time when Envoy had no start");
    assert_eq!(r["outcome"], "deny");
    assert!(r.get("identity").is_none() && r.get("source").is_none());
}

#[wasm_bindgen_test(unsupported = test)]
fn unreadable_filter_state_is_flagged_and_always_kept() {
    let mut facts = allowed_facts();
    facts.authz = Some(Handed::FilterState(b"not json".to_vec()));
    facts.identity = Some(HandedIdentity::FilterState(b"{}".to_vec()));
    let config = config(json!({"sample_allowed": 0.0}));
    let draft = config.draft(&facts);
    assert!(draft.sampled(0));
    let r: Value = serde_json::from_str(&Chain::new([0; 16]).seal(&draft).text).unwrap();
    assert_eq!(r["decisions"]["authz"], json!({"decision": "unreadable"}));
    assert_eq!(r["identity"], json!({"unreadable": true}));
}

#[wasm_bindgen_test(unsupported = test)]
fn a_caller_jwt_authn_verified_is_recorded_like_zt_jwts_and_an_undecodable_one_is_flagged() {
    let mut facts = allowed_facts();
    let claims = json!({"iss": "https://corp.example", "sub": "alice", "email": "a@corp.example"});
    let adopted = crate::jwt::Identity::from_claims("corp", claims.as_object().unwrap().clone());
    facts.identity = Some(HandedIdentity::FilterState(adopted.to_json()));
    let from_filter_state = record(json!({}), &facts)["identity"].clone();
    facts.identity = Some(HandedIdentity::Adopted(Ok(adopted)));
    let r = record(json!({}), &facts);
    assert_eq!(r["identity"], from_filter_state);
    assert_eq!(r["identity"]["sub"], "alice");

    facts.identity = Some(HandedIdentity::Adopted(Err(crate::identity_source::AdoptError::NotMetadata)));
    let config = config(json!({"sample_allowed": 0.0}));
    let draft = config.draft(&facts);
    assert!(draft.sampled(0), "an anomaly is always kept");
    let r: Value = serde_json::from_str(&Chain::new([0; 16]).seal(&draft).text).unwrap();
    assert_eq!(r["identity"], json!({"unreadable": true}));
}

#[wasm_bindgen_test(unsupported = test)]
fn drops_malformed_trace_context_and_non_spiffe_peers() {
    let mut facts = allowed_facts();
    facts.traceparent = Some("00-00000000000000000000000000000000-b7ad6b7169203331-01".into());
    facts.peer_uri_san = Some("https://not-spiffe.example".into());
    let r = record(json!({}), &facts);
    assert!(r.get("traceparent").is_none() && r.get("peer").is_none());
}

#[wasm_bindgen_test(unsupported = test)]
fn samples_allowed_requests_only() {
    let config = config(json!({"sample_allowed": 0.25}));
    let mut facts = allowed_facts();
    let mut kept = 0;
    for i in 0..4000 {
        facts.request_id = Some(format!("req-{i}"));
        let draft = config.draft(&facts);
        kept += usize::from(draft.sampled(0));
        // The same request id is always decided the same way.
        assert_eq!(draft.sampled(0), config.draft(&facts).sampled(99));
    }
    assert!((850..1150).contains(&kept), "kept {kept} of 4000 at 0.25");
    facts.request_id = None;
    let kept = (0..4000).filter(|draw| config.draft(&facts).sampled(*draw)).count();
    assert!((850..1150).contains(&kept), "kept {kept} of 4000 at 0.25 without request ids");
    facts.jwt = Some(Handed::FilterState(br#"{"decision":"deny"}"#.to_vec()));
    let none = crate::audit::tests::config(json!({"sample_allowed": 0.0}));
    assert!((0..100).all(|draw| none.draft(&facts).sampled(draw)), "denials always kept");
}

#[wasm_bindgen_test(unsupported = test)]
fn route_rules_override_sampling_and_query() {
    let config = config(json!({
        "sample_allowed": 1.0,
        "routes": [
            {"name": "health", "route_names": ["healthz"], "sample_allowed": 0.0},
            {"name": "search", "match": {"path": {"prefix": "/search"}}, "query": "keep"}
        ]
    }));
    let mut facts = allowed_facts();
    facts.route_name = Some("healthz".into());
    assert!(!config.draft(&facts).sampled(0));
    facts.route_name = None;
    facts.path = Some("/search?q=shoes".into());
    let r: Value = serde_json::from_str(&Chain::new([0; 16]).seal(&config.draft(&facts)).text).unwrap();
    assert_eq!(r["path"], "/search?q=shoes");
    facts.route_choice = Some("health".into());
    assert!(!config.draft(&facts).sampled(0), "route metadata chooses the rule");
}

#[wasm_bindgen_test(unsupported = test)]
fn the_source_is_the_real_peer_and_a_forwarded_client_is_recorded_apart() {
    use crate::address::SourceAddresses;
    // Envoy with `use_remote_address: false` and `X-Forwarded-For: 10.1.2.3`, the peer from
    // the `zt.peer_address` filter state.
    let facts = StreamFacts {
        source: SourceAddresses::from_envoy(Some("10.1.2.3:0"), Some("127.0.0.1:5000")),
        ..allowed_facts()
    };
    let r = record(json!({}), &facts);
    assert_eq!(r["source"], json!({"address": "127.0.0.1", "port": 5000}));
    assert_eq!(r["remote"], "10.1.2.3");
    // No trustworthy peer: no `source` at all, never the forged one in its place.
    let forged = StreamFacts { source: SourceAddresses::from_envoy(Some("10.1.2.3:0"), None), ..allowed_facts() };
    let r = record(json!({}), &forged);
    assert!(r.get("source").is_none());
    assert_eq!(r["remote"], "10.1.2.3");
}

/// Audit never refuses: metadata naming an undefined rule is recorded with the defaults, named
/// in the record and kept as an anomaly, also when the configuration has no rules at all.
#[wasm_bindgen_test(unsupported = test)]
fn route_metadata_naming_an_undefined_rule_is_an_anomaly() {
    for config in [
        config(json!({"sample_allowed": 0.0})),
        config(json!({"sample_allowed": 0.0, "routes": [{"name": "health", "route_names": ["healthz"]}]})),
    ] {
        let mut facts = allowed_facts();
        assert!(!config.draft(&facts).anomaly());
        assert!(!config.draft(&facts).sampled(0), "sampled out without metadata");
        facts.route_choice = Some("ghost".into());
        let draft = config.draft(&facts);
        assert!(draft.anomaly());
        assert_eq!(draft.unknown_route_rule(), Some("ghost"));
        assert!(draft.sampled(0), "an anomaly is always kept");
        let r: Value = serde_json::from_str(&Chain::new([0; 16]).seal(&draft).text).unwrap();
        assert_eq!(r["unknown_route_rule"], "ghost");
        assert_eq!(r["outcome"], "allow");
    }
}
