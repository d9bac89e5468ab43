//! Every shipped Envoy configuration passes `envoy --mode validate`, and `ztctl check` accepts
//! every plugin configuration in it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use serde_json::json;
use zt_envoy_tests::full_chain::{Layout, audit_plugin_config, chain_ratelimit_plugin_config, render_full_chain};
use zt_envoy_tests::ratelimit::{ratelimit_plugin_config, render_ratelimit};
use zt_envoy_tests::zero_trust::Certs;
use zt_envoy_tests::{
    ISSUER, KeySet, Ports, jwt_oidc_plugin_config, jwt_plugin_config, render, shipped_configs, template, validate,
    wasm_dir, ztctl,
};

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
