//! End-to-end tests of the JWT pipeline: configuration, real signatures, and the RFC vectors.
//! Keys are the RFC 7515 / RFC 8037 example keys (fixed, fast, also under Wasm); tokens are
//! minted here at a fixed time, so none is committed and none expires.

use std::sync::OnceLock;

use jwt_simple::prelude::*;
use serde_json::{Map, Value, json};
use wasm_bindgen_test::wasm_bindgen_test;

use super::test_host::NativeHost;
use super::*;
use crate::time::UnixSeconds;

const NOW: UnixSeconds = UnixSeconds(1_700_000_000);
const ISS: &str = "https://issuer.test";

struct Signers {
    rsa: RS256KeyPair,
    pss: PS256KeyPair,
    ec: ES256KeyPair,
    ed: Ed25519KeyPair,
}

fn signers() -> &'static Signers {
    static SIGNERS: OnceLock<Signers> = OnceLock::new();
    SIGNERS.get_or_init(|| Signers {
        rsa: RS256KeyPair::from_jwk(include_str!("../../testdata/A.2_RS256.jwk.json")).unwrap().with_key_id("rsa"),
        pss: PS256KeyPair::from_jwk(include_str!("../../testdata/A.2_RS256.jwk.json")).unwrap().with_key_id("rsa"),
        ec: ES256KeyPair::from_jwk(include_str!("../../testdata/A.3_ES256.jwk.json")).unwrap().with_key_id("ec"),
        ed: Ed25519KeyPair::from_jwk(include_str!("../../testdata/A.1_Ed25519_private.jwk.json"))
            .unwrap()
            .with_key_id("ed"),
    })
}

/// The public half of a private test JWK, with a `kid`.
fn public_jwk(private: &str, kid: &str) -> Value {
    let mut jwk: Value = serde_json::from_str(private).unwrap();
    let object = jwk.as_object_mut().unwrap();
    for member in ["d", "p", "q", "dp", "dq", "qi"] {
        object.remove(member);
    }
    object.insert("kid".into(), json!(kid));
    jwk
}

fn all_public_jwks() -> Value {
    json!({"keys": [
        public_jwk(include_str!("../../testdata/A.2_RS256.jwk.json"), "rsa"),
        public_jwk(include_str!("../../testdata/A.3_ES256.jwk.json"), "ec"),
        public_jwk(include_str!("../../testdata/A.1_Ed25519_private.jwk.json"), "ed"),
    ]})
}

fn config_json(jwks: Value) -> Value {
    json!({"realm": "test", "providers": [{"name": "main", "issuer": ISS, "audiences": ["api"], "jwks": {"inline": jwks}}]})
}

/// The same configuration behind both verifiers; every call runs both and asserts that they
/// agree, so the whole corpus below proves "accepted by one, accepted by the other".
struct Both {
    in_module: Authenticator,
    host: Authenticator,
}

impl Both {
    fn verify(&self, token: &str, now: UnixSeconds) -> Result<Identity, JwtError> {
        let in_module = self.in_module.verify(token, now);
        let host = self.host.verify(token, now);
        assert_eq!(in_module, host, "the two verifiers disagree");
        in_module
    }

    fn authenticate(&self, headers: &[(&str, &str)], now: UnixSeconds) -> Result<Authenticated, JwtError> {
        let headers: Vec<(String, Vec<u8>)> =
            headers.iter().map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())).collect();
        let in_module = self.in_module.authenticate(&headers, now);
        let host = self.host.authenticate(&headers, now);
        assert_eq!(in_module.as_ref().map(|a| &a.token), host.as_ref().map(|a| &a.token), "the two verifiers disagree");
        in_module
    }
}

fn authenticator(config: Value) -> Both {
    let parse = || JwtFilterConfig::from_json(config.to_string().as_bytes()).unwrap();
    Both {
        in_module: Authenticator::new(parse(), Box::new(InModuleVerifier)),
        host: Authenticator::new(parse(), Box::new(HostVerifier::new(NativeHost::default()))),
    }
}

fn default_authenticator() -> Both {
    authenticator(config_json(all_public_jwks()))
}

/// The test keys with PSS allowed too: an RSA key without `alg` serves RS256 and PS256 alike.
fn every_algorithm_config() -> Value {
    let mut config = config_json(all_public_jwks());
    config["providers"][0]["algorithms"] = json!(["RS256", "PS256", "ES256", "EdDSA"]);
    config
}

fn claims(extra: Value) -> JWTClaims<Map<String, Value>> {
    let Value::Object(custom) = extra else { panic!("extra claims must be an object") };
    let mut claims = Claims::with_custom_claims(custom, Duration::from_secs(300))
        .with_issuer(ISS)
        .with_audience("api")
        .with_subject("alice");
    claims.issued_at = Some(UnixTimeStamp::from_secs(NOW.0));
    claims.expires_at = Some(UnixTimeStamp::from_secs(NOW.0 + 300));
    claims.invalid_before = None;
    claims
}

fn rs256(claims: JWTClaims<Map<String, Value>>) -> String {
    signers().rsa.sign(claims).unwrap()
}

fn ps256(claims: JWTClaims<Map<String, Value>>) -> String {
    signers().pss.sign(claims).unwrap()
}

fn es256(claims: JWTClaims<Map<String, Value>>) -> String {
    signers().ec.sign(claims).unwrap()
}

fn eddsa(claims: JWTClaims<Map<String, Value>>) -> String {
    signers().ed.sign(claims).unwrap()
}

