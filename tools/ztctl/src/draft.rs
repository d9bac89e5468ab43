//! A draft zt-authz configuration (`filters/zt-authz/README.md`) from the inventory: ALLOW exactly
//! the (caller, route, method) calls observed with outcome `allow` or `advisory`, nothing else
//! (no `defaults`: zt-authz denies what no route rule selects, and what no ALLOW policy of a
//! selected rule matches), and the filter-wide `advisory: true`, so that the draft can be rolled
//! out as a dry run first: it records `advisory_deny` for what it would refuse, refuses nothing.
//!
//! - A route is selected by its Envoy route name (`route_names`) when the record has one, else by
//!   an exact path and the observed methods (`match`).
//! - A caller is matched by the suite's exact conditions, never Istio's globbing values (a `*`
//!   in a `sub` would widen an Istio `requestPrincipals` entry): `provider` and `issuer` plus
//!   `{"claim": {"path": ["sub"], "equals": …}}` (or `client_id`), or `{"peer": {"spiffe_id": …}}`.
//! - Anonymous calls get no rule; neither do callers recorded only as an HMAC. Each such case is
//!   a note for stderr: zt-authz refuses unknown fields, so there is no room for notes in the JSON.
//!
//! Every entry is checked with zt-core's own parser before it goes in; one that does not pass is
//! left out with a note, never silently.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};
use zt_core::authz::AuthzConfig;

use crate::caller::{Caller, HASHED_PREFIX, RouteKey, printable};
use crate::error::CliError;
use crate::inventory::Row;

/// The draft and what could not go into it.
#[derive(Debug)]
pub struct Draft {
    /// Checked by [`AuthzConfig::from_json`].
    pub config: Value,
    pub route_rules: usize,
    pub notes: Vec<String>,
}

impl Draft {
    /// JSON for a person to review before rolling it out, with a final newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut text = String::new();
        layout(&self.config, 0, &mut text);
        text.push('\n');
        text.into_bytes()
    }
}

/// Short values on one line, longer objects and arrays one member per line: serde_json's pretty
/// printer puts every array element on a line of its own, which makes a policy hard to read.
fn layout(value: &Value, indent: usize, out: &mut String) {
    const WIDTH: usize = 100;
    let compact = value.to_string();
    let members: Vec<(Option<&String>, &Value)> = match value {
        Value::Object(map) if indent + compact.len() > WIDTH => map.iter().map(|(k, v)| (Some(k), v)).collect(),
        Value::Array(items) if indent + compact.len() > WIDTH => items.iter().map(|v| (None, v)).collect(),
        _ => return out.push_str(&compact),
    };
    let (open, close) = if value.is_object() { ('{', '}') } else { ('[', ']') };
    out.push(open);
    for (i, (key, member)) in members.iter().enumerate() {
        out.push_str(if i == 0 { "\n" } else { ",\n" });
        out.push_str(&" ".repeat(indent + 2));
        if let Some(key) = key {
            out.push_str(&Value::from(key.as_str()).to_string());
            out.push_str(": ");
        }
        layout(member, indent + 2, out);
    }
    out.push('\n');
    out.push_str(&" ".repeat(indent));
    out.push(close);
}

/// Methods each caller used, per route.
type Observed = BTreeMap<RouteKey, BTreeMap<Caller, BTreeSet<String>>>;

