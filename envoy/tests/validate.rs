//! Every shipped Envoy configuration passes `envoy --mode validate`, and `ztctl check` accepts
//! every plugin configuration in it; the ready-to-run configuration runs as shipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use serde_json::json;
use zt_envoy_tests::full_chain::{Layout, audit_plugin_config, chain_ratelimit_plugin_config, render_full_chain};
use zt_envoy_tests::ratelimit::{ratelimit_plugin_config, render_ratelimit};
use zt_envoy_tests::zero_trust::Certs;
use zt_envoy_tests::{
    EchoUpstream, Envoy, ISSUER, KeySet, Ports, Started, Surroundings, get, jwt_oidc_plugin_config, jwt_plugin_config,
    render, shipped_configs, template, validate, validate_with, wasm_dir, workspace_root, ztctl,
};

const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The demo's ports: validation binds nothing, and port 0 reads as a mistake in a static cluster.
const PORTS: Ports = Ports { listener: 10000, admin: 9901, upstream: 10080, idp: 10081 };

fn rendered(name: &str, plugin_config: &str) -> String {
    render(&template(name).unwrap(), PORTS, &wasm_dir(), plugin_config).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_shipped_config_passes_envoy_validate() {
    let jwks = KeySet::generate().unwrap().jwks();
    let certs = Certs::generate(&[]).unwrap();
    let names = shipped_configs().unwrap();
    assert!(names.contains(&"jwt.yaml".to_owned()), "{names:?}");
    for name in names {
        let plugin_config = match name.as_str() {
            "jwt.yaml" => jwt_plugin_config(&jwks),
            "jwt-oidc.yaml" => jwt_oidc_plugin_config("http://127.0.0.1:10081"),
            _ => "{}".to_owned(),
        };
        let config = if name == "ratelimit.yaml" {
            render_ratelimit(Layout::Chain, PORTS, 10082, &jwks, &ratelimit_plugin_config())
                .unwrap_or_else(|e| panic!("{name}: {e}"))
        } else if let Some(layout) = Layout::ALL.into_iter().find(|layout| layout.template() == name) {
            let audit = audit_plugin_config(Some(json!({"cluster": "otel"})));
            render_full_chain(layout, PORTS, 4318, certs.dir(), &jwks, &chain_ratelimit_plugin_config(), &audit)
                .unwrap_or_else(|e| panic!("{name}: {e}"))
        } else {
            rendered(&name, &plugin_config)
        };
        let (status, output) = validate(&config).unwrap_or_else(|e| panic!("{e}"));
        assert!(status.success(), "{name} fails envoy --mode validate ({status}):\n{output}");
        // The operator's offline check finds and accepts every plugin configuration in it.
        if config.contains("/zt_") {
            let file = std::env::temp_dir().join(format!("zt-validate-{}-{name}", std::process::id()));
            std::fs::write(&file, &config).unwrap();
            let (valid, report) = ztctl(&["check", file.to_str().unwrap()]);
            std::fs::remove_file(&file).unwrap();
            assert!(valid && report.contains("valid: ") && !report.contains("invalid"), "{name}: {report}");
        }
    }
}

/// Envoy 1.40's validation creates the static listeners' Wasm plugins, so it runs the plugin's
/// `on_configure` too: with `FAIL_CLOSED`, a plugin configuration the filter refuses fails
/// validation, and the output carries the filter's error naming the JSON path.
#[test]
fn validate_runs_the_plugin_on_configure_and_refuses_a_bad_configuration() {
    let refused = json!({ "providers": [{ "name": "demo", "issuer": ISSUER, "audiences": [], "jwks": { "inline": { "keys": [] } } }] });
    let (status, output) = validate(&rendered("jwt.yaml", &refused.to_string())).unwrap_or_else(|e| panic!("{e}"));
    assert!(!status.success(), "envoy --mode validate accepted a configuration zt-jwt refuses:\n{output}");
    assert!(output.contains("providers[0].audiences"), "the output does not name the field:\n{output}");
}

/// The demo issuer's HMAC secret, raw, and as the base64url text the configurations take.
fn demo_secret() -> ([u8; 32], String) {
    use base64::Engine as _;
    let key = [0x33u8; 32];
    (key, base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key))
}

/// A standalone configuration as a user runs it from the repository's root with `env` in
/// Envoy's environment: `envoy --mode validate` and `ztctl check` accept the shipped file, and
/// Envoy serves it with only its three ports changed (the upstream's to `echo`'s).
fn run_standalone(file: &str, env: &[(&str, &str)], echo: &EchoUpstream) -> Envoy {
    let root = workspace_root();
    let path = root.join(file);
    let shipped = std::fs::read_to_string(&path).unwrap();
    let around = Surroundings { env, dir: Some(&root) };
    let (status, output) = validate_with(&shipped, &around).unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "{file}: envoy --mode validate:\n{output}");
    // The check its header suggests, as a user runs it.
    let (valid, report) = ztctl(&["check", path.to_str().unwrap()]);
    assert!(valid && report.contains("valid: ") && !report.contains("invalid"), "{file}: {report}");
    let config = shipped
        .replace("port_value: 9901", "port_value: 0")
        .replace("port_value: 10000", "port_value: 0")
        .replace("port_value: 10080", &format!("port_value: {}", echo.port()));
    match Envoy::start_with(&config, 2, &["-l", "info"], &around).unwrap_or_else(|e| panic!("{e}")) {
        Started::Ready(envoy) => envoy,
        Started::Exited { log, .. } => panic!("{file}: Envoy exited:\n{log}"),
    }
}

