//! `ztctl check` through the built binary: valid and invalid configurations of each filter, the
//! error naming the field as the filter logs it, exit statuses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::Write;
use std::process::{Command, Stdio};

fn ztctl(args: &[&str], stdin: &[u8]) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ztctl"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let output = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.code().unwrap(), text)
}

#[test]
fn a_valid_configuration_passes_and_an_invalid_one_names_the_field() {
    let dir = std::env::temp_dir().join(format!("ztctl-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.json");
    let bad = dir.join("bad.json");
    std::fs::write(&good, br#"{"limits": {"u": {"quota": 5, "window_seconds": 60, "key": [{"claim": "sub"}]}}, "defaults": {"limits": ["u"]}}"#).unwrap();
    std::fs::write(
        &bad,
        br#"{"limits": {"u": {"quota": 0, "window_seconds": 60, "key": []}}, "defaults": {"limits": ["u"]}}"#,
    )
    .unwrap();
    let (code, text) = ztctl(&["check", "ratelimit", good.to_str().unwrap()], b"");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("valid:") && text.contains("zt-ratelimit"), "{text}");
    let (code, text) = ztctl(&["check", "zt-ratelimit", good.to_str().unwrap(), bad.to_str().unwrap()], b"");
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("invalid:") && text.contains("limits.u.quota"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reads_standard_input_and_refuses_an_unknown_filter() {
    let (code, text) = ztctl(&["check", "audit", "-"], br#"{"sample_allowed": 2}"#);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("sample_allowed"), "{text}");
    let (code, text) = ztctl(&["check", "audit", "-"], br#"{"headers": ["user-agent"]}"#);
    assert_eq!(code, 0, "{text}");
    let (code, text) = ztctl(&["check", "waf", "-"], b"{}");
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("unknown FILTER"), "{text}");
    let (code, _) = ztctl(&["check", "jwt"], b"");
    assert_eq!(code, 2);
}

/// Deployment files as they are: the Istio manifests in the repository, each WasmPlugin's
/// configuration through its filter's parser; a broken copy names the plugin and the field.
#[test]
fn the_istio_manifests_are_checked_plugin_by_plugin() {
    let istio = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../envoy/istio");
    let file = |name: &str| istio.join(name).to_str().unwrap().to_owned();
    let (suite, chain) = (file("wasmplugin-suite.yaml"), file("wasmplugins.yaml"));
    let (code, text) = ztctl(&["check", &suite, &chain], b"");
    assert_eq!(code, 0, "{text}");
    for plugin in
        ["zt-suite (zt-suite)", "zt-jwt (zt-jwt)", "zt-authz (zt-authz)", "zt-ratelimit", "zt-audit (zt-audit)"]
    {
        assert!(text.contains(&format!("WasmPlugin shop/{plugin}")), "{plugin}: {text}");
    }
    let broken = std::fs::read_to_string(&chain).unwrap().replacen("quota: 100", "quota: 0", 1);
    let (code, text) = ztctl(&["check", "-"], broken.as_bytes());
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("invalid: - WasmPlugin shop/zt-ratelimit (zt-ratelimit): limits.per-user.quota"), "{text}");
    let (code, text) = ztctl(&["check", &file("peer-authentication.yaml")], b"");
    assert_eq!(code, 1, "nothing checked is no pass: {text}");
}

/// An Envoy configuration that loads its filters' configurations from files
/// (`config_discovery`) is checked through those files, read from the current directory as
/// Envoy reads them; a file it names that is not there fails the check, saying why.
#[test]
fn policy_files_an_envoy_configuration_loads_are_followed() {
    let dir = std::env::temp_dir().join(format!("ztctl-check-discovery-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    let main = r#"
static_resources:
  listeners:
  - filter_chains:
    - filters:
      - typed_config:
          http_filters:
          - name: zt-authz
            config_discovery:
              config_source: {path_config_source: {path: policies/zt-authz.yaml}}
"#;
    std::fs::write(dir.join("envoy.yaml"), main).unwrap();
    let policy = |value: &str| {
        format!(
            r#"resources:
- "@type": type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig
  name: zt-authz
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
    config:
      name: zt-authz
      vm_config: {{code: {{local: {{filename: target/wasm/zt_authz.wasm}}}}}}
      configuration: {{"@type": type.googleapis.com/google.protobuf.StringValue, value: '{value}'}}
"#
        )
    };
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_ztctl")).args(args).current_dir(&dir).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.code().unwrap(), text)
    };
    let (code, text) = run(&["check", "envoy.yaml"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("invalid: envoy.yaml loads policies/zt-authz.yaml, which cannot be read here"), "{text}");

    let good = r#"{"policies": {"open": {"action": "ALLOW", "rules": [{}]}}, "defaults": {"policies": ["open"]}}"#;
    std::fs::write(dir.join("policies/zt-authz.yaml"), policy(good)).unwrap();
    let (code, text) = run(&["check", "envoy.yaml"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("valid: policies/zt-authz.yaml Envoy filter zt-authz (zt-authz)"), "{text}");

    std::fs::write(dir.join("policies/zt-authz.yaml"), policy(r#"{"defaultz": {}}"#)).unwrap();
    let (code, text) = run(&["check", "envoy.yaml", "policies/zt-authz.yaml"]);
    assert_eq!(code, 1, "{text}");
    assert_eq!(text.matches("invalid: policies/zt-authz.yaml").count(), 1, "checked once: {text}");
    std::fs::remove_dir_all(&dir).unwrap();
}
