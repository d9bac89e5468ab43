//! Providers as identity systems issue tokens: SPIFFE JWT-SVIDs from a trust bundle, Cognito
//! access tokens bound by client instead of audience, Entra ID's multi-tenant issuer, and
//! fractional NumericDates, through the whole pipeline and both verifiers.

use jwt_simple::prelude::*;
use serde_json::{Map, Value, json};
use wasm_bindgen_test::wasm_bindgen_test;

use super::test_host::NativeHost;
use super::*;
use crate::time::UnixSeconds;

const NOW: UnixSeconds = UnixSeconds(1_700_000_000);

fn signer() -> ES256KeyPair {
    ES256KeyPair::from_jwk(include_str!("../../testdata/A.3_ES256.jwk.json")).unwrap().with_key_id("k1")
}

/// An RSA key that a SPIFFE bundle lists as an X.509 CA (`use: "x509-svid"`).
fn x509_ca() -> RS256KeyPair {
    RS256KeyPair::from_jwk(include_str!("../../testdata/A.2_RS256.jwk.json")).unwrap().with_key_id("ca1")
}

fn public(jwk: &str, extra: Value) -> Value {
    let mut jwk: Value = serde_json::from_str(jwk).unwrap();
    let object = jwk.as_object_mut().unwrap();
    for member in ["d", "p", "q", "dp", "dq", "qi"] {
        object.remove(member);
    }
    for (name, value) in extra.as_object().unwrap() {
        object.insert(name.clone(), value.clone());
    }
    jwk
}

/// A bundle as SPIRE's bundle endpoint serves it: an X.509 CA with its certificate chain and
/// a JWT signing key, `spiffe_sequence` and `spiffe_refresh_hint` at the top.
fn spire_bundle() -> Value {
    json!({
        "keys": [
            public(include_str!("../../testdata/A.2_RS256.jwk.json"),
                json!({"use": "x509-svid", "kid": "ca1", "x5c": ["MIIB".repeat(3000)]})),
            public(include_str!("../../testdata/A.3_ES256.jwk.json"), json!({"use": "jwt-svid", "kid": "k1"})),
        ],
        "spiffe_sequence": 7,
        "spiffe_refresh_hint": 300,
    })
}

fn sign_es256(claims: Value) -> String {
    signer().sign(jwt_claims(claims)).unwrap()
}

/// Claims exactly as given: no registered claim is added.
fn jwt_claims(claims: Value) -> JWTClaims<Map<String, Value>> {
    let Value::Object(custom) = claims else { panic!("claims must be an object") };
    let mut claims = Claims::with_custom_claims(custom, Duration::from_secs(1));
    claims.issued_at = None;
    claims.expires_at = None;
    claims.invalid_before = None;
    claims
}

struct Both {
    in_module: Authenticator,
    host: Authenticator,
}

impl Both {
    fn verify(&self, token: &str) -> Result<Identity, JwtError> {
        let in_module = self.in_module.verify(token, NOW);
        assert_eq!(in_module, self.host.verify(token, NOW), "the two verifiers disagree");
        in_module
    }
}

fn authenticator(providers: Value) -> Both {
    let parse = || JwtFilterConfig::from_json(json!({"providers": providers}).to_string().as_bytes()).unwrap();
    Both {
        in_module: Authenticator::new(parse(), Box::new(InModuleVerifier)),
        host: Authenticator::new(parse(), Box::new(HostVerifier::new(NativeHost::default()))),
    }
}

fn config_error(providers: Value) -> String {
    match JwtFilterConfig::from_json(json!({"providers": providers}).to_string().as_bytes()) {
        Ok(_) => panic!("accepted: {providers}"),
        Err(e) => e.to_string(),
    }
}

fn es256_jwks() -> Value {
    json!({"keys": [public(include_str!("../../testdata/A.3_ES256.jwk.json"), json!({"kid": "k1"}))]})
}

fn spire_provider() -> Value {
    json!({"name": "spire", "spiffe": {"trust_domain": "example.org"}, "audiences": ["spiffe://example.org/orders"],
           "jwks": {"inline": spire_bundle()}})
}