pub fn build<'a>(rows: impl IntoIterator<Item = &'a Row>) -> Result<Draft, CliError> {
    let mut notes = Vec::new();
    let mut observed: Observed = BTreeMap::new();
    let mut anonymous = Vec::new();
    for row in rows {
        let passed = row.counts.allow + row.counts.advisory;
        if passed == 0 {
            continue;
        }
        let route = row.route.display(row.method.as_deref());
        if row.caller == Caller::Anonymous {
            anonymous.push(format!("{route} ({passed})"));
            continue;
        }
        let Some(method) = &row.method else {
            notes.push(format!("{} on {route}: no method recorded; no rule written", row.caller));
            continue;
        };
        if row.route == RouteKey::Unknown {
            notes.push(format!("{}: neither route name nor path recorded; no rule written", row.caller));
            continue;
        }
        observed.entry(row.route.clone()).or_default().entry(row.caller.clone()).or_default().insert(method.clone());
    }
    if !anonymous.is_empty() {
        notes.push(format!(
            "anonymous calls observed, no allow rule written (the draft denies them): {}",
            anonymous.join(", ")
        ));
    }

    let (mut policies, mut routes, mut taken) = (Map::new(), Vec::new(), BTreeSet::new());
    for (route, callers) in observed {
        let mut rules = Vec::new();
        let mut methods = BTreeSet::new();
        for (caller, caller_methods) in callers {
            let rule = caller_conditions(&caller)
                .map(|when| json!({"to": [{"operation": {"methods": caller_methods}}], "when": when}));
            match rule.and_then(|rule| check_rule(&rule).map(|()| rule)) {
                Ok(rule) => {
                    rules.push(rule);
                    methods.extend(caller_methods);
                }
                Err(why) => notes.push(format!("{caller} on {}: no rule written: {why}", route.display(None))),
            }
        }
        if rules.is_empty() {
            continue;
        }
        let name = rule_name(&route, &mut taken);
        let policy_id = format!("{name}.observed");
        let route_rule = match &route {
            RouteKey::Named(route_name) => json!({"name": name, "route_names": [route_name], "policies": [policy_id]}),
            _ => json!({"name": name, "match": {"path": {"exact": route_path(&route)}, "methods": methods},
                        "policies": [policy_id]}),
        };
        let policy = json!({"action": "ALLOW", "rules": rules});
        let alone = json!({"policies": {&policy_id: &policy}, "routes": [&route_rule]});
        if let Err(e) = AuthzConfig::from_json(alone.to_string().as_bytes()) {
            notes.push(format!("route {}: no rule written: {e}", route.display(None)));
            continue;
        }
        policies.insert(policy_id, policy);
        routes.push(route_rule);
    }

    let route_rules = routes.len();
    let config = json!({"advisory": true, "policies": policies, "routes": routes});
    AuthzConfig::from_json(config.to_string().as_bytes()).map_err(CliError::DraftInvalid)?;
    Ok(Draft { config, route_rules, notes: notes.iter().map(|n| printable(n)).collect() })
}

/// The `when` conditions naming this caller exactly, or why it cannot be named.
fn caller_conditions(caller: &Caller) -> Result<Vec<Value>, String> {
    let token = |provider: &Option<String>, iss: &Option<String>, claim: &str, value: &str| {
        if value.starts_with(HASHED_PREFIX) {
            return Err(format!("its {claim} is recorded as an HMAC, which a policy cannot match"));
        }
        let mut when = Vec::new();
        if let Some(provider) = provider {
            when.push(json!({"provider": [provider]}));
        }
        if let Some(iss) = iss.as_ref().filter(|iss| !iss.starts_with(HASHED_PREFIX)) {
            when.push(json!({"issuer": [iss]}));
        }
        if when.is_empty() {
            return Err(format!(
                "neither its provider nor its issuer is recorded, and a rule on {claim} alone would admit any issuer's token"
            ));
        }
        // A path as an array: a claim name is never split on dots.
        let equals = |path: &str| json!({"claim": {"path": [path], "equals": value}});
        when.push(if claim == "client_id" {
            // zt-audit records `client_id` from the claim of that name, or OIDC's `azp`.
            json!({"any": [equals("client_id"), equals("azp")]})
        } else {
            equals(claim)
        });
        Ok(when)
    };
    match caller {
        Caller::Subject { provider, iss, sub } => token(provider, iss, "sub", sub),
        Caller::Client { provider, iss, client_id } => token(provider, iss, "client_id", client_id),
        Caller::Peer(spiffe_id) => Ok(vec![json!({"peer": {"spiffe_id": spiffe_id}})]),
        Caller::Unidentified { .. } => Err("neither sub nor client_id is recorded".to_owned()),
        Caller::Anonymous => Err("anonymous".to_owned()),
    }
}

/// Whether zt-authz accepts this policy rule (a SPIFFE ID it refuses, a method that is not a
/// token), checked alone so that one odd caller does not cost the route its other rules.
fn check_rule(rule: &Value) -> Result<(), String> {
    let config = json!({"policies": {"check": {"action": "ALLOW", "rules": [rule]}},
                        "routes": [{"name": "check", "route_names": ["check"], "policies": ["check"]}]});
    AuthzConfig::from_json(config.to_string().as_bytes()).map(|_| ()).map_err(|e| e.to_string())
}

fn route_path(route: &RouteKey) -> &str {
    match route {
        RouteKey::Path(path) => path,
        RouteKey::Named(_) | RouteKey::Unknown => "",
    }
}

