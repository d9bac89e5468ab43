//! The two addresses: the connection's direct peer (`ipBlocks`, `source.ip`, `source_ip`) and
//! Envoy's remote address (`remoteIpBlocks`, `remote.ip`, `remote_ip`), and the refusal to
//! decide on a peer address the proxy could not vouch for.

use wasm_bindgen_test::wasm_bindgen_test;

use super::*;

fn decide(config: &AuthzConfig, req: &Req) -> String {
    summary(&config.authorize(&req.facts()))
}

#[wasm_bindgen_test(unsupported = test)]
fn ip_blocks_read_the_peer_and_remote_ip_blocks_the_remote_address() {
    let peer_rule = allow_rule(json!({"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}]}));
    // A forged X-Forwarded-For moves only the remote address: the peer decides.
    assert!(!allowed(&peer_rule, &Req::get("/").source("127.0.0.1").remote("10.1.2.3")));
    assert!(allowed(&peer_rule, &Req::get("/").source("10.1.2.3").remote("203.0.113.9")));

    let remote_rule = allow_rule(json!({"from": [{"source": {"remoteIpBlocks": ["10.0.0.0/8"]}}]}));
    assert!(allowed(&remote_rule, &Req::get("/").source("127.0.0.1").remote("10.1.2.3")));
    assert!(!allowed(&remote_rule, &Req::get("/").source("10.1.2.3").remote("203.0.113.9")));

    let not_remote = allow_rule(json!({"from": [{"source": {"notRemoteIpBlocks": ["10.0.0.0/8"]}}]}));
    assert!(allowed(&not_remote, &Req::get("/").remote("203.0.113.9")));
    // A peer-only policy does not need the remote address, and the reverse.
    assert!(allowed(&remote_rule, &Req::get("/").peer_unknown().remote("10.1.2.3")));
    assert!(allowed(&peer_rule, &Req::get("/").source("10.1.2.3").remote_unknown()));
    assert!(!allowed(&not_remote, &Req::get("/").remote("10.1.2.3")));
}

#[wasm_bindgen_test(unsupported = test)]
fn when_keys_and_our_conditions_for_both_addresses() {
    let remote_when = allow_when(json!({"key": "remote.ip", "values": ["192.0.2.0/24"]}));
    assert!(allowed(&remote_when, &Req::get("/").source("127.0.0.1").remote("192.0.2.7")));
    assert!(!allowed(&remote_when, &Req::get("/").source("192.0.2.7").remote("127.0.0.1")));
    let source_when = allow_when(json!({"key": "source.ip", "values": ["192.0.2.0/24"]}));
    assert!(allowed(&source_when, &Req::get("/").source("192.0.2.7").remote("127.0.0.1")));
    let remote_ip = allow_when(json!({"remote_ip": ["192.0.2.0/24"]}));
    assert!(allowed(&remote_ip, &Req::get("/").remote("192.0.2.7")));
    assert!(!allowed(&remote_ip, &Req::get("/").source("192.0.2.7").remote("127.0.0.1")));
}

#[wasm_bindgen_test(unsupported = test)]
fn an_unknown_peer_is_refused_never_read_as_outside_every_block() {
    // `notIpBlocks` over a missing address would hold in two-valued logic: a pass.
    let not_blocked = allow_rule(json!({"from": [{"source": {"notIpBlocks": ["192.0.2.0/24"]}}]}));
    let forged = Req::get("/").peer_unknown().remote("10.1.2.3");
    assert_eq!(decide(&not_blocked, &forged), "deny default-deny peer_address_unknown -");
    assert_eq!(decide(&not_blocked, &forged.clone().source("10.1.2.3")), "allow p policy_allowed -");
    let reply = denial(&not_blocked.authorize(&forged.facts()), "r");
    assert_eq!(reply.status, 403);
    assert!(reply.body.contains("source_address_unknown"), "{}", reply.body);

    let remote = allow_when(json!({"not": {"remote_ip": ["192.0.2.0/24"]}}));
    assert_eq!(decide(&remote, &Req::get("/").remote_unknown()), "deny default-deny remote_address_unknown -");
}

#[wasm_bindgen_test(unsupported = test)]
fn advisory_mode_records_the_refusal_and_passes() {
    let json = json!({
        "advisory": true,
        "policies": {"p": {"action": "ALLOW", "rules": [{"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}]}]}},
        "defaults": {"policies": ["p"]},
    });
    let decision = config(json).authorize(&Req::get("/").peer_unknown().remote("10.1.2.3").facts());
    assert_eq!(summary(&decision), "advisory_deny default-deny peer_address_unknown -");
}

#[wasm_bindgen_test(unsupported = test)]
fn inputs_say_which_address_policies_read() {
    let base = Inputs::default();
    assert_eq!(allow_when(json!({"remote_ip": ["10.0.0.0/8"]})).inputs(), Inputs { remote: true, ..base });
    assert_eq!(
        allow_when(json!({"key": "remote.ip", "values": ["10.0.0.0/8"]})).inputs(),
        Inputs { remote: true, ..base }
    );
    assert_eq!(
        allow_rule(json!({"from": [{"source": {"ipBlocks": ["10.0.0.0/8"], "remoteIpBlocks": ["10.0.0.0/8"]}}]}))
            .inputs(),
        Inputs { source: true, remote: true, ..base }
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn remote_blocks_are_validated_like_ip_blocks() {
    let error = config_error(json!({
        "policies": {"p": {"action": "ALLOW", "rules": [{"from": [{"source": {"remoteIpBlocks": ["10.0.0.1/8"]}}]}]}},
    }));
    assert_eq!(error.path, "policies.p.rules[0].from[0].source.remoteIpBlocks[0]");
}

#[wasm_bindgen_test(unsupported = test)]
fn only_routes_whose_policies_read_an_address_are_refused() {
    let c = config(json!({
        "policies": {
            "internal": {"action": "ALLOW", "rules": [{"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}]}]},
            "anyone": {"action": "ALLOW", "rules": [{}]},
        },
        "routes": [
            {"name": "internal", "match": {"path": {"prefix": "/internal"}}, "policies": ["internal"]},
            {"name": "public", "match": {"path": {"prefix": "/public"}}, "policies": ["anyone"]},
        ],
    }));
    let forged = |path: &str| Req::get(path).peer_unknown().remote("10.1.2.3");
    assert_eq!(decide(&c, &forged("/internal/x")), "deny default-deny peer_address_unknown internal");
    assert_eq!(decide(&c, &forged("/public/x")), "allow anyone policy_allowed public");
}
