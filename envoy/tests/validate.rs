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

/// `ztctl token mint` as the standalone headers show it: alice, scope `orders:read`, and the
/// `extra` claims (`env=production`).
fn mint_demo_token(key: &[u8], extra: &[&str]) -> String {
    let key_file = std::env::temp_dir().join(format!("zt-standalone-{}.key", std::process::id()));
    std::fs::write(&key_file, key).unwrap();
    let key_path = key_file.to_str().unwrap();
    let mut args = vec!["token", "mint", "--key", key_path, "--alg", "HS256"];
    args.extend(["--issuer", "https://issuer.standalone.local", "--audience", "demo-api", "--subject", "alice"]);
    args.extend(["--claim", "scope=orders:read"]);
    for claim in extra {
        args.extend(["--claim", claim]);
    }
    let (minted, token) = ztctl(&args);
    std::fs::remove_file(&key_file).unwrap();
    assert!(minted, "{token}");
    token.trim().to_owned()
}

/// `envoy/standalone/zt-suite.yaml` and `zt-chain.yaml` as shipped, each loading its policy
/// files from `envoy/standalone/policies/`, give the answers their headers promise, to tokens
/// signed with the issuer's secret, which Envoy's environment holds (`host_env_keys`) and its
/// config dump never shows.
#[test]
fn the_standalone_suite_and_chain_run_as_shipped() {
    let (key, secret) = demo_secret();
    let production = format!("Bearer {}", mint_demo_token(&key, &["env=production"]));
    let dev = format!("Bearer {}", mint_demo_token(&key, &["env=dev"]));
    for file in ["envoy/standalone/zt-suite.yaml", "envoy/standalone/zt-chain.yaml"] {
        let echo = EchoUpstream::start().unwrap();
        let envoy = run_standalone(file, &[("ZT_DEMO_HMAC_SECRET", &secret)], &echo);
        let status = |path: &str, headers: &[(&str, &str)]| get(envoy.port(), path, headers, TIMEOUT).unwrap().status;
        assert_eq!(status("/orders/1", &[("authorization", &production)]), 200, "{file}: {}", envoy.log());
        assert_eq!(status("/orders/1", &[("authorization", &dev)]), 403, "{file}: a dev caller in production");
        assert_eq!(status("/orders/1", &[]), 401, "{file}");
        assert_eq!(status("/public/hello", &[]), 200, "{file}");
        assert_eq!(status("/elsewhere", &[]), 403, "{file}");
        assert_eq!(status("/admin/users", &[("authorization", &production)]), 403, "{file}: no billing workload");
        assert_eq!(status("/healthz", &[]), 200, "{file}");
        assert_eq!(echo.count("/orders/1"), 1, "{file}");
        assert!(!envoy.config_dump().unwrap().contains(&secret), "{file}: the issuer's secret is in the config dump");
    }
}