/// A unique rule name zt-authz accepts (letters, digits, `-`, `_`, `.`, `:`), readable: the route
/// name, or `path` and the path, other characters as `_`.
fn rule_name(route: &RouteKey, taken: &mut BTreeSet<String>) -> String {
    let sanitize = |text: &str| -> String {
        text.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.:".contains(c) { c } else { '_' }).collect()
    };
    let base = match route {
        RouteKey::Named(name) if !name.is_empty() => sanitize(name),
        RouteKey::Path(path) => format!("path{}", sanitize(path)),
        RouteKey::Named(_) | RouteKey::Unknown => "route".to_owned(),
    };
    let mut name = base.clone();
    let mut n = 2;
    while !taken.insert(name.clone()) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

#[cfg(test)]
mod tests {
    use zt_core::UnixSeconds;
    use zt_core::authz::{RequestFacts, Verdict};
    use zt_core::jwt::Identity;

    use super::*;
    use crate::inventory::Counts;

    const ISS: &str = "https://issuer.example";

    fn subject(sub: &str) -> Caller {
        Caller::Subject { provider: Some("corp".into()), iss: Some(ISS.into()), sub: sub.into() }
    }

    fn row(caller: Caller, route: RouteKey, method: &str, allow: u64, deny: u64) -> Row {
        let counts = Counts { total: allow + deny, allow, deny, ..Counts::default() };
        Row { caller, route, method: Some(method.into()), counts }
    }

    fn identity(provider: &str, claims: Value) -> Identity {
        let Value::Object(claims) = claims else { panic!("object") };
        Identity::from_claims(provider, claims)
    }

    /// The verdict of `config` on a request, as zt-authz would decide it.
    fn decide(config: &Value, route: Option<&str>, method: &str, path: &str, who: Option<&Identity>) -> Verdict {
        let config = AuthzConfig::from_json(config.to_string().as_bytes()).unwrap();
        let mut facts = RequestFacts::new(method, path, UnixSeconds(1_700_000_000));
        facts.route_name = route;
        facts.identity = who;
        config.authorize(&facts).verdict
    }

    fn sample() -> Draft {
        build(&[
            row(subject("alice"), RouteKey::Named("orders".into()), "GET", 3, 0),
            row(subject("bob"), RouteKey::Named("orders".into()), "POST", 0, 2),
            row(
                Caller::Peer("spiffe://cluster.local/ns/billing/sa/api".into()),
                RouteKey::Path("/invoices".into()),
                "PUT",
                1,
                0,
            ),
            row(Caller::Anonymous, RouteKey::Path("/health".into()), "GET", 5, 0),
        ])
        .unwrap()
    }

    #[test]
    fn the_draft_parses_and_is_advisory() {
        let draft = sample();
        let config = AuthzConfig::from_json(&draft.to_bytes()).unwrap();
        assert!(config.advisory());
        assert_eq!(draft.route_rules, 2);
        assert_eq!(
            draft.config["routes"],
            json!([
                {"name": "orders", "route_names": ["orders"], "policies": ["orders.observed"]},
                {"name": "path_invoices", "match": {"path": {"exact": "/invoices"}, "methods": ["PUT"]},
                 "policies": ["path_invoices.observed"]}
            ])
        );
        assert!(draft.config.get("defaults").is_none(), "default deny needs no defaults");
        assert!(draft.notes.iter().any(|n| n.contains("anonymous calls observed") && n.contains("GET /health (5)")));
    }

    #[test]
    fn allows_observed_calls_and_denies_the_rest() {
        let mut enforced = sample().config;
        enforced["advisory"] = json!(false);
        let alice = identity("corp", json!({"iss": ISS, "sub": "alice"}));
        let bob = identity("corp", json!({"iss": ISS, "sub": "bob"}));
        let alice_elsewhere = identity("other", json!({"iss": "https://other.example", "sub": "alice"}));
        let cases = [
            ("alice GET orders: observed", Some("orders"), "GET", "/orders/7", Some(&alice), Verdict::Allow),
            ("alice POST orders: other method", Some("orders"), "POST", "/orders", Some(&alice), Verdict::Deny),
            ("bob POST orders: only denied before", Some("orders"), "POST", "/orders", Some(&bob), Verdict::Deny),
            ("alice of another issuer", Some("orders"), "GET", "/orders/7", Some(&alice_elsewhere), Verdict::Deny),
            ("no identity", Some("orders"), "GET", "/orders/7", None, Verdict::Deny),
            ("anonymous health check", None, "GET", "/health", None, Verdict::Deny),
            ("an unobserved route", Some("admin"), "GET", "/admin", Some(&alice), Verdict::Deny),
        ];
        for (name, route, method, path, who, want) in cases {
            assert_eq!(decide(&enforced, route, method, path, who), want, "{name}");
        }
    }

    #[test]
    fn in_advisory_mode_nothing_is_refused() {
        let draft = sample().config;
        let alice = identity("corp", json!({"iss": ISS, "sub": "alice"}));
        assert_eq!(decide(&draft, Some("orders"), "GET", "/o", Some(&alice)), Verdict::Allow);
        assert_eq!(decide(&draft, Some("admin"), "GET", "/admin", Some(&alice)), Verdict::AdvisoryDeny);
    }

    #[test]
    fn callers_without_a_matchable_name_get_no_rule_and_a_note() {
        let hashed = Caller::Subject { provider: Some("corp".into()), iss: None, sub: "hmac-sha256:ab".into() };
        let bare = Caller::Client { provider: None, iss: None, client_id: "web".into() };
        let odd_peer = Caller::Peer("not-a-spiffe-id".into());
        let draft = build(&[
            row(hashed, RouteKey::Named("a".into()), "GET", 1, 0),
            row(bare, RouteKey::Named("a".into()), "GET", 1, 0),
            row(odd_peer, RouteKey::Named("a".into()), "GET", 1, 0),
            row(Caller::Unidentified { provider: Some("corp".into()) }, RouteKey::Named("a".into()), "GET", 1, 0),
        ])
        .unwrap();
        assert_eq!(draft.route_rules, 0);
        assert_eq!(draft.config, json!({"advisory": true, "policies": {}, "routes": []}));
        assert_eq!(draft.notes.len(), 4, "{:#?}", draft.notes);
        assert!(draft.notes[0].contains("recorded as an HMAC"), "{}", draft.notes[0]);
        assert!(draft.notes[1].contains("neither its provider nor its issuer"), "{}", draft.notes[1]);
        assert!(draft.notes[2].starts_with("peer=not-a-spiffe-id on a: no rule written"), "{}", draft.notes[2]);
    }

    #[test]
    fn a_client_id_caller_matches_its_claim() {
        let web = Caller::Client { provider: Some("corp".into()), iss: None, client_id: "web".into() };
        let mut config = build(&[row(web, RouteKey::Path("/x".into()), "GET", 1, 0)]).unwrap().config;
        config["advisory"] = json!(false);
        let token = |client_id: &str| identity("corp", json!({"iss": ISS, "client_id": client_id}));
        assert_eq!(decide(&config, None, "GET", "/x", Some(&token("web"))), Verdict::Allow);
        assert_eq!(decide(&config, None, "GET", "/x", Some(&token("cli"))), Verdict::Deny);
        assert_eq!(decide(&config, None, "POST", "/x", Some(&token("web"))), Verdict::Deny);
        // The record's client_id may have come from OIDC's `azp`.
        let azp = identity("corp", json!({"iss": ISS, "azp": "web"}));
        assert_eq!(decide(&config, None, "GET", "/x", Some(&azp)), Verdict::Allow);
    }

    #[test]
    fn the_file_is_laid_out_for_review_and_reads_back_the_same() {
        let draft = sample();
        let text = String::from_utf8(draft.to_bytes()).unwrap();
        assert!(text.starts_with("{\n  \"advisory\": true,\n  \"policies\": {\n"), "{text}");
        assert!(
            text.contains(r#"{"name":"orders","policies":["orders.observed"],"route_names":["orders"]}"#),
            "{text}"
        );
        assert!(text.lines().all(|line| line.len() <= 200), "{text}");
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), draft.config);
    }

    #[test]
    fn rule_names_are_valid_and_unique() {
        let mut taken = BTreeSet::new();
        assert_eq!(rule_name(&RouteKey::Path("/a/{id}".into()), &mut taken), "path_a__id_");
        assert_eq!(rule_name(&RouteKey::Named("path_a__id_".into()), &mut taken), "path_a__id_-2");
        assert_eq!(rule_name(&RouteKey::Named("ok:v1.2".into()), &mut taken), "ok:v1.2");
    }
}
