//! The plugin configurations inside deployment files, for `ztctl check FILE...`: every
//! `WasmPlugin` of a (multi-document) Kubernetes manifest and every Wasm HTTP filter of an Envoy
//! configuration that runs one of the suite's modules, each with the filter it configures.

use serde::Deserialize as _;
use serde_json::Value;

use crate::check::Filter;

/// Envoy's Wasm HTTP filter, as a `typed_config` names it.
const ENVOY_WASM: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";

/// One plugin configuration found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginConfig {
    /// Where it is: `WasmPlugin shop/zt-suite`, `Envoy filter zt-suite`.
    pub place: String,
    pub filter: Filter,
    /// The configuration's JSON text, as the filter receives it.
    pub json: Vec<u8>,
}

/// What a file holds: the suite's plugin configurations, and the Wasm plugins that are not the
/// suite's (named, so that a reader sees they were not checked).
#[derive(Debug, Default)]
pub struct Contents {
    pub configs: Vec<PluginConfig>,
    pub others: Vec<String>,
    /// Files an Envoy configuration loads filter configurations from (`config_discovery` with a
    /// `path_config_source`), as written.
    pub discovered: Vec<String>,
}

/// Reads every YAML (or JSON) document of `text`.
pub fn read(text: &str) -> Result<Contents, String> {
    let mut contents = Contents::default();
    for document in serde_yaml::Deserializer::from_str(text) {
        let value = serde_yaml::Value::deserialize(document).map_err(|e| format!("not YAML: {e}"))?;
        let value = serde_json::to_value(value).map_err(|e| format!("not a JSON-like document: {e}"))?;
        if value.get("kind").and_then(Value::as_str) == Some("WasmPlugin") {
            wasm_plugin(&value, &mut contents);
        } else {
            envoy_filters(&value, &mut contents);
        }
    }
    Ok(contents)
}

/// An Istio `WasmPlugin`: the filter is named by its image (`.../zt-suite:0.1.0`), else by the
/// resource's name.
fn wasm_plugin(plugin: &Value, contents: &mut Contents) {
    let text = |pointer: &str| plugin.pointer(pointer).and_then(Value::as_str).unwrap_or_default();
    let place = format!("WasmPlugin {}/{}", text("/metadata/namespace"), text("/metadata/name"));
    let image = text("/spec/url").rsplit('/').next().unwrap_or_default();
    let image = image.split([':', '@']).next().unwrap_or_default();
    let Some(filter) = filter_named(image).or_else(|| filter_named(text("/metadata/name"))) else {
        contents.others.push(place);
        return;
    };
    let config = plugin.pointer("/spec/pluginConfig").cloned().unwrap_or(Value::Object(Default::default()));
    contents.configs.push(PluginConfig { place, filter, json: config.to_string().into_bytes() });
}

/// Every Wasm HTTP filter anywhere in an Envoy configuration (static listeners, or an xDS dump):
/// the filter is named by its module file (`zt_suite.wasm`), else its `root_id`.
fn envoy_filters(value: &Value, contents: &mut Contents) {
    match value {
        Value::Object(object) => {
            if object.get("@type").and_then(Value::as_str) == Some(ENVOY_WASM) {
                let config = value.get("config").unwrap_or(&Value::Null);
                let text = |pointer: &str| config.pointer(pointer).and_then(Value::as_str).unwrap_or_default();
                let place = format!("Envoy filter {}", text("/name"));
                let module = text("/vm_config/code/local/filename").rsplit('/').next().unwrap_or_default();
                let filter = filter_named(module.trim_end_matches(".wasm")).or_else(|| filter_named(text("/root_id")));
                match filter {
                    // An Envoy `StringValue`: the plugin configuration is the string.
                    Some(filter) => contents.configs.push(PluginConfig {
                        place,
                        filter,
                        json: text("/configuration/value").as_bytes().to_vec(),
                    }),
                    None => contents.others.push(place),
                }
                return;
            }
            if let Some(path) =
                object.get("path_config_source").and_then(|source| source.get("path")).and_then(Value::as_str)
                && !contents.discovered.iter().any(|known| known == path)
            {
                contents.discovered.push(path.to_owned());
            }
            object.values().for_each(|child| envoy_filters(child, contents));
        }
        Value::Array(items) => items.iter().for_each(|child| envoy_filters(child, contents)),
        _ => {}
    }
}

/// `zt-jwt`, `zt_jwt`, ... (not `jwt`: a module or image of another project may be called that).
fn filter_named(name: &str) -> Option<Filter> {
    let name = name.replace('_', "-");
    name.starts_with("zt-").then(|| Filter::parse(&name)).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasm_plugins_are_named_by_their_image_and_envoy_filters_by_their_module() {
        let manifests = r#"
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: authz, namespace: shop}
spec:
  url: oci://registry.example.com/zt/zt-authz:0.1.0
  pluginConfig: {policies: {}, defaults: {policies: []}}
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: other, namespace: shop}
spec: {url: oci://registry.example.com/acme/filter:1}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: x}
"#;
        let contents = read(manifests).unwrap();
        assert_eq!(contents.configs.len(), 1);
        assert_eq!(
            (contents.configs[0].place.as_str(), contents.configs[0].filter),
            ("WasmPlugin shop/authz", Filter::Authz)
        );
        assert_eq!(contents.others, ["WasmPlugin shop/other"]);

        let envoy = r#"
static_resources:
  listeners:
  - filter_chains:
    - filters:
      - typed_config:
          http_filters:
          - name: zt-suite
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: zt-suite
                root_id: zt-suite
                vm_config: {code: {local: {filename: "/etc/envoy/zt_suite.wasm"}}}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: '{"audit": {}}'
"#;
        let contents = read(envoy).unwrap();
        assert_eq!(contents.configs[0].filter, Filter::Suite);
        assert_eq!(contents.configs[0].json, br#"{"audit": {}}"#);
        assert!(read("{{PLACEHOLDER").is_err());
    }
}