fn svid(sub: &str) -> Value {
    json!({"sub": sub, "aud": ["spiffe://example.org/orders"], "exp": NOW.0 + 300, "iat": NOW.0})
}

#[wasm_bindgen_test(unsupported = test)]
fn a_jwt_svid_without_issuer_is_verified_with_the_bundles_jwt_svid_key() {
    let auth = authenticator(json!([spire_provider()]));
    let identity = auth.verify(&sign_es256(svid("spiffe://example.org/ns/shop/sa/web"))).unwrap();
    assert_eq!(identity.provider, "spire");
    assert_eq!(identity.spiffe_id.as_deref(), Some("spiffe://example.org/ns/shop/sa/web"));
    assert_eq!(identity.iss, "");
}

#[wasm_bindgen_test(unsupported = test)]
fn jwt_svids_of_another_domain_another_key_or_an_x509_ca_are_refused() {
    let auth = authenticator(json!([spire_provider()]));
    // No provider vouches for other.org's workloads.
    assert_eq!(auth.verify(&sign_es256(svid("spiffe://other.org/web"))), Err(JwtError::IssuerMissing));
    assert_eq!(auth.verify(&sign_es256(svid("web"))), Err(JwtError::IssuerMissing));
    let stranger = ES256KeyPair::generate().with_key_id("k1");
    let forged = stranger.sign(jwt_claims(svid("spiffe://example.org/web"))).unwrap();
    assert_eq!(auth.verify(&forged), Err(JwtError::SignatureInvalid));
    // The bundle's X.509 CA key signs a JWT: never a JWT key, whatever the token names.
    let by_ca = x509_ca().sign(jwt_claims(svid("spiffe://example.org/web"))).unwrap();
    assert!(matches!(auth.verify(&by_ca), Err(JwtError::NoMatchingKey { .. })), "{:?}", auth.verify(&by_ca));
    let mut no_aud = svid("spiffe://example.org/web");
    no_aud.as_object_mut().unwrap().remove("aud");
    assert_eq!(auth.verify(&sign_es256(no_aud)), Err(JwtError::AudienceMissing));
}

#[wasm_bindgen_test(unsupported = test)]
fn a_jwt_svid_with_issuer_needs_a_subject_of_the_trust_domain() {
    let mut provider = spire_provider();
    provider["issuer"] = json!("https://spire.example.org");
    let auth = authenticator(json!([provider]));
    let with_iss = |sub: &str| {
        let mut claims = svid(sub);
        claims["iss"] = json!("https://spire.example.org");
        sign_es256(claims)
    };
    assert!(auth.verify(&with_iss("spiffe://example.org/web")).is_ok());
    assert_eq!(auth.verify(&with_iss("spiffe://other.org/web")), Err(JwtError::SpiffeSubjectInvalid));
    assert_eq!(auth.verify(&sign_es256(svid("spiffe://example.org/web"))), Err(JwtError::IssuerMissing));
}

#[wasm_bindgen_test(unsupported = test)]
fn a_signature_provider_never_uses_jwt_svid_keys_and_says_what_the_set_is() {
    let jwks = spire_bundle().to_string();
    let error = KeySet::from_remote_jwks(jwks.as_bytes(), KeyUse::Signature).err().unwrap();
    assert!(error.contains("SPIFFE bundle") && error.contains("`spiffe`"), "{error}");
    let (keys, skipped) = KeySet::from_remote_jwks(jwks.as_bytes(), KeyUse::JwtSvid).unwrap();
    assert_eq!((keys.len(), skipped.count), (1, 1));
    assert_eq!(keys.refresh_hint_seconds(), Some(300));
}

