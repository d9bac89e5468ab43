//! What `configs/ratelimit.yaml` needs: the rate-limit filter's example policy and rendering
//! with the rate-limit service's port.

use serde_json::{Value, json};

use crate::zero_trust::chain_jwt_plugin_config;
use crate::{BedError, Ports, render_with, template, wasm_dir, yaml_string};

/// The example policy: 100 requests a minute per verified subject (bursts of 20 more);
/// callers without a token share 10 a minute per /24 (or /64) network; `/healthz` is exempt.
pub fn ratelimit_plugin_config() -> String {
    json!({
        "limits": {
            "per-user": {"quota": 100, "window_seconds": 60, "burst": 120, "key": [{"claim": "sub"}],
                "unkeyed": {"fallback": "per-network"}},
            "per-network": {"quota": 10, "window_seconds": 60, "key": [{"source_prefix": {"ipv4": 24, "ipv6": 64}}]},
        },
        "defaults": {"limits": ["per-user"]},
        "routes": [{"name": "health", "route_names": ["health"], "limits": [], "inherit_defaults": false}],
        "headers": {"on_admitted": true, "x_ratelimit": true},
    })
    .to_string()
}

/// `ratelimit.yaml` with `ratelimit_config` for the filter and the service on `rls_port`.
pub fn render_ratelimit(ports: Ports, rls_port: u16, jwks: &Value, ratelimit_config: &str) -> Result<String, BedError> {
    let extra = [("RATELIMIT_CONFIG", yaml_string(ratelimit_config)), ("RLS_PORT", rls_port.to_string())];
    render_with(&template("ratelimit.yaml")?, ports, &wasm_dir(), &chain_jwt_plugin_config(jwks), &extra)
}
