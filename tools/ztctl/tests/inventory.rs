//! `ztctl inventory` as an operator runs it: the table, the warning on a broken chain, and the
//! draft authorization policy, checked with zt-core's own parser and decision function.

// Test code: a panic is a failed test (the workspace denies these in shipped code only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::*;
use serde_json::{Value, json};
use zt_core::UnixSeconds;
use zt_core::authz::{AuthzConfig, RequestFacts, Verdict};
use zt_core::jwt::Identity;

/// Callers of every kind: a token `sub`, a token `client_id`, an mTLS peer, anonymous.
fn mixed_callers() -> Vec<Entry> {
    let (mut a, mut b) = (ChainBuilder::new(CHAIN_A), ChainBuilder::new(CHAIN_B));
    let web = r#""identity":{"provider":"corp","iss":"https://issuer.example","client_id":"web"},"#;
    let peer = r#""peer":"spiffe://cluster.local/ns/billing/sa/api","#;
    let call = |who: &str, method: &str, path: &str, route: &str, outcome: &str| {
        let route = if route.is_empty() { String::new() } else { format!(r#""route":"{route}","#) };
        format!(r#""method":"{method}","path":"{path}",{route}"status":200,{who}"outcome":"{outcome}""#)
    };
    vec![
        a.next(&request("alice", "GET", "/orders/1", Some("orders"), 200, "allow")),
        b.next(&call(web, "POST", "/orders", "orders", "deny")),
        a.next(&request("alice", "GET", "/orders/2?x=1", Some("orders"), 200, "allow")),
        b.next(&call(peer, "PUT", "/invoices/7?draft=1", "", "advisory")),
        a.next(&request("alice", "GET", "/orders/3", Some("orders"), 429, "limited")),
        b.next(&call("", "GET", "/health", "", "allow")),
        a.next(&call(web, "GET", "/orders/4", "orders", "allow")),
    ]
}

#[test]
fn prints_who_called_what() {
    let path = write(&scratch("inventory-table"), "envoy.log", &as_envoy_log(&mixed_callers()));
    let run = ztctl(&["inventory", &path], "");
    assert_eq!((run.code, run.stderr.as_str()), (0, ""));
    assert_eq!(
        run.stdout,
        "\
CALLER                                         ROUTE            METHOD  COUNT  ALLOW  DENY  LIMITED  ADVISORY
anonymous                                      GET /health      GET         1      1     0        0         0
corp:client_id=web                             orders           GET         1      1     0        0         0
corp:client_id=web                             orders           POST        1      0     1        0         0
corp:sub=alice                                 orders           GET         3      2     0        1         0
peer=spiffe://cluster.local/ns/billing/sa/api  PUT /invoices/7  PUT         1      0     0        0         1
"
    );
}

#[test]
fn a_broken_chain_is_a_warning_not_a_failure() {
    let mut log = mixed_callers();
    log.remove(2);
    let path = write(&scratch("inventory-broken"), "envoy.log", &as_envoy_log(&log));
    let run = ztctl(&["inventory", &path], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.starts_with("warning: the audit chain is broken"), "{}", run.stderr);
    assert!(run.stderr.contains("seq gap: expected seq 1, found 2"), "{}", run.stderr);
    assert!(run.stdout.contains("corp:sub=alice"), "{}", run.stdout);
}

fn identity(claims: Value) -> Identity {
    let Value::Object(claims) = claims else { panic!("object") };
    Identity::from_claims("corp", claims)
}

fn verdict(config: &AuthzConfig, route: Option<&str>, method: &str, path: &str, who: Option<&Identity>) -> Verdict {
    let mut facts = RequestFacts::new(method, path, UnixSeconds(1_795_470_991));
    facts.route_name = route;
    facts.identity = who;
    facts.peer_uri_san = None;
    config.authorize(&facts).verdict
}

#[test]
fn writes_a_draft_policy_that_zt_authz_accepts() {
    let dir = scratch("inventory-draft");
    let log = write(&dir, "audit.ndjson", &as_ndjson(&mixed_callers()));
    let out = dir.join("draft.json");
    let run = ztctl(&["inventory", "--draft-policy", out.to_str().unwrap(), &log], "");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("note: anonymous calls observed, no allow rule written"), "{}", run.stderr);
    assert!(run.stderr.contains("GET /health (1)"), "{}", run.stderr);
    assert!(run.stderr.contains("advisory (dry-run) mode"), "{}", run.stderr);

    let bytes = std::fs::read(&out).unwrap();
    let config = AuthzConfig::from_json(&bytes).unwrap();
    assert!(config.advisory(), "a draft is rolled out as a dry run first");

    let draft: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(draft["advisory"], json!(true));
    assert!(draft.get("defaults").is_none(), "default deny: nothing unobserved is allowed");
    assert_eq!(
        draft["routes"],
        json!([
            {"name": "orders", "route_names": ["orders"], "policies": ["orders.observed"]},
            {"name": "path_invoices_7", "match": {"path": {"exact": "/invoices/7"}, "methods": ["PUT"]},
             "policies": ["path_invoices_7.observed"]}
        ])
    );
    // Alice (allowed) and web's GET (allowed); web's POST was denied, so not allowed here.
    let orders = &draft["policies"]["orders.observed"]["rules"];
    assert_eq!(orders.as_array().unwrap().len(), 2, "{orders:#}");
    assert_eq!(orders[0]["to"], json!([{"operation": {"methods": ["GET"]}}]));

    // The same draft enforced: the observed calls pass, everything else is refused.
    let mut enforced = draft.clone();
    enforced["advisory"] = json!(false);
    let enforced = AuthzConfig::from_json(enforced.to_string().as_bytes()).unwrap();
    let alice = identity(json!({"iss": "https://issuer.example", "sub": "alice"}));
    let mallory = identity(json!({"iss": "https://issuer.example", "sub": "mallory"}));
    let web = identity(json!({"iss": "https://issuer.example", "client_id": "web"}));
    assert_eq!(verdict(&enforced, Some("orders"), "GET", "/orders/9", Some(&alice)), Verdict::Allow);
    assert_eq!(verdict(&enforced, Some("orders"), "GET", "/orders/9", Some(&web)), Verdict::Allow);
    assert_eq!(verdict(&enforced, Some("orders"), "POST", "/orders", Some(&web)), Verdict::Deny);
    assert_eq!(verdict(&enforced, Some("orders"), "GET", "/orders/9", Some(&mallory)), Verdict::Deny);
    assert_eq!(verdict(&enforced, None, "GET", "/health", None), Verdict::Deny);

    let peer = "spiffe://cluster.local/ns/billing/sa/api";
    let mut facts = RequestFacts::new("PUT", "/invoices/7", UnixSeconds(1_795_470_991));
    facts.peer_uri_san = Some(peer);
    assert_eq!(enforced.authorize(&facts).verdict, Verdict::Allow);
    facts.peer_uri_san = Some("spiffe://cluster.local/ns/web/sa/frontend");
    assert_eq!(enforced.authorize(&facts).verdict, Verdict::Deny);

    // As drafted (advisory), the unobserved call passes but is recorded as a would-be denial.
    assert_eq!(verdict(&config, Some("orders"), "GET", "/orders/9", Some(&mallory)), Verdict::AdvisoryDeny);
}

#[test]
fn draft_policy_is_refused_on_verify_and_needs_a_file() {
    let run = ztctl(&["verify", "--draft-policy", "x.json", "-"], "");
    assert_eq!(run.code, 2);
    let run = ztctl(&["inventory", "-", "--draft-policy"], "");
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("a value is required for '--draft-policy"), "{}", run.stderr);
}
