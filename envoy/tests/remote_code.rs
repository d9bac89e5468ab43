//! A real consumer of a published image: Envoy loads `zt-authz` over HTTP from a real OCI
//! registry (Debian's `docker-registry`, started by the test), by the blob URL of the `oci`
//! variant's module layer and the module's SHA-256, the same pull-by-digest Envoy's
//! `vm_config.code.remote` does, and the filter answers as it does when loaded from a file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

// The registry guard and skopeo runner of ztctl's own image tests, shared rather than copied.
#[path = "../../tools/ztctl/tests/common/registry.rs"]
#[allow(dead_code)]
mod registry;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use zt_envoy_tests::zero_trust::authz_plugin_config;
use zt_envoy_tests::{EchoUpstream, Envoy, Started, get, wasm_dir, workspace_root, yaml_string};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const WASM_LAYER: &str = "application/vnd.module.wasm.content.layer.v1+wasm";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `ztctl package` on the shipped modules, as `make oci` runs it.
fn package(out: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["run", "-q", "-p", "ztctl", "--", "package", "--wasm-dir"])
        .arg(wasm_dir())
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(output.status.success(), "ztctl package: {}", String::from_utf8_lossy(&output.stderr));
}

/// The digest of the module layer in an `oci`-variant image layout.
fn module_layer_digest(layout: &Path) -> String {
    let read = |path: &Path| -> Value { serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap() };
    let blob = |digest: &str| layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
    let index = read(&layout.join("index.json"));
    let manifest = read(&blob(index["manifests"][0]["digest"].as_str().unwrap()));
    let layer = manifest["layers"].as_array().unwrap().iter().find(|l| l["mediaType"] == WASM_LAYER).unwrap();
    layer["digest"].as_str().unwrap().to_owned()
}

fn config(listener_upstream: u16, registry_port: u16, blob_url: &str, sha256: &str) -> String {
    format!(
        r#"admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }}
static_resources:
  listeners:
  - name: ingress
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: 0 }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - name: public
                match: {{ prefix: "/public/" }}
                route: {{ cluster: upstream }}
              - name: other
                match: {{ prefix: "/" }}
                route: {{ cluster: upstream }}
          http_filters:
          - name: zt-authz
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: zt-authz
                root_id: zt-authz
                failure_policy: FAIL_CLOSED
                vm_config:
                  vm_id: zt-authz
                  runtime: envoy.wasm.runtime.v8
                  code:
                    remote:
                      http_uri: {{ uri: "{blob_url}", cluster: registry, timeout: 10s }}
                      sha256: "{sha256}"
                      retry_policy: {{ num_retries: 3 }}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: {authz}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: upstream
    type: STATIC
    load_assignment:
      cluster_name: upstream
      endpoints: [{{ lb_endpoints: [{{ endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {listener_upstream} }} }} }} }}] }}]
  - name: registry
    type: STATIC
    connect_timeout: 2s
    load_assignment:
      cluster_name: registry
      endpoints: [{{ lb_endpoints: [{{ endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {registry_port} }} }} }} }}] }}]
"#,
        authz = yaml_string(&authz_plugin_config()),
    )
}

/// `zt-authz` packaged and pushed (oci variant) to a registry of its own; the scratch directory
/// is removed when the published image drops, after the registry.
struct Published {
    registry: registry::Registry,
    blob_url: String,
    scratch: std::path::PathBuf,
}

impl Drop for Published {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

fn publish_authz(test: &str) -> Published {
    let scratch = std::env::temp_dir().join(format!("zt-remote-code-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    package(&scratch.join("oci"));
    let registry = registry::Registry::start(&scratch.join("registry"));
    let layout = scratch.join("oci/zt-authz-oci");
    let source = format!("oci:{}:{VERSION}", layout.display());
    let target = registry.reference("zt-authz", &format!("{VERSION}-oci"));
    registry::skopeo(&["copy", "--quiet", "--preserve-digests", "--dest-tls-verify=false", &source, &target]);
    let blob_url = registry.blob_url("zt-authz", &module_layer_digest(&layout));
    Published { registry, blob_url, scratch }
}

fn start(config: &str) -> Envoy {
    match Envoy::start(config, 1).unwrap() {
        Started::Ready(envoy) => envoy,
        Started::Exited { status, log } => panic!("Envoy exited ({status}):\n{log}"),
    }
}

#[test]
fn envoy_loads_the_published_module_by_digest_and_it_answers_as_from_a_file() {
    let published = publish_authz("good");
    let module = std::fs::read(wasm_dir().join("zt_authz.wasm")).unwrap();
    let sha256 = hex(&Sha256::digest(&module));
    let echo = EchoUpstream::start().unwrap();
    let envoy = start(&config(echo.port(), published.registry.port, &published.blob_url, &sha256));
    let timeout = Duration::from_secs(5);
    // The same answers as zero-trust.yaml's policy loaded from a file: a public route, and default deny.
    let public = get(envoy.port(), "/public/hello", &[], timeout).unwrap();
    assert_eq!(public.status, 200, "{public:?}\n{}", envoy.log());
    let denied = get(envoy.port(), "/hello", &[], timeout).unwrap();
    assert_eq!(denied.status, 403, "{denied:?}");
    assert!(denied.body.contains("default-deny"), "{}", denied.body);
    assert!(envoy.log().contains("zt-authz: configured"), "{}", envoy.log());
}

#[test]
fn envoy_refuses_a_module_whose_digest_does_not_match() {
    let published = publish_authz("bad");
    let echo = EchoUpstream::start().unwrap();
    let wrong = "0".repeat(64);
    // Envoy fetches the blob, finds another SHA-256 (retrying, then giving up), and the filter,
    // FAIL_CLOSED, answers 503 without running: a module Envoy cannot verify never serves.
    let envoy = start(&config(echo.port(), published.registry.port, &published.blob_url, &wrong));
    let answer = get(envoy.port(), "/public/hello", &[], Duration::from_secs(5)).unwrap();
    assert_eq!(answer.status, 503, "{answer:?}\n{}", envoy.log());
    assert!(envoy.log().contains("Plugin zt-authz failed to load"), "{}", envoy.log());
    assert_eq!(echo.count("/public/hello"), 0, "nothing reached the upstream");
}
