//! The remote-key lifecycle against an in-memory shared store: several `RemoteKeys` on one
//! store stand for several Envoy workers.

use serde_json::{Value, json};
use wasm_bindgen_test::wasm_bindgen_test;

use super::lifecycle::MAX_DOCUMENT_BYTES;
use super::*;
use crate::jwt::keys::{KeyUse, SkippedKeys};
use crate::shared_store::{MemoryStore, SharedStore};
use crate::time::UnixSeconds;

const T0: UnixSeconds = UnixSeconds(1_700_000_000);

fn at(seconds: u64) -> UnixSeconds {
    UnixSeconds(T0.0 + seconds)
}

fn public(private: &str, kid: &str) -> Value {
    let mut jwk: Value = serde_json::from_str(private).unwrap();
    let object = jwk.as_object_mut().unwrap();
    object.remove("d");
    object.insert("kid".into(), json!(kid));
    jwk
}

fn jwks(kids: &[&str]) -> Vec<u8> {
    let keys: Vec<Value> =
        kids.iter().map(|kid| public(include_str!("../../../testdata/A.3_ES256.jwk.json"), kid)).collect();
    json!({ "keys": keys }).to_string().into_bytes()
}

fn direct() -> RemoteSource {
    let json: RemoteJwksJson = serde_json::from_value(json!({
        "cluster": "idp", "uri": "https://idp.test/jwks", "cache_duration_seconds": 100,
        "unknown_kid_refetch_interval_seconds": 30,
    }))
    .unwrap();
    RemoteSource::from_remote(&json, "p").unwrap()
}

fn discovered() -> RemoteSource {
    let json: OidcDiscoveryJson = serde_json::from_value(json!({"cluster": "idp"})).unwrap();
    RemoteSource::from_discovery(&json, "https://idp.test", "p").unwrap()
}

fn worker(source: RemoteSource) -> RemoteKeys {
    RemoteKeys::new(ProviderId(0), "main", "https://idp.test", source, KeyUse::Signature)
}

fn kids(remote: &RemoteKeys) -> Vec<String> {
    let Some(keys) = remote.keys() else { return Vec::new() };
    let alg = crate::jwt::Algorithm::Es256;
    ["a", "b", "c"]
        .into_iter()
        .filter(|kid| keys.candidates(Some(kid), alg, None).next().is_some())
        .map(String::from)
        .collect()
}

#[wasm_bindgen_test(unsupported = test)]
fn the_first_poll_fetches_and_the_answer_installs_and_publishes() {
    let store = MemoryStore::default();
    let mut one = worker(direct());
    let (_, request) = one.poll(&store, T0);
    let request = request.unwrap();
    assert_eq!(request.stage, FetchStage::Jwks);
    assert_eq!(
        request.target,
        FetchTarget { cluster: "idp".into(), authority: "idp.test".into(), path: "/jwks".into() }
    );
    assert_eq!(request.timeout_ms, 5000);
    assert_eq!(one.poll(&store, at(1)).1, None, "no second fetch while one is in flight");

    let outcome = one.on_response(FetchStage::Jwks, Some((200, &jwks(&["a"]))), &store, at(1));
    assert_eq!(outcome, FetchOutcome::Installed { keys: 1, skipped: SkippedKeys::default() });
    assert_eq!(kids(&one), ["a"]);

    // Another worker adopts the published keys without fetching.
    let mut two = worker(direct());
    assert_eq!(two.poll(&store, at(2)), (true, None));
    assert_eq!(kids(&two), ["a"]);
}

