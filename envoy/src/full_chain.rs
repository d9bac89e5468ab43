//! What `configs/full-chain.yaml` needs: the four filters' plugin configurations and rendering
//! with the collector's port. The JWT and authorization policies are those of the zero-trust
//! configuration; the rate limits are per verified subject, with the public route limited per
//! network; the audit filter records everything to Envoy's log and, when asked, to a collector.

use serde_json::{Value, json};

use crate::zero_trust::{authz_plugin_config, chain_jwt_plugin_config};
use crate::{BedError, Ports, render_with, template, wasm_dir, yaml_string};

/// 100 requests a minute per verified subject (bursts to 120); `/public` (chosen by route
/// metadata) 20 a minute per /24 network whoever calls.
pub fn chain_ratelimit_plugin_config() -> String {
    json!({
        "limits": {
            "per-user": {"quota": 100, "window_seconds": 60, "burst": 120, "key": [{"claim": "sub"}],
                "unkeyed": {"fallback": "per-network"}},
            "per-network": {"quota": 20, "window_seconds": 60, "key": [{"source_prefix": {"ipv4": 24, "ipv6": 64}}]},
        },
        "defaults": {"limits": ["per-user"]},
        "routes": [{"name": "public", "limits": ["per-network"], "inherit_defaults": false}],
        "headers": {"on_admitted": true},
    })
    .to_string()
}

/// Every request to Envoy's log; health checks only when they fail. With `collector`, also to
/// the `otel` cluster as OTLP/HTTP JSON.
pub fn audit_plugin_config(collector: Option<Value>) -> String {
    let mut config = json!({
        "headers": ["user-agent", "authorization", "cookie"],
        "routes": [{"name": "health", "route_names": ["health"], "sample_allowed": 0.0}],
    });
    if let (Some(collector), Some(object)) = (collector, config.as_object_mut()) {
        object.insert("collector".to_owned(), collector);
    }
    config.to_string()
}

/// `full-chain.yaml` with the given plugin configurations and the collector on `collector_port`.
pub fn render_full_chain(
    ports: Ports,
    collector_port: u16,
    jwks: &Value,
    ratelimit_config: &str,
    audit_config: &str,
) -> Result<String, BedError> {
    let extra = [
        ("AUTHZ_CONFIG", yaml_string(&authz_plugin_config())),
        ("RATELIMIT_CONFIG", yaml_string(ratelimit_config)),
        ("AUDIT_CONFIG", yaml_string(audit_config)),
        ("COLLECTOR_PORT", collector_port.to_string()),
    ];
    render_with(&template("full-chain.yaml")?, ports, &wasm_dir(), &chain_jwt_plugin_config(jwks), &extra)
}
