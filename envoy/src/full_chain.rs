//! What `configs/zero-trust.yaml` (the four filters together) and
//! `configs/zero-trust-suite.yaml` (the same as one suite filter) need besides keys and
//! certificates: the rate-limit and audit plugin configurations and rendering with the
//! collector's port. The JWT and authorization policies are in `zero_trust`; the rate limits are
//! per verified subject, with the public route limited per network; the audit filter records
//! everything to Envoy's log and, when asked, to a collector.

use std::path::Path;

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

/// No limit at all: for tests of the other filters that send many requests from one address.
/// The `public` rule that `zero-trust.yaml`'s route metadata names is defined (without limits):
/// a route naming a rule the configuration lacks is refused with 500.
pub fn unlimited_ratelimit_plugin_config() -> String {
    json!({
        "limits": {},
        "defaults": {"limits": []},
        "routes": [{"name": "public", "limits": [], "inherit_defaults": false}],
    })
    .to_string()
}

/// How the shipped configuration deploys the stages: `zero-trust.yaml`, four filters, or
/// `zero-trust-suite.yaml`, the one suite filter with the same configurations as its sections.
/// Tests loop over [`Layout::ALL`], so each scenario runs against both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Chain,
    Suite,
}

impl Layout {
    pub const ALL: [Layout; 2] = [Layout::Chain, Layout::Suite];

    pub fn template(self) -> &'static str {
        match self {
            Layout::Chain => "zero-trust.yaml",
            Layout::Suite => "zero-trust-suite.yaml",
        }
    }
}

/// The shipped configuration of `layout` with the given plugin configurations, Envoy's
/// certificates in `cert_dir` and the collector on `collector_port`.
pub fn render_full_chain(
    layout: Layout,
    ports: Ports,
    collector_port: u16,
    cert_dir: &Path,
    jwks: &Value,
    ratelimit_config: &str,
    audit_config: &str,
) -> Result<String, BedError> {
    let stages = StageConfigs::shipped(jwks, ratelimit_config, audit_config);
    render_stages(&template(layout.template())?, ports, collector_port, cert_dir, &stages)
}

/// Each stage's plugin configuration (JSON text): the four filters' configurations, or the
/// suite's sections.
pub struct StageConfigs {
    pub jwt: String,
    pub authz: String,
    pub ratelimit: String,
    pub audit: String,
    /// The suite's `filter_state` option (the single filters always write theirs).
    pub filter_state: bool,
}

impl StageConfigs {
    /// The shipped JWT and authorization policies with the given rate limits and audit.
    pub fn shipped(jwks: &Value, ratelimit_config: &str, audit_config: &str) -> Self {
        Self {
            jwt: chain_jwt_plugin_config(jwks),
            authz: authz_plugin_config(),
            ratelimit: ratelimit_config.to_owned(),
            audit: audit_config.to_owned(),
            filter_state: false,
        }
    }
}

/// `template` (`zero-trust.yaml` or `zero-trust-suite.yaml`, possibly edited by a test) with
/// `stages` as its filters or as the suite's sections.
pub fn render_stages(
    template: &str,
    ports: Ports,
    collector_port: u16,
    cert_dir: &Path,
    stages: &StageConfigs,
) -> Result<String, BedError> {
    let section = |text: &str| serde_json::from_str::<Value>(text).map_err(|e| BedError::Template(e.to_string()));
    let mut suite = json!({
        "jwt": section(&stages.jwt)?,
        "authz": section(&stages.authz)?,
        "ratelimit": section(&stages.ratelimit)?,
        "audit": section(&stages.audit)?,
    });
    if let (true, Some(options)) = (stages.filter_state, suite.as_object_mut()) {
        options.insert("filter_state".to_owned(), Value::Bool(true));
    }
    let extra = [
        ("AUTHZ_CONFIG", yaml_string(&stages.authz)),
        ("CERT_DIR", cert_dir.to_string_lossy().into_owned()),
        ("RATELIMIT_CONFIG", yaml_string(&stages.ratelimit)),
        ("AUDIT_CONFIG", yaml_string(&stages.audit)),
        ("SUITE_CONFIG", yaml_string(&suite.to_string())),
        ("COLLECTOR_PORT", collector_port.to_string()),
    ];
    render_with(template, ports, &wasm_dir(), &stages.jwt, &extra)
}
