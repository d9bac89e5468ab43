//! Identity systems the JWT filter must take as they are, in a real Envoy, with the provider
//! configurations read from the zt-jwt README's matrix (only the key source's cluster and URI
//! point at the loopback server that plays the system): a SPIRE JWT-SVID verified against a
//! SPIFFE bundle, an Amazon Cognito access token bound by its client, and a token with
//! fractional NumericDates; each with its negative twins. Then the JWT-SVID's workload as the
//! authorization filter's principal, on the shipped chain and suite, beside an mTLS peer of the
//! same ID.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::time::Duration;

use jwt_simple::prelude::*;
use serde_json::{Map, Value, json};
use zt_envoy_tests::full_chain::{
    Layout, StageConfigs, audit_plugin_config, render_stages, unlimited_ratelimit_plugin_config,
};
use zt_envoy_tests::zero_trust::{Certs, mtls_get};
use zt_envoy_tests::{EchoUpstream, Envoy, Ports, Started, get, render, template, wasm_dir};

const TIMEOUT: Duration = Duration::from_secs(5);
const COGNITO_ISSUER: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ab12Cd34E";
const COGNITO_CLIENT: &str = "4k2v6p2clsqu8r3vaq0f4tt0lm";

/// The provider block under `<!-- provider: NAME -->` in the zt-jwt README.
fn readme_provider(name: &str) -> Value {
    let readme = include_str!("../../filters/zt-jwt/README.md");
    let marker = format!("<!-- provider: {name} -->\n```json\n");
    let start = readme.find(&marker).unwrap_or_else(|| panic!("README has no block for {name}")) + marker.len();
    let end = start + readme[start..].find("```").unwrap();
    serde_json::from_str(&readme[start..end]).unwrap_or_else(|e| panic!("README block {name}: {e}"))
}

/// The README's block with its remote key source served by the loopback `idp` at `path`.
fn served_from(mut provider: Value, idp: &EchoUpstream, path: &str) -> Value {
    provider["jwks"]["remote"]["cluster"] = json!("idp");
    provider["jwks"]["remote"]["uri"] = json!(format!("http://127.0.0.1:{}{path}", idp.port()));
    provider
}

fn jwk(public: &str, members: Value) -> Value {
    let mut jwk: Value = serde_json::from_str(public).unwrap();
    for (name, value) in members.as_object().unwrap() {
        jwk[name] = value.clone();
    }
    jwk
}