#[wasm_bindgen_test(unsupported = test)]
fn accepts_rs256_ps256_es256_and_eddsa() {
    let auth = authenticator(every_algorithm_config());
    for token in
        [rs256(claims(json!({}))), ps256(claims(json!({}))), es256(claims(json!({}))), eddsa(claims(json!({})))]
    {
        let identity = auth.verify(&token, NOW).unwrap();
        assert_eq!(identity.provider, "main");
        assert_eq!(identity.iss, ISS);
        assert_eq!(identity.sub.as_deref(), Some("alice"));
        assert_eq!(identity.aud, ["api"]);
        assert_eq!(identity.exp, Some(NOW.0 + 300));
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn authenticates_from_the_authorization_header() {
    let auth = default_authenticator();
    let header = format!("Bearer {}", es256(claims(json!({"scope": "read write"}))));
    let identity = auth.authenticate(&[("authorization", &header)], NOW).unwrap().token.identity.clone();
    assert_eq!(identity.scopes, ["read", "write"]);
    assert_eq!(auth.authenticate(&[], NOW).unwrap_err(), JwtError::Missing);
    let basic = [("authorization", "Basic dXNlcjpwYXNz")];
    assert_eq!(auth.authenticate(&basic, NOW).unwrap_err(), JwtError::TokenFormat);
}

#[wasm_bindgen_test(unsupported = test)]
fn refuses_a_tampered_token() {
    let auth = authenticator(every_algorithm_config());
    for token in
        [rs256(claims(json!({}))), ps256(claims(json!({}))), es256(claims(json!({}))), eddsa(claims(json!({})))]
    {
        // Same header and signature, claims from another token granting more.
        let other = rs256(claims(json!({"scope": "admin"})));
        let forged_payload = other.split('.').nth(1).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert_eq!(auth.verify(&forged, NOW).unwrap_err(), JwtError::SignatureInvalid);
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn refuses_a_token_signed_by_an_unconfigured_key_with_a_known_kid() {
    let attacker = ES256KeyPair::generate().with_key_id("ec");
    let token = attacker.sign(claims(json!({}))).unwrap();
    assert_eq!(default_authenticator().verify(&token, NOW).unwrap_err(), JwtError::SignatureInvalid);
}

#[wasm_bindgen_test(unsupported = test)]
fn selects_keys_by_kid_and_algorithm() {
    let auth = default_authenticator();
    let unknown_kid =
        ES256KeyPair::from_jwk(include_str!("../../testdata/A.3_ES256.jwk.json")).unwrap().with_key_id("nope");
    assert_eq!(
        auth.verify(&unknown_kid.sign(claims(json!({}))).unwrap(), NOW).unwrap_err(),
        JwtError::NoMatchingKey { provider: ProviderId(0) }
    );
    // An ES256 token naming the RSA key's kid: the key cannot do ES256.
    let wrong_family =
        ES256KeyPair::from_jwk(include_str!("../../testdata/A.3_ES256.jwk.json")).unwrap().with_key_id("rsa");
    assert_eq!(
        auth.verify(&wrong_family.sign(claims(json!({}))).unwrap(), NOW).unwrap_err(),
        JwtError::NoMatchingKey { provider: ProviderId(0) }
    );
    // Without a kid every key of the right family is tried.
    let no_kid = ES256KeyPair::from_jwk(include_str!("../../testdata/A.3_ES256.jwk.json")).unwrap();
    assert!(auth.verify(&no_kid.sign(claims(json!({}))).unwrap(), NOW).is_ok());
}

#[wasm_bindgen_test(unsupported = test)]
fn a_declared_alg_narrows_an_rsa_key() {
    let mut jwk = public_jwk(include_str!("../../testdata/A.2_RS256.jwk.json"), "rsa");
    jwk["alg"] = json!("RS384");
    let auth = authenticator(config_json(json!({"keys": [jwk.clone()]})));
    assert_eq!(auth.verify(&rs256(claims(json!({}))), NOW).unwrap_err(), JwtError::AlgorithmNotAllowed);
    // A key declared RS256 never verifies the same key's PSS signature, and the reverse.
    jwk["alg"] = json!("RS256");
    let auth = authenticator(config_json(json!({"keys": [jwk.clone()]})));
    assert!(auth.verify(&rs256(claims(json!({}))), NOW).is_ok());
    assert_eq!(auth.verify(&ps256(claims(json!({}))), NOW).unwrap_err(), JwtError::AlgorithmNotAllowed);
    jwk["alg"] = json!("PS256");
    let auth = authenticator(config_json(json!({"keys": [jwk]})));
    assert!(auth.verify(&ps256(claims(json!({}))), NOW).is_ok());
    assert_eq!(auth.verify(&rs256(claims(json!({}))), NOW).unwrap_err(), JwtError::AlgorithmNotAllowed);
}

/// Counts the signatures it is asked to check; answers as the in-module verifier does.
struct Counting(std::rc::Rc<std::cell::Cell<usize>>);

impl SignatureVerifier for Counting {
    fn verify(&self, token: &ParsedToken<'_>, key: &VerifyingKey, now: UnixSeconds) -> bool {
        self.0.set(self.0.get() + 1);
        InModuleVerifier.verify(token, key, now)
    }
    fn name(&self) -> &'static str {
        "counting"
    }
}

fn counting(config: Value) -> (Authenticator, std::rc::Rc<std::cell::Cell<usize>>) {
    let calls = std::rc::Rc::new(std::cell::Cell::new(0));
    let config = JwtFilterConfig::from_json(config.to_string().as_bytes()).unwrap();
    (Authenticator::new(config, Box::new(Counting(calls.clone()))), calls)
}

/// Without `algorithms`, an RSA key without `alg` verifies RS* only: a PS256 token is refused
/// before a single signature check, so no client can make the module run PSS for it.
#[wasm_bindgen_test(unsupported = test)]
fn by_default_keys_allow_only_what_they_declare_or_their_conservative_family() {
    let (auth, calls) = counting(config_json(all_public_jwks()));
    assert_eq!(auth.verify(&ps256(claims(json!({}))), NOW).unwrap_err(), JwtError::AlgorithmNotAllowed);
    assert_eq!(calls.get(), 0, "no signature work for a refused algorithm");
    for token in [rs256(claims(json!({}))), es256(claims(json!({}))), eddsa(claims(json!({})))] {
        assert!(auth.verify(&token, NOW).is_ok());
    }
    // RS384 and RS512 belong to the RSA family too; ES384 needs a P-384 key the set lacks.
    let rs384 = RS384KeyPair::from_jwk(include_str!("../../testdata/A.2_RS256.jwk.json")).unwrap().with_key_id("rsa");
    assert!(auth.verify(&rs384.sign(claims(json!({}))).unwrap(), NOW).is_ok());
    let es384 = ES384KeyPair::generate().with_key_id("ec");
    assert_eq!(auth.verify(&es384.sign(claims(json!({}))).unwrap(), NOW).unwrap_err(), JwtError::AlgorithmNotAllowed);
    // An EC-only provider refuses RS256 outright, with or without a known kid...
    let (ec_only, calls) = counting(config_json(json!({"keys": [
        public_jwk(include_str!("../../testdata/A.3_ES256.jwk.json"), "ec")]})));
    let rsa_no_kid = RS256KeyPair::from_jwk(include_str!("../../testdata/A.2_RS256.jwk.json")).unwrap();
    assert_eq!(
        ec_only.verify(&rsa_no_kid.sign(claims(json!({}))).unwrap(), NOW).unwrap_err(),
        JwtError::AlgorithmNotAllowed
    );
    let rsa_ec_kid = rsa_no_kid.clone().with_key_id("ec");
    assert_eq!(
        ec_only.verify(&rsa_ec_kid.sign(claims(json!({}))).unwrap(), NOW).unwrap_err(),
        JwtError::AlgorithmNotAllowed
    );
    // ...but a kid it has never seen stays `NoMatchingKey`: rotated remote keys may bring it.
    assert_eq!(
        ec_only.verify(&rs256(claims(json!({}))), NOW).unwrap_err(),
        JwtError::NoMatchingKey { provider: ProviderId(0) }
    );
    assert_eq!(calls.get(), 0);
    // A JWK that declares PS256 allows PS256 by itself.
    let mut pss_jwk = public_jwk(include_str!("../../testdata/A.2_RS256.jwk.json"), "rsa");
    pss_jwk["alg"] = json!("PS256");
    let auth = authenticator(config_json(json!({"keys": [pss_jwk]})));
    assert!(auth.verify(&ps256(claims(json!({}))), NOW).is_ok());
}

#[wasm_bindgen_test(unsupported = test)]
fn an_algorithms_list_replaces_what_the_keys_declare() {
    let mut config = config_json(all_public_jwks());
    config["providers"][0]["algorithms"] = json!(["ES256"]);
    let (auth, calls) = counting(config.clone());
    for token in [rs256(claims(json!({}))), ps256(claims(json!({}))), eddsa(claims(json!({})))] {
        assert_eq!(auth.verify(&token, NOW).unwrap_err(), JwtError::AlgorithmNotAllowed);
    }
    // Refused before the claims, too: an expired RS256 token is still `algorithm_not_allowed`.
    assert_eq!(
        auth.verify(&rs256(claims(json!({}))), UnixSeconds(NOW.0 + 9999)).unwrap_err(),
        JwtError::AlgorithmNotAllowed
    );
    assert_eq!(calls.get(), 0);
    assert!(auth.verify(&es256(claims(json!({}))), NOW).is_ok());
    // PS256 only: the RSA key without `alg` now verifies PSS and no longer PKCS#1.
    config["providers"][0]["algorithms"] = json!(["PS256"]);
    let auth = authenticator(config.clone());
    assert!(auth.verify(&ps256(claims(json!({}))), NOW).is_ok());
    assert_eq!(auth.verify(&rs256(claims(json!({}))), NOW).unwrap_err(), JwtError::AlgorithmNotAllowed);
    // A key's own `alg` still narrows it within the list.
    let mut rs_jwk = public_jwk(include_str!("../../testdata/A.2_RS256.jwk.json"), "rsa");
    rs_jwk["alg"] = json!("RS256");
    config["providers"][0]["jwks"] = json!({"inline": {"keys": [rs_jwk]}});
    config["providers"][0]["algorithms"] = json!(["RS256", "PS256"]);
    let auth = authenticator(config);
    assert!(auth.verify(&rs256(claims(json!({}))), NOW).is_ok());
    assert_eq!(
        auth.verify(&ps256(claims(json!({}))), NOW).unwrap_err(),
        JwtError::NoMatchingKey { provider: ProviderId(0) }
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn algorithms_apply_to_fetched_keys_too() {
    let set = json!({"keys": [public_jwk(include_str!("../../testdata/A.2_RS256.jwk.json"), "rsa")]}).to_string();
    for (algorithms, ps_result) in [(None, Err(JwtError::AlgorithmNotAllowed)), (Some(json!(["PS256"])), Ok("main"))] {
        let mut config = json!({"providers": [{"name": "main", "issuer": ISS, "audiences": ["api"],
            "jwks": {"remote": {"cluster": "idp", "uri": "https://idp.test/jwks"}}}]});
        if let Some(list) = algorithms {
            config["providers"][0]["algorithms"] = list;
        }
        let auth = Authenticator::new(
            JwtFilterConfig::from_json(config.to_string().as_bytes()).unwrap(),
            Box::new(InModuleVerifier),
        );
        let store = crate::shared_store::MemoryStore::default();
        let request = auth.poll_remote_keys(&store, NOW).remove(0);
        auth.remote_keys_response(&request, Some((200, set.as_bytes())), &store, NOW);
        let result = auth.verify(&ps256(claims(json!({}))), NOW);
        assert_eq!(result.as_ref().map(|id| id.provider.as_str()).map_err(Clone::clone), ps_result);
    }
}

/// crocs-muni/roca's positive test sample `mod03`: a 2048-bit modulus with the fingerprint.
fn roca_modulus() -> Vec<u8> {
    let hex = include_str!("../../testdata/roca_mod03.hex").trim();
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

fn roca_jwk(kid: &str) -> Value {
    json!({"kty": "RSA", "kid": kid, "n": base64_url(&roca_modulus()), "e": "AQAB"})
}

/// A published ROCA-vulnerable modulus (crocs-muni/roca's test sample `mod03`) refuses the
/// configuration by the key's path; ordinary RSA keys (every other test) pass.
#[wasm_bindgen_test(unsupported = test)]
fn an_inline_rsa_key_with_the_roca_fingerprint_is_refused_by_path() {
    let mut keys = all_public_jwks();
    keys["keys"].as_array_mut().unwrap().push(roca_jwk("weak"));
    let err = JwtFilterConfig::from_json(config_json(keys).to_string().as_bytes()).err().unwrap();
    assert_eq!(err.path, "providers[0].jwks.inline.keys[3].n");
    assert!(err.to_string().contains("ROCA"), "{err}");
    // The same modulus is otherwise a key jwt-simple would import.
    let mut near = roca_modulus();
    *near.last_mut().unwrap() ^= 0x02;
    let mut ordinary = roca_jwk("near");
    ordinary["n"] = json!(base64_url(&near));
    assert!(JwtFilterConfig::from_json(config_json(json!({"keys": [ordinary]})).to_string().as_bytes()).is_ok());
}

#[wasm_bindgen_test(unsupported = test)]
fn a_fetched_roca_key_is_dropped_by_kid_and_a_set_of_only_such_keys_fails() {
    let store = crate::shared_store::MemoryStore::default();
    let auth = remote_authenticator();
    let request = auth.poll_remote_keys(&store, NOW).remove(0);
    let set = json!({"keys": [roca_jwk("weak"), public_jwk(include_str!("../../testdata/A.3_ES256.jwk.json"), "ec")]});
    let outcome = auth.remote_keys_response(&request, Some((200, set.to_string().as_bytes())), &store, NOW);
    assert_eq!(
        outcome,
        FetchOutcome::Installed { keys: 1, skipped: SkippedKeys { count: 1, roca: vec!["weak".into()] } }
    );
    assert!(auth.verify(&es256(claims(json!({}))), NOW).is_ok());
    let KidRefetch::Fetch(request) = auth.unknown_kid(ProviderId(0), &store, UnixSeconds(NOW.0 + 60)) else {
        panic!("refetch expected")
    };
    let only_weak = json!({"keys": [roca_jwk("weak"), roca_jwk("weak2")]}).to_string();
    let outcome =
        auth.remote_keys_response(&request, Some((200, only_weak.as_bytes())), &store, UnixSeconds(NOW.0 + 60));
    let FetchOutcome::Failed(FetchFailure::Jwks(why)) = outcome else { panic!("a failed fetch: {outcome:?}") };
    assert!(why.contains("ROCA") && why.contains("weak2"), "{why}");
    assert!(auth.verify(&es256(claims(json!({}))), NOW).is_ok(), "the last good keys stay");
}

#[wasm_bindgen_test(unsupported = test)]
fn a_key_of_one_provider_never_verifies_another_providers_token() {
    let other = ES256KeyPair::generate();
    let other_jwk: Value = serde_json::from_str(&other.public_key().with_key_id("other").to_jwk()).unwrap();
    let config = json!({"providers": [
        {"name": "a", "issuer": ISS, "audiences": ["api"], "jwks": {"inline": all_public_jwks()}},
        {"name": "b", "issuer": "https://b.test", "audiences": ["api"], "jwks": {"inline": {"keys": [other_jwk]}}},
    ]});
    let auth = authenticator(config);
    // Claims say provider b, signature is provider a's EC key (no kid, so every b key is tried).
    let signer = ES256KeyPair::from_jwk(include_str!("../../testdata/A.3_ES256.jwk.json")).unwrap();
    let token = signer.sign(claims(json!({})).with_issuer("https://b.test")).unwrap();
    assert_eq!(auth.verify(&token, NOW).unwrap_err(), JwtError::SignatureInvalid);
    // And b's own key is accepted, reported as provider b.
    let token = other.with_key_id("other").sign(claims(json!({})).with_issuer("https://b.test")).unwrap();
    assert_eq!(auth.verify(&token, NOW).unwrap().provider, "b");
}

#[wasm_bindgen_test(unsupported = test)]
fn applies_claim_rules_to_signed_tokens() {
    let auth = default_authenticator();
    let mut expired = claims(json!({}));
    expired.expires_at = Some(UnixTimeStamp::from_secs(NOW.0 - 61));
    expired.issued_at = Some(UnixTimeStamp::from_secs(NOW.0 - 400));
    assert_eq!(auth.verify(&es256(expired), NOW).unwrap_err(), JwtError::Expired { exp: NOW.0 - 61, now: NOW });
    let mut no_exp = claims(json!({}));
    no_exp.expires_at = None;
    assert_eq!(auth.verify(&es256(no_exp), NOW).unwrap_err(), JwtError::ExpirationMissing);
    let wrong_aud = claims(json!({})).with_audience("other");
    assert_eq!(auth.verify(&es256(wrong_aud), NOW).unwrap_err(), JwtError::AudienceMismatch);
    let unknown_iss = claims(json!({})).with_issuer("https://issuer.test/");
    assert_eq!(auth.verify(&es256(unknown_iss), NOW).unwrap_err(), JwtError::UnknownIssuer);
}

#[wasm_bindgen_test(unsupported = test)]
fn refuses_the_unsecured_rfc_example() {
    let token = include_str!("../../testdata/A.5_unsecured_none.jws").trim();
    assert_eq!(default_authenticator().verify(token, NOW).unwrap_err(), JwtError::UnsupportedAlgorithm);
    let (head, _) = token.rsplit_once('.').unwrap();
    let with_signature = format!("{head}.c2ln");
    assert_eq!(default_authenticator().verify(&with_signature, NOW).unwrap_err(), JwtError::UnsupportedAlgorithm);
}

/// RFC 7515 A.2 (RS256) and A.3 (ES256) verify at the signature layer at their own time.
#[wasm_bindgen_test(unsupported = test)]
fn verifies_the_rfc_7515_examples() {
    let rfc_time = UnixSeconds(1_300_819_000);
    for (jws, jwk) in [
        (include_str!("../../testdata/A.2_RS256.jws"), include_str!("../../testdata/A.2_RS256.jwk.json")),
        (include_str!("../../testdata/A.3_ES256.jws"), include_str!("../../testdata/A.3_ES256.jwk.json")),
    ] {
        let keys = KeySet::from_jwks(&json!({"keys": [public_jwk(jwk, "k")]}), KeyUse::Signature, "jwks").unwrap();
        let token = ParsedToken::parse(jws.trim(), 8192).unwrap();
        let key = keys.candidates(None, token.alg, None).next().unwrap();
        let host = HostVerifier::new(NativeHost::default());
        assert!(InModuleVerifier.verify(&token, key, rfc_time), "{}", token.alg);
        assert!(host.verify(&token, key, rfc_time), "{}", token.alg);
        let mut flipped = token.clone();
        let tampered = jws.trim().replacen("eyJpc3MiOiJqb2UiLA0K", "eyJpc3MiOiJqb2UiLA0l", 1);
        flipped.compact = &tampered;
        flipped.signing_input = &tampered[..token.signing_input.len()];
        assert!(!InModuleVerifier.verify(&flipped, key, rfc_time), "{}", token.alg);
        assert!(!host.verify(&flipped, key, rfc_time), "{}", token.alg);
    }
}

/// RFC 8037 A.4 signs prose, not claims: its key imports, and the token is refused as a JWT.
#[wasm_bindgen_test(unsupported = test)]
fn the_rfc_8037_example_is_not_a_jwt() {
    let public = include_str!("../../testdata/A.2_Ed25519_public.jwk.json");
    let keys = KeySet::from_jwks(
        &json!({"keys": [serde_json::from_str::<Value>(public).unwrap()]}),
        KeyUse::Signature,
        "jwks",
    )
    .unwrap();
    assert_eq!(keys.len(), 1);
    let jws = include_str!("../../testdata/A.4_EdDSA.jws").trim();
    assert_eq!(ParsedToken::parse(jws, 8192).unwrap_err(), JwtError::Malformed("payload is not a JSON object"));
}

#[wasm_bindgen_test(unsupported = test)]
fn configuration_errors_name_the_field() {
    let provider = |overrides: Value| {
        let mut p = json!({"name": "p", "issuer": ISS, "audiences": ["api"], "jwks": {"inline": all_public_jwks()}});
        for (k, v) in overrides.as_object().unwrap() {
            p[k] = v.clone();
        }
        p
    };
    let mut ec_private: Value = serde_json::from_str(include_str!("../../testdata/A.3_ES256.jwk.json")).unwrap();
    ec_private["kid"] = json!("ec");
    let small_rsa = json!({"kty": "RSA", "n": base64_url(&[0xc5; 128]), "e": "AQAB"});
    let rsa = public_jwk(include_str!("../../testdata/A.2_RS256.jwk.json"), "same");
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"providers": []}), "providers", "must not be empty"),
        (json!({"providers": [provider(json!({"algorithms": []}))]}), "providers[0].algorithms", "must not be empty"),
        (
            json!({"providers": [provider(json!({"algorithms": ["RS256", "rs512"]}))]}),
            "providers[0].algorithms[1]",
            "`rs512` is not a supported algorithm",
        ),
        (
            json!({"providers": [provider(json!({"algorithms": ["none"]}))]}),
            "providers[0].algorithms[0]",
            "not a supported algorithm",
        ),
        (
            json!({"providers": [provider(json!({"algorithms": ["ES256", "ES256"]}))]}),
            "providers[0].algorithms[1]",
            "twice",
        ),
        (json!({}), "(root)", "missing field `providers`"),
        (json!({"providers": [provider(json!({}))], "extra": 1}), "extra", "unknown field `extra`"),
        (json!({"realm": "a\"b", "providers": [provider(json!({}))]}), "realm", "printable ASCII"),
        (json!({"providers": [provider(json!({"audiences": []}))]}), "providers[0].audiences", "must not be empty"),
        (json!({"providers": [provider(json!({"audiences": "api"}))]}), "providers[0].audiences", "invalid type"),
        (json!({"providers": [provider(json!({"issuer": ""}))]}), "providers[0].issuer", "must not be empty"),
        (
            json!({"providers": [provider(json!({"clock_skew_seconds": 3600}))]}),
            "providers[0].clock_skew_seconds",
            "at most 300",
        ),
        (
            json!({"providers": [provider(json!({"jwks": {"fetched": {}}}))]}),
            "providers[0].jwks",
            "unknown variant `fetched`",
        ),
        (
            json!({"providers": [provider(json!({"jwks": {"remote": {}}}))]}),
            "providers[0].jwks.remote",
            "missing field `cluster`",
        ),
        (
            json!({"providers": [provider(json!({"jwks": {"remote": {"cluster": "idp", "uri": "idp/keys"}}}))]}),
            "providers[0].jwks.remote.uri",
            "https://",
        ),
        (
            json!({"providers": [provider(json!({"jwks": {"remote": {"cluster": "idp", "uri": "https://idp/k", "timeout_ms": 0}}}))]}),
            "providers[0].jwks.remote.timeout_ms",
            "between 100 and 60000",
        ),
        (
            json!({"providers": [provider(json!({"issuer": "idp", "jwks": {"oidc_discovery": {"cluster": "idp"}}}))]}),
            "providers[0].jwks.oidc_discovery",
            "issuer that is an http(s) URL",
        ),
        (
            json!({"providers": [provider(json!({})), provider(json!({"name": "q"}))]}),
            "providers[1].issuer",
            "duplicates providers[0].issuer",
        ),
        (
            json!({"providers": [provider(json!({"jwks": {"inline": {"keys": []}}}))]}),
            "providers[0].jwks.inline.keys",
            "at least one key",
        ),
        (
            json!({"providers": [provider(json!({"jwks": {"inline": {"keys": [ec_private]}}}))]}),
            "providers[0].jwks.inline.keys[0]",
            "invalid key",
        ),
        (
            json!({"providers": [provider(json!({"jwks": {"inline": {"keys": [small_rsa]}}}))]}),
            "providers[0].jwks.inline.keys[0]",
            "invalid key",
        ),
        (
            json!({"providers": [provider(json!({"jwks": {"inline": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}}))]}),
            "providers[0].jwks.inline.keys[0].kty",
            "symmetric",
        ),
        (
            json!({"providers": [provider(json!({"jwks": {"inline": {"keys": [rsa.clone(), rsa]}}}))]}),
            "providers[0].jwks.inline.keys[1].kid",
            "duplicates",
        ),
        (
            json!({"providers": [provider(json!({"jwks": {"inline": "{not json"}}))]}),
            "providers[0].jwks.inline",
            "not a JSON JWKS",
        ),
        (
            json!({"providers": [provider(json!({"token_sources": []}))]}),
            "providers[0].token_sources",
            "must not be empty",
        ),
        (
            json!({"providers": [provider(json!({"token_sources": [{"query": {"name": ""}}]}))]}),
            "providers[0].token_sources[0]",
            "needs a name",
        ),
        (
            json!({"providers": [provider(json!({"token_sources": [{"body": {"name": "t"}}]}))]}),
            "providers[0].token_sources[0]",
            "unknown variant `body`",
        ),
    ];
    for (config, path, message) in cases {
        let err = match JwtFilterConfig::from_json(config.to_string().as_bytes()) {
            Ok(_) => panic!("accepted: {config}"),
            Err(err) => err,
        };
        assert_eq!(err.path, path, "{config} -> {err}");
        assert!(err.message.contains(message), "{config} -> {err}");
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn a_jwks_may_be_given_as_a_string() {
    let auth = authenticator(config_json(json!(all_public_jwks().to_string())));
    assert!(auth.verify(&eddsa(claims(json!({}))), NOW).is_ok());
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[wasm_bindgen_test(unsupported = test)]
fn the_host_verifies_rsa_pkcs1_and_ecdsa_and_the_module_pss_and_eddsa() {
    let config = JwtFilterConfig::from_json(every_algorithm_config().to_string().as_bytes()).unwrap();
    let host = std::rc::Rc::new(NativeHost::default());
    struct Shared(std::rc::Rc<NativeHost>);
    impl HostCrypto for Shared {
        fn verify(&self, request: &HostVerifyRequest<'_>) -> HostVerdict {
            self.0.verify(request)
        }
    }
    let auth = Authenticator::new(config, Box::new(HostVerifier::new(Shared(host.clone()))));
    auth.verify(&rs256(claims(json!({}))), NOW).unwrap();
    auth.verify(&es256(claims(json!({}))), NOW).unwrap();
    assert_eq!(host.calls.get(), 2);
    auth.verify(&eddsa(claims(json!({}))), NOW).unwrap();
    auth.verify(&ps256(claims(json!({}))), NOW).unwrap();
    assert_eq!(host.calls.get(), 2);
}

/// CVE-2022-21449: r or s of zero or not below the group order never reach the host.
#[wasm_bindgen_test(unsupported = test)]
fn ecdsa_signatures_out_of_range_are_refused_before_the_host() {
    let token = es256(claims(json!({})));
    let (input, _) = token.rsplit_once('.').unwrap();
    let order = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
    let hex =
        |h: &str| (0..h.len()).step_by(2).map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap()).collect::<Vec<u8>>();
    let valid_half = hex("0000000000000000000000000000000000000000000000000000000000000001");
    for (r, s) in [
        (vec![0u8; 32], vec![0u8; 32]),
        (valid_half.clone(), vec![0u8; 32]),
        (hex(order), valid_half.clone()),
        (valid_half.clone(), vec![0xff; 32]),
    ] {
        let forged = format!("{input}.{}", base64_url(&[r, s].concat()));
        let parsed = ParsedToken::parse(&forged, 8192).unwrap();
        let keys = KeySet::from_jwks(&all_public_jwks(), KeyUse::Signature, "jwks").unwrap();
        let key = keys.candidates(Some("ec"), Algorithm::Es256, None).next().unwrap();
        assert_eq!(host_request(&parsed, key).map(|r| r.is_err()), Some(true));
        assert_eq!(default_authenticator().verify(&forged, NOW).unwrap_err(), JwtError::SignatureInvalid);
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn the_probe_detects_a_working_host() {
    struct Withheld;
    impl HostCrypto for Withheld {
        fn verify(&self, _: &HostVerifyRequest<'_>) -> HostVerdict {
            HostVerdict::Unavailable
        }
    }
    struct AlwaysYes;
    impl HostCrypto for AlwaysYes {
        fn verify(&self, _: &HostVerifyRequest<'_>) -> HostVerdict {
            HostVerdict::Valid
        }
    }
    assert!(host_crypto_works(&NativeHost::default()));
    assert!(!host_crypto_works(&Withheld));
    assert!(!host_crypto_works(&AlwaysYes));
}

#[wasm_bindgen_test(unsupported = test)]
fn a_repeated_token_is_served_from_the_cache_until_it_expires() {
    let auth = default_authenticator();
    let header = format!("Bearer {}", rs256(claims(json!({}))));
    let first = auth.authenticate(&[("authorization", &header)], NOW).unwrap();
    let second = auth.authenticate(&[("authorization", &header)], UnixSeconds(NOW.0 + 1)).unwrap();
    assert!(!first.cache_hit && second.cache_hit);
    assert_eq!(first.token, second.token);
    // exp is NOW + 300 and the skew 60: valid through NOW + 359, then verified again and refused.
    assert!(auth.authenticate(&[("authorization", &header)], UnixSeconds(NOW.0 + 359)).unwrap().cache_hit);
    let late = UnixSeconds(NOW.0 + 360);
    assert_eq!(
        auth.authenticate(&[("authorization", &header)], late).unwrap_err(),
        JwtError::Expired { exp: NOW.0 + 300, now: late }
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn a_refused_token_is_never_cached() {
    let auth = default_authenticator();
    let token = rs256(claims(json!({})));
    let (input, _) = token.rsplit_once('.').unwrap();
    let forged = format!("Bearer {input}.{}", base64_url(&[7u8; 256]));
    for _ in 0..2 {
        assert_eq!(auth.authenticate(&[("authorization", &forged)], NOW).unwrap_err(), JwtError::SignatureInvalid);
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn a_token_counts_only_where_its_provider_takes_tokens() {
    let other = ES256KeyPair::generate();
    let other_jwk: Value = serde_json::from_str(&other.public_key().with_key_id("other").to_jwk()).unwrap();
    let config = json!({"providers": [
        {"name": "a", "issuer": ISS, "audiences": ["api"], "jwks": {"inline": all_public_jwks()}},
        {"name": "b", "issuer": "https://b.test", "audiences": ["api"], "jwks": {"inline": {"keys": [other_jwk]}},
         "token_sources": [{"cookie": {"name": "session"}}, {"query": {"name": "access_token"}}]},
    ]});
    let auth = authenticator(config);
    let a_token = es256(claims(json!({})));
    let b_token = other.with_key_id("other").sign(claims(json!({})).with_issuer("https://b.test")).unwrap();
    let cookie = format!("session={b_token}");
    assert_eq!(auth.authenticate(&[("cookie", &cookie)], NOW).unwrap().token.identity.provider, "b");
    let query = format!("/x?access_token={b_token}");
    assert_eq!(auth.authenticate(&[(":path", &query)], NOW).unwrap().token.identity.provider, "b");
    // a's token in b's cookie, b's token in a's header: refused.
    let a_in_cookie = format!("session={a_token}");
    assert_eq!(auth.authenticate(&[("cookie", &a_in_cookie)], NOW).unwrap_err(), JwtError::TokenLocationNotAllowed);
    let b_in_header = format!("Bearer {b_token}");
    assert_eq!(
        auth.authenticate(&[("authorization", &b_in_header)], NOW).unwrap_err(),
        JwtError::TokenLocationNotAllowed
    );
    // Two different tokens on one request: refused, whichever would verify.
    let a_in_header = format!("Bearer {a_token}");
    assert_eq!(
        auth.authenticate(&[("authorization", &a_in_header), ("cookie", &cookie)], NOW).unwrap_err(),
        JwtError::MultipleTokens
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn a_provider_can_require_claim_values() {
    let mut config = config_json(all_public_jwks());
    config["providers"][0]["required_claims"] = json!({"email_verified": true, "groups": "staff"});
    let auth = authenticator(config);
    let good = es256(claims(json!({"email_verified": true, "groups": ["staff", "dev"]})));
    assert!(auth.verify(&good, NOW).is_ok());
    let unverified = es256(claims(json!({"email_verified": false, "groups": ["staff"]})));
    assert_eq!(auth.verify(&unverified, NOW).unwrap_err(), JwtError::RequiredClaimMismatch);
}

const HMAC_SECRET: &[u8; 32] = b"0123456789abcdef0123456789abcdef";

fn hmac_config() -> Value {
    let mut config = config_json(all_public_jwks());
    config["providers"][0]["hmac_keys"] = json!([{"kid": "shared", "alg": "HS256", "secret": base64_url(HMAC_SECRET)}]);
    config
}

#[wasm_bindgen_test(unsupported = test)]
fn hs256_verifies_only_with_the_providers_own_secret() {
    let auth = authenticator(hmac_config());
    let token = HS256Key::from_bytes(HMAC_SECRET).with_key_id("shared").authenticate(claims(json!({}))).unwrap();
    assert!(auth.verify(&token, NOW).is_ok());
    let wrong = HS256Key::from_bytes(&[7u8; 32]).with_key_id("shared").authenticate(claims(json!({}))).unwrap();
    assert_eq!(auth.verify(&wrong, NOW).unwrap_err(), JwtError::SignatureInvalid);
    // HS384 with the HS256 secret: no key of the provider allows that algorithm.
    let hs384 = HS384Key::from_bytes(HMAC_SECRET).with_key_id("shared").authenticate(claims(json!({}))).unwrap();
    assert_eq!(auth.verify(&hs384, NOW).unwrap_err(), JwtError::AlgorithmNotAllowed);
}

/// Algorithm confusion: an HS256 token "signed" with the RSA public key as the secret.
#[wasm_bindgen_test(unsupported = test)]
fn a_public_key_used_as_an_hmac_secret_never_verifies() {
    let public_der = signers().rsa.public_key().to_der().unwrap();
    let jwk_text = public_jwk(include_str!("../../testdata/A.2_RS256.jwk.json"), "rsa").to_string();
    for secret in [public_der, jwk_text.into_bytes()] {
        for kid in [Some("rsa"), None] {
            let mut key = HS256Key::from_bytes(&secret);
            if let Some(kid) = kid {
                key = key.with_key_id(kid);
            }
            let forged = key.authenticate(claims(json!({}))).unwrap();
            // Without HMAC keys the provider allows no HS256 at all.
            assert_eq!(default_authenticator().verify(&forged, NOW).unwrap_err(), JwtError::AlgorithmNotAllowed);
            // With one, only the configured secret is tried.
            let expected = if kid.is_some() {
                JwtError::NoMatchingKey { provider: ProviderId(0) }
            } else {
                JwtError::SignatureInvalid
            };
            assert_eq!(authenticator(hmac_config()).verify(&forged, NOW).unwrap_err(), expected);
        }
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn hmac_keys_are_validated_without_echoing_the_secret() {
    let with_key = |key: Value| {
        let mut config = config_json(all_public_jwks());
        config["providers"][0]["hmac_keys"] = json!([key]);
        JwtFilterConfig::from_json(config.to_string().as_bytes()).err().unwrap()
    };
    let short = base64_url(b"short-secret-0123456789");
    let err = with_key(json!({"alg": "HS256", "secret": short}));
    assert_eq!(err.path, "providers[0].hmac_keys[0].secret");
    assert!(err.message.contains("at least 32 bytes") && !err.to_string().contains(&short), "{err}");
    let err = with_key(json!({"alg": "HS512", "secret": base64_url(HMAC_SECRET)}));
    assert!(err.message.contains("at least 64 bytes"), "{err}");
    assert_eq!(
        with_key(json!({"alg": "RS256", "secret": base64_url(HMAC_SECRET)})).path,
        "providers[0].hmac_keys[0].alg"
    );
    assert_eq!(with_key(json!({"alg": "HS256", "secret": "not base64!"})).path, "providers[0].hmac_keys[0].secret");
    let err = with_key(json!({"kid": "ec", "alg": "HS256", "secret": base64_url(HMAC_SECRET)}));
    assert_eq!((err.path.as_str(), err.message.contains("duplicates")), ("providers[0].hmac_keys[0].kid", true));
    let debug = format!("{:?}", HmacKeyJson { kid: None, alg: "HS256".into(), secret: "s3cr3t".into() });
    assert!(!debug.contains("s3cr3t"));
    // A provider needs some key.
    let mut config = config_json(all_public_jwks());
    config["providers"][0].as_object_mut().unwrap().remove("jwks");
    let err = JwtFilterConfig::from_json(config.to_string().as_bytes()).err().unwrap();
    assert_eq!(err.path, "providers[0].jwks");
}

fn remote_authenticator() -> Authenticator {
    let config = json!({"providers": [{"name": "main", "issuer": ISS, "audiences": ["api"],
        "jwks": {"remote": {"cluster": "idp", "uri": "https://idp.test/jwks"}}}]});
    Authenticator::new(JwtFilterConfig::from_json(config.to_string().as_bytes()).unwrap(), Box::new(InModuleVerifier))
}

fn bearer(token: &str) -> Vec<(String, Vec<u8>)> {
    vec![("authorization".to_owned(), format!("Bearer {token}").into_bytes())]
}

#[wasm_bindgen_test(unsupported = test)]
fn remote_keys_fail_closed_until_fetched_then_verify() {
    let store = crate::shared_store::MemoryStore::default();
    let auth = remote_authenticator();
    assert!(auth.has_remote_keys());
    let token = es256(claims(json!({})));
    assert_eq!(auth.verify(&token, NOW).unwrap_err(), JwtError::KeysUnavailable { provider: ProviderId(0) });
    let requests = auth.poll_remote_keys(&store, NOW);
    assert_eq!(requests.len(), 1);
    let set = json!({"keys": [public_jwk(include_str!("../../testdata/A.3_ES256.jwk.json"), "ec")]}).to_string();
    let outcome = auth.remote_keys_response(&requests[0], Some((200, set.as_bytes())), &store, NOW);
    assert_eq!(outcome, FetchOutcome::Installed { keys: 1, skipped: SkippedKeys::default() });
    assert_eq!(auth.verify(&token, NOW).unwrap().provider, "main");
    // An RSA token names a kid the fetched set lacks: the adapter may refetch.
    assert_eq!(
        auth.verify(&rs256(claims(json!({}))), NOW).unwrap_err(),
        JwtError::NoMatchingKey { provider: ProviderId(0) }
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn a_rotation_that_drops_a_key_also_drops_the_tokens_it_verified() {
    let store = crate::shared_store::MemoryStore::default();
    let auth = remote_authenticator();
    let ec = json!({"keys": [public_jwk(include_str!("../../testdata/A.3_ES256.jwk.json"), "ec")]}).to_string();
    let rsa = json!({"keys": [public_jwk(include_str!("../../testdata/A.2_RS256.jwk.json"), "rsa")]}).to_string();
    let request = auth.poll_remote_keys(&store, NOW).remove(0);
    auth.remote_keys_response(&request, Some((200, ec.as_bytes())), &store, NOW);
    let headers = bearer(&es256(claims(json!({}))));
    assert!(!auth.authenticate(&headers, NOW).unwrap().cache_hit);
    assert!(auth.authenticate(&headers, NOW).unwrap().cache_hit);
    let KidRefetch::Fetch(request) = auth.unknown_kid(ProviderId(0), &store, UnixSeconds(NOW.0 + 60)) else {
        panic!("refetch expected")
    };
    auth.remote_keys_response(&request, Some((200, rsa.as_bytes())), &store, UnixSeconds(NOW.0 + 60));
    assert_eq!(auth.authenticate(&headers, NOW).unwrap_err(), JwtError::NoMatchingKey { provider: ProviderId(0) });
}

fn all_of_config(requirement: Value) -> Value {
    json!({"providers": [
        {"name": "user", "issuer": ISS, "audiences": ["api"], "jwks": {"inline": all_public_jwks()}},
        {"name": "mesh", "issuer": "https://mesh.test", "audiences": ["api"], "jwks": {"inline": all_public_jwks()},
         "token_sources": [{"header": {"name": "x-workload-token"}}]},
    ], "requirements": {"default": requirement}})
}

#[wasm_bindgen_test(unsupported = test)]
fn all_of_requires_a_valid_token_of_every_listed_provider() {
    let auth = authenticator(all_of_config(json!({"all_of": ["user", "mesh"]})));
    let user = format!("Bearer {}", es256(claims(json!({}))));
    let mesh = eddsa(claims(json!({})).with_issuer("https://mesh.test").with_subject("spiffe://td/ns/a/sa/b"));
    let requirement = &auth.in_module.config.requirements.default;
    let all = requirement.all_of.clone().unwrap();
    let headers = |pairs: &[(&str, &str)]| -> Vec<(String, Vec<u8>)> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())).collect()
    };
    for a in [&auth.in_module, &auth.host] {
        let both = a.authenticate_all(&all, &headers(&[("authorization", &user), ("x-workload-token", &mesh)]), NOW);
        assert_eq!(both.unwrap().token.identity.provider, "user", "the first listed is the identity handed on");
        let only_user = a.authenticate_all(&all, &headers(&[("authorization", &user)]), NOW);
        assert_eq!(only_user.unwrap_err(), JwtError::Missing);
        // The mesh token where the user token belongs: verified, but of the wrong provider.
        let swapped = format!("Bearer {mesh}");
        let wrong =
            a.authenticate_all(&all, &headers(&[("authorization", &swapped), ("x-workload-token", &mesh)]), NOW);
        assert_eq!(wrong.unwrap_err(), JwtError::ProviderNotAllowed);
        let tampered = format!("{}x", &mesh[..mesh.len() - 1]);
        let bad = a.authenticate_all(&all, &headers(&[("authorization", &user), ("x-workload-token", &tampered)]), NOW);
        assert!(bad.is_err());
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn all_of_is_validated() {
    let cases = [
        (json!({"all_of": ["user", "nobody"]}), "no provider named `nobody`"),
        (json!({"all_of": ["user", "user"]}), "names `user` twice"),
        (json!({"all_of": ["user"], "providers": ["user"]}), "cannot be combined"),
    ];
    for (requirement, message) in cases {
        let err = JwtFilterConfig::from_json(all_of_config(requirement).to_string().as_bytes()).err().unwrap();
        assert_eq!(err.path, "requirements.default.all_of");
        assert!(err.message.contains(message), "{err}");
    }
    let mut shared = all_of_config(json!({"all_of": ["user", "mesh"]}));
    shared["providers"][1].as_object_mut().unwrap().remove("token_sources");
    let err = JwtFilterConfig::from_json(shared.to_string().as_bytes()).err().unwrap();
    assert_eq!(err.path, "requirements.default.all_of");
    assert!(err.message.contains("share a token source"), "{err}");
}
