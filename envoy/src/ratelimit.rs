//! What `configs/ratelimit.yaml` needs: the rate-limit filter's example policy and rendering
//! with the rate-limit service's port, as its two filters or as the suite with the same two
//! sections.

use serde_json::{Value, json};

use crate::full_chain::Layout;
use crate::zero_trust::chain_jwt_plugin_config;
use crate::{BedError, Ports, render_with, template, wasm_dir, with_the_suite, yaml_string};

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
pub fn render_ratelimit(
    layout: Layout,
    ports: Ports,
    rls_port: u16,
    jwks: &Value,
    ratelimit_config: &str,
) -> Result<String, BedError> {
    let jwt_config = chain_jwt_plugin_config(jwks);
    let mut text = template("ratelimit.yaml")?;
    if layout == Layout::Suite {
        text = with_the_suite(&text)?;
    }
    let section = |text: &str| serde_json::from_str::<Value>(text).map_err(|e| BedError::Template(e.to_string()));
    let suite = json!({"jwt": section(&jwt_config)?, "ratelimit": section(ratelimit_config)?});
    let extra = [
        ("RATELIMIT_CONFIG", yaml_string(ratelimit_config)),
        ("SUITE_CONFIG", yaml_string(&suite.to_string())),
        ("RLS_PORT", rls_port.to_string()),
    ];
    render_with(&text, ports, &wasm_dir(), &jwt_config, &extra)
}