/// Claims exactly as given (no registered claim added).
fn exactly(claims: Value) -> JWTClaims<Map<String, Value>> {
    let Value::Object(custom) = claims else { panic!("claims must be an object") };
    let mut claims = Claims::with_custom_claims(custom, Duration::from_secs(1).into());
    (claims.issued_at, claims.expires_at, claims.invalid_before) = (None, None, None);
    claims
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

struct Bed {
    _idp: EchoUpstream,
    _upstream: EchoUpstream,
    envoy: Envoy,
    /// SPIRE's JWT key, a stranger's key, and the bundle's X.509 CA key.
    svid_key: ES256KeyPair,
    stranger: ES256KeyPair,
    ca_key: ES256KeyPair,
    cognito_key: RS256KeyPair,
}

fn bed() -> Bed {
    let idp = EchoUpstream::start().unwrap();
    let svid_key = ES256KeyPair::generate().with_key_id("svid-1");
    let stranger = ES256KeyPair::generate().with_key_id("svid-1");
    let ca_key = ES256KeyPair::generate().with_key_id("ca-1");
    // SPIFFE Trust Domain and Bundle §4: an X.509 CA (with its certificate) and a JWT key.
    let bundle = json!({
        "keys": [
            jwk(&ca_key.public_key().to_jwk(), json!({"use": "x509-svid", "x5c": ["MIIBjTCCATOgAwIBAgIQ"]})),
            jwk(&svid_key.public_key().to_jwk(), json!({"use": "jwt-svid"})),
        ],
        "spiffe_sequence": 3,
        "spiffe_refresh_hint": 300,
    });
    idp.publish("/bundle", &bundle.to_string());
    let cognito_key = RS256KeyPair::from_jwk(include_str!("../../filters/zt-core/testdata/A.2_RS256.jwk.json"))
        .unwrap()
        .with_key_id("cognito-1");
    let cognito_jwks =
        json!({"keys": [jwk(&cognito_key.public_key().to_jwk(), json!({"alg": "RS256", "use": "sig"}))]});
    idp.publish("/eu-west-1_Ab12Cd34E/.well-known/jwks.json", &cognito_jwks.to_string());

    let plugin = json!({"realm": "api", "providers": [
        served_from(readme_provider("spire"), &idp, "/bundle"),
        served_from(readme_provider("cognito"), &idp, "/eu-west-1_Ab12Cd34E/.well-known/jwks.json"),
    ], "requirements": {"named": {"public": {"allow_missing": true}}}});
    let upstream = EchoUpstream::start().unwrap();
    let ports = Ports { upstream: upstream.port(), idp: idp.port(), ..Ports::default() };
    let config = render(&template("jwt-oidc.yaml").unwrap(), ports, &wasm_dir(), &plugin.to_string())
        .unwrap_or_else(|e| panic!("{e}"));
    let envoy = match Envoy::start(&config, 2).unwrap() {
        Started::Ready(envoy) => envoy,
        Started::Exited { log, .. } => panic!("Envoy exited:\n{log}"),
    };
    Bed { _idp: idp, _upstream: upstream, envoy, svid_key, stranger, ca_key, cognito_key }
}

fn status(bed: &Bed, token: &str) -> (u16, String) {
    let bearer = format!("Bearer {token}");
    let answer = get(bed.envoy.port(), "/orders/1", &[("authorization", bearer.as_str())], TIMEOUT).unwrap();
    (answer.status, answer.body)
}

fn svid(sub: &str, aud: &str) -> Value {
    let now = now() as u64;
    json!({"sub": sub, "aud": [aud], "exp": now + 300, "iat": now})
}

fn cognito(client_id: &str, token_use: &str, exp: f64) -> Value {
    let now = now();
    json!({"iss": COGNITO_ISSUER, "sub": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", "client_id": client_id,
        "token_use": token_use, "scope": "orders/read", "auth_time": now.floor(), "iat": now.floor(), "exp": exp,
        "jti": "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9", "username": "alice", "version": 2})
}

#[test]
fn spire_cognito_and_fractional_dates_as_configured_in_the_readme() {
    let bed = bed();
    let workload = "spiffe://example.org/ns/shop/sa/web";
    let audience = "spiffe://example.org/orders";

    // Accepted: a JWT-SVID without `iss`, a Cognito access token, fractional NumericDates.
    let good_svid = bed.svid_key.sign(exactly(svid(workload, audience))).unwrap();
    let (code, body) = status(&bed, &good_svid);
    assert_eq!(code, 200, "JWT-SVID: {body}");
    let access = bed.cognito_key.sign(exactly(cognito(COGNITO_CLIENT, "access", now().floor() + 600.0))).unwrap();
    assert_eq!(status(&bed, &access).0, 200, "Cognito access token");
    let mut fractional = cognito(COGNITO_CLIENT, "access", now() + 600.25);
    fractional["iat"] = json!(now() - 0.5);
    fractional["auth_time"] = json!(now() - 30.75);
    let fractional = bed.cognito_key.sign(exactly(fractional)).unwrap();
    assert_eq!(status(&bed, &fractional).0, 200, "fractional exp/iat");

    // Refused: each twin differs from an accepted token in one respect.
    let refusals = [
        ("a JWT-SVID signed by a key not in the bundle", bed.stranger.sign(exactly(svid(workload, audience))).unwrap()),
        (
            "a JWT-SVID of another trust domain",
            bed.svid_key.sign(exactly(svid("spiffe://evil.example/ns/shop/sa/web", audience))).unwrap(),
        ),
        (
            "a JWT-SVID for another audience",
            bed.svid_key.sign(exactly(svid(workload, "spiffe://example.org/payments"))).unwrap(),
        ),
        ("a JWT signed by the bundle's x509-svid CA key", bed.ca_key.sign(exactly(svid(workload, audience))).unwrap()),
        (
            "a Cognito token of another client",
            bed.cognito_key.sign(exactly(cognito("7a8b9c0d1e2f3g4h5i6j7k8l9m", "access", now() + 600.0))).unwrap(),
        ),
        ("a Cognito ID token", bed.cognito_key.sign(exactly(cognito(COGNITO_CLIENT, "id", now() + 600.0))).unwrap()),
        (
            "a fractional exp already past",
            bed.cognito_key.sign(exactly(cognito(COGNITO_CLIENT, "access", now() - 61.5))).unwrap(),
        ),
    ];
    for (what, token) in refusals {
        let (code, body) = status(&bed, &token);
        assert_eq!(code, 401, "{what}: {body}");
    }
    for reason in [
        "bad_signature",
        "unknown_issuer",
        "audience_mismatch",
        "no_matching_key",
        "client_mismatch",
        "required_claim",
        "expired",
    ] {
        let count = bed.envoy.stat(&format!("wasmcustom.zt_jwt.denied.{reason}")).unwrap_or(0);
        assert!(count >= 1, "{reason} counted: {count}");
    }
}

/// One policy on the shipped chain and suite (`zero-trust.yaml`, `zero-trust-suite.yaml`): ALLOW
/// the workload `example.org/ns/shop/sa/web`. It presents a certificate (mTLS) or a JWT-SVID
/// verified by the README's `spire` provider (its bundle inline); either admits it, nothing else
/// does.
#[test]
fn a_workload_is_admitted_by_its_certificate_or_its_jwt_svid_under_one_policy() {
    let web = "spiffe://example.org/ns/shop/sa/web";
    let certs = Certs::generate(&[web, "spiffe://example.org/ns/shop/sa/admin"]).unwrap_or_else(|e| panic!("{e}"));
    let svid_key = ES256KeyPair::generate().with_key_id("svid-1");
    let mut spire = readme_provider("spire");
    let bundle = json!({"keys": [jwk(&svid_key.public_key().to_jwk(), json!({"use": "jwt-svid"}))],
        "spiffe_sequence": 1});
    spire["jwks"] = json!({"inline": bundle});
    let jwt = json!({"realm": "api", "providers": [spire], "requirements": {"default": {"allow_missing": true}}});
    let authz = json!({"realm": "api",
        "policies": {"web-only": {"action": "ALLOW", "rules": [{"from": [{"source": {"principals": ["example.org/ns/shop/sa/web"]}}]}]}},
        "defaults": {"policies": ["web-only"]}});
    let stages = StageConfigs {
        jwt: jwt.to_string(),
        authz: authz.to_string(),
        ratelimit: unlimited_ratelimit_plugin_config(),
        audit: audit_plugin_config(None),
        filter_state: false,
    };
    for layout in Layout::ALL {
        let echo = EchoUpstream::start().unwrap();
        let ports = Ports { upstream: echo.port(), ..Ports::default() };
        let config = render_stages(&template(layout.template()).unwrap(), ports, 1, certs.dir(), &stages)
            .unwrap_or_else(|e| panic!("{e}"));
        let envoy = Envoy::serve(&config).unwrap_or_else(|e| panic!("{e}"));
        let svid_of =
            |sub: &str| format!("Bearer {}", svid_key.sign(exactly(svid(sub, "spiffe://example.org/orders"))).unwrap());
        let plain = |bearer: Option<&str>| {
            let headers: Vec<(&str, &str)> = bearer.iter().map(|b| ("authorization", *b)).collect();
            get(envoy.port(), "/orders/1", &headers, TIMEOUT).unwrap().status
        };
        let mtls = |client: usize, bearer: Option<&str>| {
            let headers: Vec<(&str, &str)> = bearer.iter().map(|b| ("authorization", *b)).collect();
            mtls_get(&certs, Some(client), envoy.port(), "/orders/1", &headers).unwrap().status
        };
        let web_svid = svid_of(web);
        let admin_svid = svid_of("spiffe://example.org/ns/shop/sa/admin");
        assert_eq!(plain(Some(&web_svid)), 200, "{layout:?}: the workload by its JWT-SVID");
        assert_eq!(mtls(0, None), 200, "the workload by its certificate");
        assert_eq!(mtls(0, Some(&admin_svid)), 200, "its certificate, another workload's JWT-SVID: either matches");
        assert_eq!(mtls(1, Some(&web_svid)), 200, "another certificate, its JWT-SVID: either matches");
        assert_eq!(plain(None), 403, "neither");
        assert_eq!(plain(Some(&admin_svid)), 403, "another workload's JWT-SVID");
        assert_eq!(mtls(1, None), 403, "{layout:?}: another workload's certificate");
    }
}
