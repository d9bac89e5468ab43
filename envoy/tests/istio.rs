//! The Istio deployment examples in `envoy/istio/`: every manifest matches the field list of
//! its kind (a JSON schema kept beside them, derived from Istio's documented API), so a typo in
//! a field name or an enum value fails here instead of in a cluster; every `pluginConfig` is
//! accepted by the filter's own configuration parser; the phases, order and fail strategy are
//! those the README promises.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use serde_json::Value;
use zt_core::audit::AuditConfig;
use zt_core::authz::AuthzConfig;
use zt_core::jwt::JwtFilterConfig;
use zt_core::ratelimit::RateLimitConfig;

fn istio_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("istio")
}

/// Every document of a multi-document YAML file, as JSON values.
fn documents(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(istio_dir().join(name)).unwrap();
    text.split("\n---\n")
        .map(|doc| serde_json::to_value(serde_yaml::from_str::<serde_yaml::Value>(doc).unwrap()).unwrap())
        .collect()
}

fn schema(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(istio_dir().join(name)).unwrap()).unwrap()
}

/// The JSON Schema keywords the schemas here use: `type`, `enum`, `required`, `properties`,
/// `additionalProperties` (false or a schema), `items`, `$ref` to `#/definitions/...`.
/// Answers the JSON paths that break them.
fn violations(value: &Value, schema: &Value, root: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let target = root.pointer(reference.trim_start_matches('#')).unwrap_or_else(|| panic!("{reference}"));
        return violations(value, target, root, path, out);
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        out.push(format!("{path}: {value} is not one of {allowed:?}"));
    }
    let kind_ok = match schema.get("type").and_then(Value::as_str) {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("boolean") => value.is_boolean(),
        Some(other) => panic!("schema type {other} not handled"),
        None => true,
    };
    if !kind_ok {
        out.push(format!("{path}: {value} is not of type {}", schema["type"]));
        return;
    }
    if let Some(object) = value.as_object() {
        for required in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            if !object.contains_key(required.as_str().unwrap()) {
                out.push(format!("{path}: missing field `{}`", required.as_str().unwrap()));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (key, item) in object {
            let item_path = format!("{path}.{key}");
            match (properties.and_then(|p| p.get(key)), schema.get("additionalProperties")) {
                (Some(item_schema), _) => violations(item, item_schema, root, &item_path, out),
                (None, Some(Value::Bool(false))) => out.push(format!("{item_path}: unknown field")),
                (None, Some(extra @ Value::Object(_))) => violations(item, extra, root, &item_path, out),
                (None, _) => {}
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            violations(item, items, root, &format!("{path}[{i}]"), out);
        }
    }
}

fn check(document: &Value, schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    violations(document, schema, schema, "", &mut out);
    out
}

#[test]
fn every_manifest_matches_the_field_list_of_its_kind() {
    let wasm = schema("wasmplugin.schema.json");
    let peer = schema("peerauthentication.schema.json");
    let service_entry = schema("serviceentry.schema.json");
    let destination_rule = schema("destinationrule.schema.json");
    let virtual_service = schema("virtualservice.schema.json");
    let request_authentication = schema("requestauthentication.schema.json");
    let mut checked = 0;
    for file in [
        "wasmplugins.yaml",
        "wasmplugin-suite.yaml",
        "peer-authentication.yaml",
        "jwks-egress.yaml",
        "wasmplugin-gateway.yaml",
        "requestauthentication-adoption.yaml",
    ] {
        for document in documents(file) {
            let schema = match document["kind"].as_str() {
                Some("WasmPlugin") => &wasm,
                Some("PeerAuthentication") => &peer,
                Some("ServiceEntry") => &service_entry,
                Some("DestinationRule") => &destination_rule,
                Some("VirtualService") => &virtual_service,
                Some("RequestAuthentication") => &request_authentication,
                other => panic!("{file}: no schema for kind {other:?}"),
            };
            let broken = check(&document, schema);
            assert!(broken.is_empty(), "{file} ({}): {broken:#?}", document["metadata"]["name"]);
            checked += 1;
        }
    }
    assert_eq!(checked, 14);
}

/// On a gateway the route names exist: every Envoy route name the gateway plugin's rules list is
/// a route of its VirtualService, and the plugin configuration passes the suite's parser. The
/// sidecar examples name no route at all (Istio's inbound routes are its own).
#[test]
fn the_gateway_plugin_selects_routes_its_virtual_service_names() {
    let documents = documents("wasmplugin-gateway.yaml");
    let (plugin, service) = (&documents[0], &documents[1]);
    let config = &plugin["spec"]["pluginConfig"];
    assert!(zt_core::suite::SuiteConfig::from_json(config.to_string().as_bytes()).is_ok());
    let routes: Vec<&str> =
        service["spec"]["http"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    let named: Vec<&str> = config["authz"]["routes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|rule| rule["route_names"].as_array().unwrap())
        .map(|name| name.as_str().unwrap())
        .collect();
    assert!(!named.is_empty() && named.iter().all(|name| routes.contains(name)), "{named:?} not all in {routes:?}");
    for file in ["wasmplugin-suite.yaml", "wasmplugins.yaml"] {
        let text = std::fs::read_to_string(istio_dir().join(file)).unwrap();
        assert!(!text.contains("route_names") && !text.contains("_route:"), "{file}: sidecars have no route names");
    }
}

/// The remote JWKS cluster the plugins name is the one Istio builds for the ServiceEntry's host
/// and port (`outbound|<port>||<host>`), and that cluster originates TLS to the issuer.
#[test]
fn the_remote_jwks_cluster_exists_and_speaks_tls_to_the_issuer() {
    let egress = documents("jwks-egress.yaml");
    let (entry, rule) = (&egress[0], &egress[1]);
    let host = entry["spec"]["hosts"][0].as_str().unwrap();
    let port = entry["spec"]["ports"][0]["number"].as_u64().unwrap();
    let cluster = format!("outbound|{port}||{host}");
    for file in ["wasmplugin-suite.yaml", "wasmplugins.yaml"] {
        let plugin = documents(file).remove(0);
        let jwt = match file {
            "wasmplugin-suite.yaml" => plugin["spec"]["pluginConfig"]["jwt"].clone(),
            _ => plugin["spec"]["pluginConfig"].clone(),
        };
        let remote = &jwt["providers"][0]["jwks"]["remote"];
        assert_eq!(remote["cluster"], cluster.as_str(), "{file}");
        assert!(remote["uri"].as_str().unwrap().starts_with(&format!("https://{host}/")), "{file}");
    }
    assert_eq!(rule["spec"]["host"], host);
    let settings = &rule["spec"]["trafficPolicy"]["portLevelSettings"][0];
    assert_eq!(settings["port"]["number"].as_u64(), Some(port));
    assert_eq!((settings["tls"]["mode"].as_str(), settings["tls"]["sni"].as_str()), (Some("SIMPLE"), Some(host)));
}

#[test]
fn the_suites_plugin_config_is_the_four_plugins_configs_as_sections_and_its_parser_accepts_it() {
    let suite = documents("wasmplugin-suite.yaml").remove(0);
    let config = &suite["spec"]["pluginConfig"];
    for plugin in documents("wasmplugins.yaml") {
        let name = plugin["metadata"]["name"].as_str().unwrap();
        let section = name.trim_start_matches("zt-");
        assert_eq!(config[section], plugin["spec"]["pluginConfig"], "section {section} is not {name}'s configuration");
    }
    let parsed = zt_core::suite::SuiteConfig::from_json(config.to_string().as_bytes());
    assert!(parsed.is_ok(), "{:?}", parsed.err());
    assert_eq!(
        (suite["spec"]["phase"].as_str(), suite["spec"]["failStrategy"].as_str()),
        (Some("AUTHN"), Some("FAIL_CLOSE"))
    );
}

#[test]
fn the_schema_check_catches_a_misspelled_field_and_a_wrong_value() {
    let wasm = schema("wasmplugin.schema.json");
    let mut plugin = documents("wasmplugins.yaml").remove(0);
    plugin["spec"]["failStrategy"] = "FAIL_CLOSED".into();
    plugin["spec"]["imagePullPolicy"] = "IfNotPresent".into();
    plugin["spec"]["pluginConfigs"] = serde_json::json!({});
    plugin["spec"]["match"][0]["mode"] = "SERVER".into();
    plugin["spec"]["match"][0]["port"] = serde_json::json!([{"number": 8080}]);
    let broken = check(&plugin, &wasm);
    assert_eq!(broken.len(), 3, "{broken:#?}");
    assert!(broken.iter().any(|b| b.starts_with(".spec.failStrategy")));
    assert!(broken.iter().any(|b| b == ".spec.pluginConfigs: unknown field"));
    assert!(broken.iter().any(|b| b == ".spec.match[0].port: unknown field"));
}

#[test]
fn each_plugin_config_is_accepted_by_its_filter_and_the_order_is_the_documented_one() {
    let plugins = documents("wasmplugins.yaml");
    let names: Vec<&str> = plugins.iter().map(|p| p["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["zt-jwt", "zt-authz", "zt-ratelimit", "zt-audit"]);
    for plugin in &plugins {
        let name = plugin["metadata"]["name"].as_str().unwrap();
        let spec = &plugin["spec"];
        let config = spec["pluginConfig"].to_string();
        let parsed = match name {
            "zt-jwt" => JwtFilterConfig::from_json(config.as_bytes()).map(drop),
            "zt-authz" => AuthzConfig::from_json(config.as_bytes()).map(drop),
            "zt-ratelimit" => RateLimitConfig::from_json(config.as_bytes()).map(drop),
            "zt-audit" => AuditConfig::from_json(config.as_bytes()).map(drop),
            other => panic!("unknown plugin {other}"),
        };
        assert!(parsed.is_ok(), "{name}: {parsed:?}");
        assert_eq!(spec["failStrategy"], "FAIL_CLOSE", "{name}");
        assert!(spec["url"].as_str().unwrap().starts_with(&format!("oci://registry.example.com/zt/{name}:")), "{name}");
        let sha = spec["sha256"].as_str().unwrap();
        assert!(sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()), "{name}: sha256 {sha}");
    }
    let phase = |i: usize| (plugins[i]["spec"]["phase"].as_str().unwrap(), plugins[i]["spec"]["priority"].as_i64());
    // AUTHN, then AUTHZ with zt-authz before zt-ratelimit (higher priority first), then STATS.
    assert_eq!(phase(0).0, "AUTHN");
    assert_eq!((phase(1).0, phase(2).0), ("AUTHZ", "AUTHZ"));
    assert!(phase(1).1 > phase(2).1);
    assert_eq!(phase(3).0, "STATS");
    let peer = documents("peer-authentication.yaml").remove(0);
    assert_eq!(peer["spec"]["mtls"]["mode"], "STRICT");
}

/// Adoption beside RequestAuthentication: each plugin names the payload key Istio gives
/// `jwt_authn` (`payload`), its filter's parser accepts it, and every plugin runs after Istio's
/// authentication filters (no AUTHN phase), where the payload is already in the metadata.
#[test]
fn the_plugins_beside_request_authentication_read_istios_payload_after_it() {
    let documents = documents("requestauthentication-adoption.yaml");
    assert_eq!(documents[0]["kind"], "RequestAuthentication");
    let selector = &documents[0]["spec"]["selector"];
    let plugins = &documents[1..];
    let names: Vec<&str> = plugins.iter().map(|p| p["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["zt-authz", "zt-ratelimit", "zt-audit"]);
    for plugin in plugins {
        let name = plugin["metadata"]["name"].as_str().unwrap();
        let spec = &plugin["spec"];
        assert_eq!(&spec["selector"], selector, "{name}: the same workloads as the RequestAuthentication");
        assert_ne!(spec["phase"], "AUTHN", "{name} would run before jwt_authn");
        assert_eq!(spec["pluginConfig"]["identity_source"]["jwt_authn"][0]["payload_in_metadata"], "payload", "{name}");
        let config = spec["pluginConfig"].to_string();
        let source = match name {
            "zt-authz" => AuthzConfig::from_json(config.as_bytes()).map(|c| c.identity_source().clone()),
            "zt-ratelimit" => RateLimitConfig::from_json(config.as_bytes()).map(|c| c.identity_source().clone()),
            "zt-audit" => AuditConfig::from_json(config.as_bytes()).map(|c| c.identity_source().clone()),
            other => panic!("unknown plugin {other}"),
        };
        let source = source.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(matches!(source, zt_core::identity_source::IdentitySource::JwtAuthn(_)), "{name}: {source:?}");
    }
}

/// The top-level `stats_config:` block of an Envoy configuration (template or not), as text.
fn stats_config_block(config: &str) -> String {
    let mut lines = config.lines().skip_while(|line| *line != "stats_config:");
    let head = lines.next().unwrap_or_else(|| panic!("no stats_config"));
    let body: Vec<&str> = lines.take_while(|line| line.starts_with(' ')).collect();
    format!("{head}\n{}\n", body.join("\n"))
}

/// The stats configuration Istio's proxies need for the zt labels and latency buckets is the
/// one every shipped Envoy configuration carries, word for word, and Envoy accepts it.
#[test]
fn the_istio_stats_bootstrap_is_the_shipped_stats_config() {
    let config_map = documents("stats-bootstrap.yaml").remove(0);
    assert_eq!(config_map["kind"], "ConfigMap");
    let bootstrap: Value = serde_json::from_str(config_map["data"]["custom_bootstrap.json"].as_str().unwrap()).unwrap();
    assert_eq!(bootstrap.as_object().unwrap().len(), 1, "only stats_config is overridden");
    let root = zt_envoy_tests::workspace_root();
    let mut shipped: Vec<PathBuf> = ["envoy/configs", "envoy/standalone"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(root.join(dir)).unwrap().map(|entry| entry.unwrap().path()))
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    shipped.sort();
    let mut compared = 0;
    for path in shipped {
        let text = std::fs::read_to_string(&path).unwrap();
        if !text.contains("\nstats_config:") {
            continue;
        }
        let block: serde_yaml::Value = serde_yaml::from_str(&stats_config_block(&text)).unwrap();
        let block = serde_json::to_value(block).unwrap();
        assert_eq!(block, bootstrap, "{}", path.display());
        compared += 1;
    }
    assert!(compared >= 8, "{compared}");
    let minimal = serde_json::json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 9901}}},
        "stats_config": bootstrap["stats_config"],
    });
    let (status, output) = zt_envoy_tests::validate(&minimal.to_string()).unwrap();
    assert!(status.success(), "Envoy refuses the stats bootstrap:\n{output}");
}