#[wasm_bindgen_test(unsupported = test)]
fn one_worker_fetches_while_the_others_wait_for_its_result() {
    let store = MemoryStore::default();
    let mut workers: Vec<RemoteKeys> = (0..4).map(|_| worker(direct())).collect();
    let requests: Vec<_> = workers.iter_mut().filter_map(|w| w.poll(&store, T0).1).collect();
    assert_eq!(requests.len(), 1, "the lease lets exactly one worker fetch");
    workers[0].on_response(FetchStage::Jwks, Some((200, &jwks(&["a"]))), &store, T0);
    for w in &mut workers[1..] {
        assert_eq!(w.poll(&store, at(1)), (true, None));
        assert_eq!(kids(w), ["a"]);
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn a_refresh_starts_at_four_fifths_of_the_cache_duration_and_rotates_keys() {
    let store = MemoryStore::default();
    let mut one = worker(direct());
    one.poll(&store, T0);
    one.on_response(FetchStage::Jwks, Some((200, &jwks(&["a"]))), &store, T0);
    assert_eq!(one.poll(&store, at(79)).1, None);
    let request = one.poll(&store, at(80)).1.unwrap();
    one.on_response(request.stage, Some((200, &jwks(&["b"]))), &store, at(80));
    assert_eq!(kids(&one), ["b"], "the rotated set replaces the old one");
}

#[wasm_bindgen_test(unsupported = test)]
fn a_failed_fetch_keeps_the_last_good_keys_and_retries_with_backoff() {
    let store = MemoryStore::default();
    let mut one = worker(direct());
    one.poll(&store, T0);
    one.on_response(FetchStage::Jwks, Some((200, &jwks(&["a"]))), &store, T0);
    let mut now = at(80);
    let mut request = one.poll(&store, now).1.unwrap();
    type Failure<'a> = (Option<(u16, &'a [u8])>, u64);
    let failures: [Failure; 4] =
        [(None, 1), (Some((503, b"down")), 2), (Some((200, b"<html>")), 4), (Some((200, br#"{"keys":[]}"#)), 8)];
    for (response, delay) in failures {
        assert!(matches!(one.on_response(request.stage, response, &store, now), FetchOutcome::Failed(_)));
        assert_eq!(kids(&one), ["a"], "the last good keys stay");
        assert_eq!(one.poll(&store, UnixSeconds(now.0 + delay - 1)).1, None);
        now = UnixSeconds(now.0 + delay);
        request = one.poll(&store, now).1.unwrap();
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn failures_are_named() {
    let store = MemoryStore::default();
    let mut one = worker(direct());
    let mut fail = |response: Option<(u16, &[u8])>| {
        let request = one.poll(&store, UnixSeconds(u64::MAX / 2)).1;
        let stage = request.map_or(FetchStage::Jwks, |r| r.stage);
        match one.on_response(stage, response, &store, T0) {
            FetchOutcome::Failed(failure) => failure,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(fail(None), FetchFailure::Transport);
    assert_eq!(fail(Some((404, b""))), FetchFailure::Status(404));
    let big = vec![b' '; MAX_DOCUMENT_BYTES + 1];
    assert_eq!(fail(Some((200, &big))), FetchFailure::TooLarge(MAX_DOCUMENT_BYTES + 1));
    let duplicate = jwks(&["a", "a"]);
    assert!(matches!(fail(Some((200, &duplicate))), FetchFailure::Jwks(why) if why.contains("repeats a kid")));
    let unusable = br#"{"keys":[{"kty":"oct","k":"c2VjcmV0"},{"kty":"RSA","n":"AQAB","e":"AQAB"}]}"#;
    assert!(matches!(fail(Some((200, unusable))), FetchFailure::Jwks(why) if why.contains("none of its 2")));
}

#[wasm_bindgen_test(unsupported = test)]
fn unusable_keys_in_a_fetched_set_are_skipped_and_counted() {
    let store = MemoryStore::default();
    let mut one = worker(direct());
    one.poll(&store, T0);
    let mut set: Value = serde_json::from_slice(&jwks(&["a"])).unwrap();
    set["keys"].as_array_mut().unwrap().push(json!({"kty": "oct", "k": "c2VjcmV0"}));
    let outcome = one.on_response(FetchStage::Jwks, Some((200, set.to_string().as_bytes())), &store, T0);
    assert_eq!(outcome, FetchOutcome::Installed { keys: 1, skipped: SkippedKeys { count: 1, roca: Vec::new() } });
}

#[wasm_bindgen_test(unsupported = test)]
fn a_lost_callback_does_not_block_fetching_forever() {
    let store = MemoryStore::default();
    let mut one = worker(direct());
    assert!(one.poll(&store, T0).1.is_some());
    assert!(one.poll(&store, at(5)).1.is_none(), "within the timeout");
    assert!(one.poll(&store, at(20)).1.is_some(), "after the timeout and the lease");
}

#[wasm_bindgen_test(unsupported = test)]
fn an_unknown_kid_refetches_at_most_once_per_interval() {
    let store = MemoryStore::default();
    let mut one = worker(direct());
    one.poll(&store, T0);
    one.on_response(FetchStage::Jwks, Some((200, &jwks(&["a"]))), &store, T0);
    assert_eq!(one.unknown_kid(&store, at(10)), KidRefetch::NotNow, "keys are younger than the interval");
    let KidRefetch::Fetch(request) = one.unknown_kid(&store, at(30)) else { panic!("refetch expected") };
    assert_eq!(request.stage, FetchStage::Jwks);
    assert_eq!(one.unknown_kid(&store, at(31)), KidRefetch::NotNow, "in flight");
    one.on_response(FetchStage::Jwks, None, &store, at(31));
    assert_eq!(one.unknown_kid(&store, at(40)), KidRefetch::NotNow, "a failed refetch counts too");
    assert!(matches!(one.unknown_kid(&store, at(61)), KidRefetch::Fetch(_)));
    one.on_response(FetchStage::Jwks, Some((200, &jwks(&["a", "b"]))), &store, at(61));
    assert_eq!(kids(&one), ["a", "b"]);

    // A worker that has not seen the new keys adopts them instead of fetching.
    let mut two = worker(direct());
    assert_eq!(two.unknown_kid(&store, at(62)), KidRefetch::Synced);
    assert_eq!(kids(&two), ["a", "b"]);
}

#[wasm_bindgen_test(unsupported = test)]
fn discovery_finds_the_jwks_then_fetches_it() {
    let store = MemoryStore::default();
    let mut one = worker(discovered());
    let request = one.poll(&store, T0).1.unwrap();
    assert_eq!(request.stage, FetchStage::Discovery);
    assert_eq!(request.target.path, "/.well-known/openid-configuration");
    let document = br#"{"issuer":"https://idp.test","jwks_uri":"https://idp.test/protocol/certs"}"#;
    let FetchOutcome::Next(next) = one.on_response(FetchStage::Discovery, Some((200, document)), &store, T0) else {
        panic!("the JWKS fetch should follow")
    };
    assert_eq!(
        (next.stage, next.target.path.as_str(), next.target.cluster.as_str()),
        (FetchStage::Jwks, "/protocol/certs", "idp")
    );
    assert_eq!(
        one.on_response(FetchStage::Jwks, Some((200, &jwks(&["a"]))), &store, T0),
        FetchOutcome::Installed { keys: 1, skipped: SkippedKeys::default() }
    );
    assert_eq!(kids(&one), ["a"]);
}

#[wasm_bindgen_test(unsupported = test)]
fn discovery_for_another_issuer_or_elsewhere_is_refused() {
    for document in [
        &br#"{"issuer":"https://evil.test","jwks_uri":"https://idp.test/certs"}"#[..],
        br#"{"issuer":"https://idp.test","jwks_uri":"https://evil.test/certs"}"#,
    ] {
        let store = MemoryStore::default();
        let mut one = worker(discovered());
        one.poll(&store, T0);
        let outcome = one.on_response(FetchStage::Discovery, Some((200, document)), &store, T0);
        assert!(matches!(outcome, FetchOutcome::Failed(FetchFailure::Discovery(_))), "{outcome:?}");
        assert!(one.keys().is_none());
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn a_record_from_another_worker_is_only_taken_when_newer() {
    let store = MemoryStore::default();
    let mut one = worker(direct());
    one.poll(&store, T0);
    one.on_response(FetchStage::Jwks, Some((200, &jwks(&["b"]))), &store, at(5));
    store
        .set(
            &one.record_key(),
            format!("{}\n", T0.0).as_bytes().iter().chain(jwks(&["a"]).iter()).copied().collect::<Vec<_>>().as_slice(),
            None,
        )
        .unwrap();
    assert!(!one.sync(&store), "an older record is ignored");
    assert_eq!(kids(&one), ["b"]);
}

#[wasm_bindgen_test(unsupported = test)]
fn a_request_without_keys_is_held_for_the_first_fetch_then_decided() {
    let store = MemoryStore::default();
    let mut fetcher = worker(direct());
    let mut other = worker(direct());
    let now_ms = T0.0 * 1000;
    // Nothing fetched yet anywhere: hold, with one deadline for the whole start-up window.
    let KeysWait::Hold { until_ms } = other.without_keys(&store, now_ms) else { panic!("not held") };
    assert!(until_ms > now_ms);
    assert_eq!(other.without_keys(&store, now_ms + 10), KeysWait::Hold { until_ms });
    // Another worker's keys are read from shared data at request time, before any tick.
    let (_, request) = fetcher.poll(&store, T0);
    fetcher.on_response(request.unwrap().stage, Some((200, &jwks(&["a"]))), &store, T0);
    assert_eq!(other.without_keys(&store, now_ms + 20), KeysWait::Synced);
    assert_eq!(kids(&other), ["a"]);
}

#[wasm_bindgen_test(unsupported = test)]
fn the_wait_ends_at_its_deadline_and_a_failed_fetch_refuses_at_once() {
    let store = MemoryStore::default();
    let mut other = worker(direct());
    let now_ms = T0.0 * 1000;
    let KeysWait::Hold { until_ms } = other.without_keys(&store, now_ms) else { panic!("not held") };
    assert_eq!(other.without_keys(&store, until_ms), KeysWait::Refuse);
    // A later request does not open a new window: the JWKS is down, callers learn it at once.
    assert_eq!(other.without_keys(&store, until_ms + 60_000), KeysWait::Refuse);

    let mut fetcher = worker(direct());
    let (_, request) = fetcher.poll(&MemoryStore::default(), T0);
    fetcher.on_response(request.unwrap().stage, Some((503, b"down")), &MemoryStore::default(), T0);
    assert_eq!(fetcher.without_keys(&MemoryStore::default(), now_ms), KeysWait::Refuse);
}

fn remote_at(cluster: &str, uri: &str, cache_duration_seconds: u64) -> RemoteSource {
    let json: RemoteJwksJson = serde_json::from_value(json!({
        "cluster": cluster, "uri": uri, "cache_duration_seconds": cache_duration_seconds,
    }))
    .unwrap();
    RemoteSource::from_remote(&json, "p").unwrap()
}

fn discovery_with(jwks_clusters: Value) -> RemoteSource {
    let json: OidcDiscoveryJson =
        serde_json::from_value(json!({"cluster": "idp", "jwks_clusters": jwks_clusters})).unwrap();
    RemoteSource::from_discovery(&json, "https://idp.test", "p").unwrap()
}

#[wasm_bindgen_test(unsupported = test)]
fn shared_names_follow_the_issuer_and_key_source_not_the_provider_name_alone() {
    let name = |provider: &str, issuer: &str, source: RemoteSource| {
        let keys = RemoteKeys::new(ProviderId(0), provider, issuer, source, KeyUse::Signature);
        (keys.record_key(), keys.lease_key())
    };
    let base = name("main", "https://idp.test", remote_at("idp", "https://idp.test/jwks", 100));
    assert!(base.0.starts_with("zt-jwt.jwks.main."), "{}", base.0);
    assert!(base.1.starts_with("zt-jwt.jwks-lease.main."), "{}", base.1);
    assert_eq!(base.0.strip_prefix("zt-jwt.jwks."), base.1.strip_prefix("zt-jwt.jwks-lease."));
    // The same issuer at the same location: the same keys, one record (timings do not count).
    assert_eq!(base, name("main", "https://idp.test", remote_at("idp", "https://idp.test/jwks", 600)));
    for (what, other) in [
        ("issuer", name("main", "https://other.test", remote_at("idp", "https://idp.test/jwks", 100))),
        ("cluster", name("main", "https://idp.test", remote_at("idp2", "https://idp.test/jwks", 100))),
        ("authority", name("main", "https://idp.test", remote_at("idp", "https://idp2.test/jwks", 100))),
        ("path", name("main", "https://idp.test", remote_at("idp", "https://idp.test/jwks2", 100))),
        ("provider name", name("other", "https://idp.test", remote_at("idp", "https://idp.test/jwks", 100))),
        ("discovery instead", name("main", "https://idp.test", discovery_with(json!({})))),
    ] {
        assert_ne!(base.0, other.0, "a different {what} shares the record");
        assert_ne!(base.1, other.1, "a different {what} shares the lease");
    }
    let discovery = name("main", "https://idp.test", discovery_with(json!({})));
    assert_eq!(discovery, name("main", "https://idp.test", discovery_with(json!({}))));
    assert_ne!(discovery, name("main", "https://idp.test", discovery_with(json!({"keys.test": "idp_keys"}))));
    assert_ne!(
        name("main", "https://idp.test", discovery_with(json!({"keys.test": "idp_keys"}))),
        name("main", "https://idp.test", discovery_with(json!({"keys.test": "other_keys"}))),
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn a_provider_of_the_same_name_with_another_issuer_never_adopts_the_keys() {
    let store = MemoryStore::default();
    let mut ours = worker(direct());
    let mut theirs = RemoteKeys::new(ProviderId(0), "main", "https://other.test", direct(), KeyUse::Signature);
    let (_, fetch) = ours.poll(&store, T0);
    assert!(fetch.is_some());
    // While our fetch runs, our lease does not hold the other configuration back.
    let (_, fetch) = theirs.poll(&store, T0);
    assert!(fetch.is_some(), "its own fetch, not blocked by our lease");
    ours.on_response(FetchStage::Jwks, Some((200, &jwks(&["a"]))), &store, T0);
    // Nor does it see our record.
    assert!(!theirs.sync(&store));
    assert!(theirs.keys().is_none());
    theirs.on_response(FetchStage::Jwks, Some((200, &jwks(&["b"]))), &store, at(1));
    assert!(!ours.sync(&store));
    assert_eq!(kids(&ours), ["a"]);
    assert_eq!(kids(&theirs), ["b"]);
    // A second worker of our own configuration shares our record.
    let mut twin = worker(direct());
    assert!(twin.sync(&store));
    assert_eq!(kids(&twin), ["a"]);
}

/// A SPIFFE bundle endpoint's `spiffe_refresh_hint` schedules the next refresh inside the
/// configured bounds: at least 10 s, at most four fifths of `cache_duration_seconds`.
#[wasm_bindgen_test(unsupported = test)]
fn a_spiffe_bundles_refresh_hint_is_followed_within_the_configured_bounds() {
    let bundle = |hint: Value| {
        let key = public(include_str!("../../../testdata/A.3_ES256.jwk.json"), "a");
        let mut key = key;
        key["use"] = json!("jwt-svid");
        json!({"keys": [key], "spiffe_sequence": 1, "spiffe_refresh_hint": hint}).to_string().into_bytes()
    };
    // `direct()` keeps keys 100 s: refreshes after 80 s without a hint.
    for (hint, next) in [(json!(30), 30), (json!(1), 10), (json!(100_000), 80), (json!("30"), 80), (json!(-5), 80)] {
        let store = MemoryStore::default();
        let mut one = RemoteKeys::new(ProviderId(0), "svid", "spiffe://example.org", direct(), KeyUse::JwtSvid);
        one.poll(&store, T0).1.unwrap();
        let outcome = one.on_response(FetchStage::Jwks, Some((200, &bundle(hint.clone()))), &store, T0);
        assert!(matches!(outcome, FetchOutcome::Installed { keys: 1, .. }), "{outcome:?}");
        assert_eq!(one.poll(&store, at(next - 1)).1, None, "hint {hint}: not before {next} s");
        assert!(one.poll(&store, at(next)).1.is_some(), "hint {hint}: refresh at {next} s");
        // A worker adopting the published bundle schedules the same refresh.
        let mut two = RemoteKeys::new(ProviderId(0), "svid", "spiffe://example.org", direct(), KeyUse::JwtSvid);
        assert!(two.sync(&store));
        assert_eq!(two.next_fetch(), at(next), "hint {hint}");
    }
}