#[wasm_bindgen_test(unsupported = test)]
fn issuers_keys_with_certificates_and_encryption_keys_beside_them_are_read() {
    // Keycloak's and Entra ID's sets: `x5c` chains (here 12 KB, beyond jwt-simple's JWK size
    // limit), `x5t`, an `issuer` member, no `alg`, and an encryption key in the same set.
    let mut signing = public(include_str!("../../testdata/A.3_ES256.jwk.json"), json!({"kid": "k1", "use": "sig"}));
    signing["x5c"] = json!(["MIIC".repeat(3000)]);
    signing["x5t"] = json!("3PaK4EfyBNQu3CtjYsa3YmhQ5E0");
    signing["issuer"] = json!("https://login.microsoftonline.com/t1/v2.0");
    let encryption = public(
        include_str!("../../testdata/A.2_RS256.jwk.json"),
        json!({"kid": "enc", "use": "enc", "alg": "RSA-OAEP"}),
    );
    let jwks = json!({"keys": [encryption, signing]});
    let provider = json!({"name": "kc", "issuer": "https://kc.test/realms/r", "audiences": ["api"],
                          "jwks": {"inline": jwks}});
    let auth = authenticator(json!([provider]));
    let token = sign_es256(json!({"iss": "https://kc.test/realms/r", "aud": "api", "exp": NOW.0 + 60}));
    assert!(auth.verify(&token).is_ok());
    let (keys, skipped) = KeySet::from_remote_jwks(jwks.to_string().as_bytes(), KeyUse::Signature).unwrap();
    assert_eq!((keys.len(), skipped.count), (1, 1));
}

fn cognito() -> Value {
    json!({"name": "cognito", "issuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc",
           "client_ids": ["app1"], "required_claims": {"token_use": "access"}, "jwks": {"inline": es256_jwks()}})
}

fn cognito_token(client_id: &str, token_use: &str) -> String {
    sign_es256(json!({"iss": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc", "sub": "u1",
        "client_id": client_id, "token_use": token_use, "scope": "orders/read", "exp": NOW.0 + 300, "iat": NOW.0}))
}

#[wasm_bindgen_test(unsupported = test)]
fn a_cognito_access_token_is_bound_by_its_client() {
    let auth = authenticator(json!([cognito()]));
    let identity = auth.verify(&cognito_token("app1", "access")).unwrap();
    assert_eq!(identity.scopes, ["orders/read"]);
    assert_eq!(auth.verify(&cognito_token("app2", "access")), Err(JwtError::ClientMismatch));
    // Cognito's ID token (audience = client, no `client_id`) is no access token.
    let id_token = sign_es256(json!({"iss": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc",
        "sub": "u1", "aud": "app1", "token_use": "id", "exp": NOW.0 + 300}));
    assert_eq!(auth.verify(&id_token), Err(JwtError::ClientMismatch));
    let id_token_with_azp = sign_es256(json!({"iss": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc",
        "azp": "app1", "token_use": "id", "exp": NOW.0 + 300}));
    assert_eq!(auth.verify(&id_token_with_azp), Err(JwtError::RequiredClaimMismatch));
}

#[wasm_bindgen_test(unsupported = test)]
fn fractional_dates_verify_in_both_verifiers_and_are_cached_to_the_second() {
    let provider =
        json!({"name": "p", "issuer": "https://f.test", "audiences": ["api"], "jwks": {"inline": es256_jwks()}});
    let auth = authenticator(json!([provider]));
    let token = sign_es256(json!({"iss": "https://f.test", "aud": "api", "sub": "s",
        "exp": NOW.0 as f64 + 300.5, "iat": NOW.0 as f64 - 0.25, "nbf": NOW.0 as f64 - 0.25}));
    assert_eq!(auth.verify(&token).unwrap().exp, Some(NOW.0 + 300));
    let late = sign_es256(json!({"iss": "https://f.test", "aud": "api", "exp": NOW.0 as f64 - 60.5}));
    assert_eq!(auth.verify(&late), Err(JwtError::Expired { exp: NOW.0 - 61, now: NOW }));
}

fn entra_common() -> Value {
    json!({"name": "entra", "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
           "tenants": ["72f988bf-86f1-41af-91ab-2d7cd011db47", "contoso.onmicrosoft.com"],
           "audiences": ["api://orders"], "jwks": {"inline": es256_jwks()}})
}

