//! `zt-jwt` in a real Envoy, in front of the echo upstream: the answers a client sees and what
//! reaches (or never reaches) the upstream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::json;
use zt_envoy_tests::{
    Alg, EchoUpstream, Envoy, ISSUER, KeySet, Ports, Response, Started, Surroundings, get, jwt_plugin_config, render,
    tamper, template, wasm_dir,
};

const TIMEOUT: Duration = Duration::from_secs(5);
const CHALLENGE: &str = r#"Bearer realm="zt-demo""#;
const INVALID: &str = r#"Bearer realm="zt-demo", error="invalid_token""#;

/// One key set per test binary: RSA key generation is the slow part.
fn keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| KeySet::generate().unwrap())
}

fn jwt_config(upstream: u16, plugin_config: &str) -> String {
    let ports = Ports { upstream, ..Ports::default() };
    render(&template("jwt.yaml").unwrap(), ports, &wasm_dir(), plugin_config).unwrap_or_else(|e| panic!("{e}"))
}

/// An echo upstream and an Envoy running the shipped JWT chain in front of it.
fn jwt_bed() -> (EchoUpstream, Envoy) {
    let echo = EchoUpstream::start().unwrap();
    let envoy =
        Envoy::serve(&jwt_config(echo.port(), &jwt_plugin_config(&keys().jwks()))).unwrap_or_else(|e| panic!("{e}"));
    (echo, envoy)
}

fn get_with_token(envoy: &Envoy, token: &str) -> Response {
    get(envoy.port(), "/api/x", &[("authorization", &format!("Bearer {token}"))], TIMEOUT).unwrap()
}

#[test]
fn valid_tokens_reach_the_upstream_without_their_authorization_header() {
    let (echo, envoy) = jwt_bed();
    for alg in Alg::ALL {
        let answer = get_with_token(&envoy, &keys().valid(alg).unwrap());
        assert_eq!(answer.status, 200, "{alg:?}: {}", answer.body);
        let forwarded = echo.requests().pop().unwrap();
        assert_eq!(forwarded.path, "/api/x");
        // forward_token is false: the upstream must not be able to log or replay the token (and
        // this message must not print it either).
        assert!(forwarded.header("authorization").is_none(), "{alg:?}: authorization reached the upstream");
    }
    assert_eq!(echo.requests().len(), Alg::ALL.len());
}

#[test]
fn a_request_without_a_token_is_challenged() {
    let (echo, envoy) = jwt_bed();
    let answer = get(envoy.port(), "/api/x", &[], TIMEOUT).unwrap();
    assert_eq!((answer.status, answer.header("www-authenticate")), (401, Some(CHALLENGE)), "{answer:?}");
    assert_eq!(echo.requests(), vec![]);
}

#[test]
fn tampered_and_expired_tokens_are_invalid() {
    let (echo, envoy) = jwt_bed();
    let cases = [
        ("tampered RS256", tamper(&keys().valid(Alg::Rs256).unwrap()).unwrap()),
        ("tampered ES256", tamper(&keys().valid(Alg::Es256).unwrap()).unwrap()),
        ("tampered EdDSA", tamper(&keys().valid(Alg::EdDsa).unwrap()).unwrap()),
        ("expired RS256", keys().expired(Alg::Rs256).unwrap()),
        ("expired EdDSA", keys().expired(Alg::EdDsa).unwrap()),
    ];
    for (case, token) in cases {
        let answer = get_with_token(&envoy, &token);
        assert_eq!((answer.status, answer.header("www-authenticate")), (401, Some(INVALID)), "{case}: {answer:?}");
    }
    assert_eq!(echo.requests(), vec![], "a refused token reached the upstream");
}

/// `on_configure` returning false for a static listener's filter stops Envoy at start: it exits
/// non-zero and its log carries the filter's error, which names the JSON path.
#[test]
fn an_invalid_plugin_configuration_stops_envoy() {
    let jwks = keys().jwks();
    let cases = [
        ("providers", json!({ "realm": "zt-demo", "providers": [] })),
        (
            "providers[0].audiences",
            json!({ "providers": [{ "name": "demo", "issuer": ISSUER, "audiences": [], "jwks": { "inline": jwks } }] }),
        ),
    ];
    for (field, bad) in cases {
        match Envoy::start(&jwt_config(1, &bad.to_string()), 1).unwrap_or_else(|e| panic!("{e}")) {
            Started::Ready(envoy) => panic!("Envoy started without {field}; log:\n{}", envoy.log()),
            Started::Exited { status, log } => {
                assert!(!status.success(), "{field}: {status}");
                let named = log.lines().any(|l| l.contains("invalid configuration") && l.contains(field));
                assert!(named, "the log does not name {field}:\n{log}");
            }
        }
    }
}

/// An HMAC secret kept out of the configuration: the plugin names the variable
/// (`{"env": "ZT_HMAC_SECRET"}`), the VM takes it from Envoy's own environment
/// (`vm_config.environment_variables.host_env_keys`), tokens signed with it are accepted, and
/// neither Envoy's config dump nor its log shows it.
#[test]
fn an_hmac_secret_from_envoys_environment_never_appears_in_the_config_dump() {
    use base64::Engine as _;
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0x61u8; 48]);
    let plugin = json!({"realm": "zt-demo", "providers": [{"name": "shared", "issuer": ISSUER, "audiences": ["demo-api"],
        "hmac_keys": [{"alg": "HS384", "secret": {"env": "ZT_HMAC_SECRET"}}]}]});
    let echo = EchoUpstream::start().unwrap();
    let config = jwt_config(echo.port(), &plugin.to_string()).replacen(
        "runtime: envoy.wasm.runtime.v8\n",
        "runtime: envoy.wasm.runtime.v8\n                  environment_variables: { host_env_keys: [ZT_HMAC_SECRET] }\n",
        1,
    );
    assert!(config.contains("host_env_keys"), "{config}");
    let around = Surroundings { env: &[("ZT_HMAC_SECRET", &secret)], dir: None };
    let envoy = match Envoy::start_with(&config, 1, &["-l", "info"], &around).unwrap() {
        Started::Ready(envoy) => envoy,
        Started::Exited { log, .. } => panic!("Envoy exited:\n{log}"),
    };
    use jwt_simple::prelude::*;
    let claims = Claims::create(jwt_simple::prelude::Duration::from_mins(5))
        .with_issuer(ISSUER)
        .with_audience("demo-api")
        .with_subject("svc");
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&secret).unwrap();
    let token = HS384Key::from_bytes(&key).authenticate(claims).unwrap();
    let answer = get_with_token(&envoy, &token);
    assert_eq!(answer.status, 200, "{answer:?}\n{}", envoy.log());
    let dump = envoy.config_dump().expect("the admin config dump");
    assert!(dump.contains("ZT_HMAC_SECRET"), "the reference is there");
    assert!(!dump.contains(&secret), "the secret is not in the config dump");
    assert!(!envoy.log().contains(&secret), "nor in the log");
}