/// A policy file replaced while Envoy runs takes effect on the next request; a version the
/// filter refuses is rejected and the last good one stays in force. On a copy of the standalone
/// tree, so the shipped files are never touched.
#[test]
fn a_replaced_policy_file_applies_and_a_refused_one_keeps_the_last_good() {
    let (_, secret) = demo_secret();
    let tree = std::env::temp_dir().join(format!("zt-standalone-tree-{}", std::process::id()));
    let policies = tree.join("envoy/standalone/policies");
    std::fs::create_dir_all(&policies).unwrap();
    let root = workspace_root();
    let module = wasm_dir().join("zt_suite.wasm");
    let shipped = std::fs::read_to_string(root.join("envoy/standalone/policies/zt-suite.yaml")).unwrap();
    let shipped = shipped.replace("target/wasm/zt_suite.wasm", module.to_str().unwrap());
    std::fs::write(policies.join("zt-suite.yaml"), &shipped).unwrap();
    let echo = EchoUpstream::start().unwrap();
    let config = std::fs::read_to_string(root.join("envoy/standalone/zt-suite.yaml"))
        .unwrap()
        .replace("port_value: 9901", "port_value: 0")
        .replace("port_value: 10000", "port_value: 0")
        .replace("port_value: 10080", &format!("port_value: {}", echo.port()));
    let around = Surroundings { env: &[("ZT_DEMO_HMAC_SECRET", &secret)], dir: Some(&tree) };
    let envoy = match Envoy::start_with(&config, 2, &["-l", "info"], &around).unwrap_or_else(|e| panic!("{e}")) {
        Started::Ready(envoy) => envoy,
        Started::Exited { log, .. } => panic!("Envoy exited:\n{log}"),
    };
    let status = |path: &str| get(envoy.port(), path, &[], TIMEOUT).unwrap().status;
    let counter = |name: &str| envoy.stat(&format!("extension_config_discovery.http_filter.zt-suite.{name}"));
    // Replaced as editors that save by renaming and ConfigMap updates do: written beside, then
    // moved into place.
    let replace = |text: &str| {
        let next = policies.join(".zt-suite.yaml.next");
        std::fs::write(&next, text).unwrap();
        std::fs::rename(&next, policies.join("zt-suite.yaml")).unwrap();
    };
    // Envoy applies a file on its file-system event: wait (bounded) for its counter, then look.
    let await_counter = |name: &str, value: u64| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while counter(name) != Some(value) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(counter(name), Some(value), "{name}:\n{}", envoy.log());
    };
    await_counter("update_success", 1);
    assert_eq!(status("/healthz"), 200);
    assert_eq!(status("/elsewhere"), 403, "default deny");

    // The authz section's routes (the first `"routes": [` in the file) gain one for the rest.
    let open = r#""routes": [
                {"name": "elsewhere", "route_names": ["other"], "policies": ["anyone"]},"#;
    let opened = shipped.replacen(r#""routes": ["#, open, 1);
    assert_ne!(opened, shipped);
    replace(&opened);
    await_counter("update_success", 2);
    assert_eq!(status("/elsewhere"), 200, "the new version is in force");

    replace(&opened.replace(r#""defaults": {"policies""#, r#""defaultz": {"policies""#));
    await_counter("update_rejected", 1);
    assert_eq!(status("/elsewhere"), 200, "the last good version stays in force");
    assert!(envoy.log().contains("unknown field `defaultz`"), "the refusal names the field");
    drop(envoy);
    std::fs::remove_dir_all(&tree).unwrap();
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
    let bearer = format!("Bearer {}", mint_demo_token(&key, &[]));
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

/// The standalone suite's policy file is the chain's four policy files as its sections, so the
/// two ready-to-run configurations enforce one policy.
#[test]
fn the_standalone_suite_policy_is_the_chains_four_policies() {
    let policy = |name: &str| -> serde_json::Value {
        let path = workspace_root().join(format!("envoy/standalone/policies/{name}.yaml"));
        let file: serde_json::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let value = file["resources"][0]["typed_config"]["config"]["configuration"]["value"].as_str().unwrap();
        serde_json::from_str(value).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let suite = policy("zt-suite");
    for stage in ["jwt", "authz", "ratelimit", "audit"] {
        assert_eq!(suite[stage], policy(&format!("zt-{stage}")), "section {stage}");
    }
}

/// What `make demo` runs: the standalone suite as shipped, and beside its listener the same
/// listener with mutual TLS (`--config-yaml`), where the policy's SPIFFE rule lets the billing
/// workload in and keeps another workload out; the demo's curl lines are these requests.
#[test]
fn the_demo_adds_an_mtls_listener_to_the_standalone_suite() {
    use zt_envoy_tests::demo::{MTLS_LISTENER, STANDALONE_SUITE, mtls_listener};
    use zt_envoy_tests::zero_trust::{BILLING_SPIFFE_ID, SHOP_SPIFFE_ID, mtls_get};
    let (_, secret) = demo_secret();
    let root = workspace_root();
    let certs = Certs::generate(&[BILLING_SPIFFE_ID, SHOP_SPIFFE_ID]).unwrap();
    let echo = EchoUpstream::start().unwrap();
    let shipped = std::fs::read_to_string(root.join(STANDALONE_SUITE)).unwrap();
    let extra = mtls_listener(&shipped, 0, certs.dir()).unwrap();
    let config = shipped
        .replace("port_value: 9901", "port_value: 0")
        .replace("port_value: 10000", "port_value: 0")
        .replace("port_value: 10080", &format!("port_value: {}", echo.port()));
    let around = Surroundings { env: &[("ZT_DEMO_HMAC_SECRET", &secret)], dir: Some(&root) };
    let args = ["-l", "info", "--config-yaml", extra.as_str()];
    let envoy = match Envoy::start_with(&config, 2, &args, &around).unwrap_or_else(|e| panic!("{e}")) {
        Started::Ready(envoy) => envoy,
        Started::Exited { log, .. } => panic!("Envoy exited:\n{log}"),
    };
    let port = envoy.listener_port(MTLS_LISTENER).unwrap_or_else(|| panic!("no {MTLS_LISTENER}:\n{}", envoy.log()));
    let billing = mtls_get(&certs, Some(0), port, "/admin/users", &[]).unwrap();
    assert_eq!(billing.status, 200, "{}", envoy.log());
    assert_eq!(mtls_get(&certs, Some(1), port, "/admin/users", &[]).unwrap().status, 403);
    assert!(mtls_get(&certs, None, port, "/public/hello", &[]).is_err(), "no client certificate, no connection");
    assert_eq!(get(envoy.port(), "/admin/users", &[], TIMEOUT).unwrap().status, 403, "plaintext: no workload");
    assert_eq!(echo.count("/admin/users"), 1);
}