fn entra_token(iss_tenant: &str, tid: &str) -> String {
    sign_es256(json!({"iss": format!("https://login.microsoftonline.com/{iss_tenant}/v2.0"), "tid": tid,
        "aud": "api://orders", "exp": NOW.0 + 300}))
}

#[wasm_bindgen_test(unsupported = test)]
fn a_multi_tenant_issuer_accepts_only_the_listed_tenants_each_with_its_own_tid() {
    let auth = authenticator(json!([entra_common()]));
    let microsoft = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    assert_eq!(auth.verify(&entra_token(microsoft, microsoft)).unwrap().provider, "entra");
    assert!(auth.verify(&entra_token("contoso.onmicrosoft.com", "contoso.onmicrosoft.com")).is_ok());
    assert_eq!(auth.verify(&entra_token(microsoft, "contoso.onmicrosoft.com")), Err(JwtError::TenantMismatch));
    assert_eq!(
        auth.verify(&entra_token("9188040d-6c67-4c5b-b112-36a304b66dad", "9188040d-6c67-4c5b-b112-36a304b66dad")),
        Err(JwtError::UnknownIssuer)
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn provider_configuration_errors_name_the_field_and_the_reason() {
    let with = |mut provider: Value, field: &str, value: Value| {
        provider[field] = value;
        provider
    };
    let without = |mut provider: Value, field: &str| {
        provider.as_object_mut().unwrap().remove(field);
        provider
    };
    let cases = [
        (without(cognito(), "client_ids"), "providers[0].audiences: must not be empty unless `client_ids`"),
        (with(cognito(), "client_ids", json!([""])), "providers[0].client_ids[0]: must not be empty"),
        (without(cognito(), "issuer"), "providers[0].issuer: missing"),
        (with(cognito(), "tenants", json!(["t1"])), "providers[0].tenants: needs an `issuer` template"),
        (without(entra_common(), "tenants"), "providers[0].tenants: must list the accepted tenants"),
        (with(entra_common(), "tenants", json!(["a/b"])), "providers[0].tenants[0]: must be a non-empty tenant ID"),
        (with(entra_common(), "tenants", json!(["t1", "t1"])), "providers[0].tenants[1]: is listed twice"),
        (
            with(entra_common(), "issuer", json!("https://x/{tenantid}/{tenantid}")),
            "providers[0].issuer: holds `{tenantid}` more than once",
        ),
        (
            with(entra_common(), "jwks", json!({"oidc_discovery": {"cluster": "entra"}})),
            "providers[0].jwks.oidc_discovery: needs one exact issuer",
        ),
        (without(spire_provider(), "audiences"), "providers[0].audiences: must not be empty: a JWT-SVID"),
        (
            with(spire_provider(), "spiffe", json!({"trust_domain": "Example.org"})),
            "providers[0].spiffe.trust_domain: \"Example.org\" has a trust domain with characters",
        ),
        (
            with(spire_provider(), "dangerous_allow_missing_expiration", json!(true)),
            "providers[0].dangerous_allow_missing_expiration: a JWT-SVID must carry `exp`",
        ),
        (
            with(spire_provider(), "jwks", json!({"inline": {"keys": [spire_bundle()["keys"][0].clone()]}})),
            "providers[0].jwks.inline.keys: holds no key for verifying tokens",
        ),
    ];
    for (provider, expected) in cases {
        let error = config_error(json!([provider]));
        assert!(error.starts_with(expected), "{error}\n  expected: {expected}");
    }
    // Two providers must never both claim a token.
    let overlap = with(entra_common(), "issuer", json!("https://login.microsoftonline.com/{tenantid}/v2.0"));
    let single = with(
        with(overlap.clone(), "name", json!("single")),
        "issuer",
        json!("https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0"),
    );
    let error = config_error(json!([overlap, without(single, "tenants")]));
    assert!(error.starts_with("providers[1].issuer: duplicates providers[0].issuer"), "{error}");
    let error = config_error(json!([spire_provider(), with(spire_provider(), "name", json!("spire2"))]));
    assert!(error.starts_with("providers[1].spiffe.trust_domain: duplicates"), "{error}");
}