/// `ztctl token mint` as the standalone headers show it: alice, scope `orders:read`.
fn mint_demo_token(key: &[u8]) -> String {
    let key_file = std::env::temp_dir().join(format!("zt-standalone-{}.key", std::process::id()));
    std::fs::write(&key_file, key).unwrap();
    let (minted, token) = ztctl(&[
        "token",
        "mint",
        "--key",
        key_file.to_str().unwrap(),
        "--alg",
        "HS256",
        "--issuer",
        "https://issuer.standalone.local",
        "--audience",
        "demo-api",
        "--subject",
        "alice",
        "--claim",
        "scope=orders:read",
    ]);
    std::fs::remove_file(&key_file).unwrap();
    assert!(minted, "{token}");
    token.trim().to_owned()
}

/// `envoy/standalone/zt-suite.yaml` as shipped gives the answers its header promises, to a
/// token signed with the issuer's secret, which Envoy's environment holds (`host_env_keys`) and
/// its config dump never shows.
#[test]
fn the_standalone_suite_runs_as_shipped() {
    let (key, secret) = demo_secret();
    let echo = EchoUpstream::start().unwrap();
    let envoy = run_standalone("envoy/standalone/zt-suite.yaml", &[("ZT_DEMO_HMAC_SECRET", &secret)], &echo);
    let bearer = format!("Bearer {}", mint_demo_token(&key));
    let status = |path: &str, headers: &[(&str, &str)]| get(envoy.port(), path, headers, TIMEOUT).unwrap().status;
    assert_eq!(status("/orders/1", &[("authorization", &bearer)]), 200, "{}", envoy.log());
    assert_eq!(status("/orders/1", &[]), 401);
    assert_eq!(status("/public/hello", &[]), 200);
    assert_eq!(status("/elsewhere", &[]), 403);
    assert_eq!(status("/healthz", &[]), 200);
    assert_eq!(echo.count("/orders/1"), 1);
    assert!(!envoy.config_dump().unwrap().contains(&secret), "the issuer's secret is not in the config dump");
}

/// `envoy/standalone/jwt-authn-adoption.yaml` as shipped: Envoy's `jwt_authn`, configured as
/// Istio's RequestAuthentication configures it, verifies the token; zt-authz, zt-ratelimit and
/// zt-audit take the caller it verified from the stream's metadata: its scope opens the route,
/// its subject keys the limit, and the audit record names it.
#[test]
fn the_jwt_authn_adoption_runs_as_shipped() {
    let (key, secret) = demo_secret();
    let jwks = json!({"keys": [{"kty": "oct", "alg": "HS256", "k": secret}]}).to_string();
    let echo = EchoUpstream::start().unwrap();
    let envoy = run_standalone("envoy/standalone/jwt-authn-adoption.yaml", &[("ZT_DEMO_JWKS", &jwks)], &echo);
    let bearer = format!("Bearer {}", mint_demo_token(&key));
    let answer = |path: &str, headers: &[(&str, &str)]| get(envoy.port(), path, headers, TIMEOUT).unwrap();
    let allowed = answer("/orders/1", &[("authorization", &bearer)]);
    assert_eq!(allowed.status, 200, "{}", envoy.log());
    // zt-ratelimit keyed the request by the subject jwt_authn verified.
    assert_eq!(allowed.header("ratelimit-policy"), Some(r#""per-user";q=100;w=60"#), "{allowed:?}");
    assert_eq!(answer("/orders/1", &[]).status, 401, "no token: no caller");
    assert_eq!(answer("/orders/1", &[("authorization", "Bearer x.y.z")]).status, 401, "jwt_authn refuses");
    assert_eq!(answer("/public/hello", &[]).status, 200);
    assert_eq!(answer("/elsewhere", &[]).status, 403);
    assert_eq!(echo.count("/orders/1"), 1);
    let log = envoy.log_when(|log| log.matches("zt.audit.v1 ").count() >= 5);
    let caller = log
        .lines()
        .filter(|line| line.contains("zt.audit.v1 ") && line.contains(r#""status":200"#) && line.contains("/orders/1"))
        .find_map(|line| {
            let record: serde_json::Value =
                serde_json::from_str(&line[line.find("zt.audit.v1 ").unwrap() + 12..]).ok()?;
            Some(record["identity"].clone())
        });
    let caller = caller.unwrap_or_else(|| panic!("no record of the allowed request:\n{log}"));
    assert_eq!((caller["provider"].as_str(), caller["sub"].as_str()), (Some("demo"), Some("alice")), "{caller}");
    assert_eq!(caller["scopes"], json!(["orders:read"]));
    assert!(!envoy.config_dump().unwrap().contains(&secret), "the key set is not in the config dump");
}
