//! `make demo` runs the ready-to-run suite, `envoy/standalone/zt-suite.yaml` with its policy file,
//! as a user would, and adds one thing beside it: a listener with mutual TLS for the certificates
//! it makes, so that the SPIFFE rules of the policy can be tried. That listener is the shipped
//! listener itself (same routes, same filters, the same policy file by `config_discovery`) with a
//! TLS transport socket, handed to Envoy with `--config-yaml`, which appends it to the file's
//! listeners.

use std::path::Path;

use serde_json::{Value, json};

use crate::BedError;

/// The shipped standalone configuration the demo runs, relative to the repository's root.
pub const STANDALONE_SUITE: &str = "envoy/standalone/zt-suite.yaml";

/// The name of the listener the demo adds.
pub const MTLS_LISTENER: &str = "ingress-mtls";

/// `--config-yaml` text adding the first listener of `standalone` again as [`MTLS_LISTENER`] on
/// `port`, requiring a client certificate issued by `cert_dir/ca.pem` and serving
/// `cert_dir/server.pem` (JSON, which is YAML).
pub fn mtls_listener(standalone: &str, port: u16, cert_dir: &Path) -> Result<String, BedError> {
    let bad = |why: &str| BedError::Template(format!("{STANDALONE_SUITE}: {why}"));
    let config: Value = serde_yaml::from_str(standalone).map_err(|e| bad(&e.to_string()))?;
    let mut listener = config.pointer("/static_resources/listeners/0").cloned().ok_or_else(|| bad("no listener"))?;
    let file = |name: &str| cert_dir.join(name).to_string_lossy().into_owned();
    let tls = json!({
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "require_client_certificate": true,
            "common_tls_context": {
                "tls_certificates": [{
                    "certificate_chain": {"filename": file("server.pem")},
                    "private_key": {"filename": file("server.key")},
                }],
                "validation_context": {"trusted_ca": {"filename": file("ca.pem")}},
            },
        },
    });
    let chains =
        listener.get_mut("filter_chains").and_then(Value::as_array_mut).ok_or_else(|| bad("no filter chain"))?;
    if chains.len() != 1 {
        return Err(bad("expected one filter chain on the listener"));
    }
    for chain in chains.iter_mut().filter_map(Value::as_object_mut) {
        chain.insert("transport_socket".to_owned(), tls.clone());
    }
    *listener.pointer_mut("/name").ok_or_else(|| bad("no listener name"))? = json!(MTLS_LISTENER);
    *listener.pointer_mut("/address/socket_address/port_value").ok_or_else(|| bad("no listener port"))? = json!(port);
    Ok(json!({"static_resources": {"listeners": [listener]}}).to_string())
}

/// The standalone suite's policy file, relative to the repository's root.
pub const STANDALONE_POLICY: &str = "envoy/standalone/policies/zt-suite.yaml";

/// The environment variable the standalone policy takes the issuer's HMAC secret from.
pub const SECRET_ENV: &str = "ZT_DEMO_HMAC_SECRET";

/// The suite's sections as the standalone policy file holds them (the JSON `value` of its one
/// filter configuration), so that the demo's tokens follow the policy rather than a copy of it.
pub fn standalone_policy(root: &Path) -> Result<Value, BedError> {
    let path = root.join(STANDALONE_POLICY);
    let bad = |why: String| BedError::Template(format!("{STANDALONE_POLICY}: {why}"));
    let text = std::fs::read_to_string(&path).map_err(BedError::io(format!("read {}", path.display())))?;
    let file: Value = serde_yaml::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let value = file
        .pointer("/resources/0/typed_config/config/configuration/value")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no plugin configuration".to_owned()))?;
    serde_json::from_str(value).map_err(|e| bad(e.to_string()))
}

/// The demo issuer of `policy` (its first provider): issuer, first audience.
pub fn demo_issuer(policy: &Value) -> Result<(String, String), BedError> {
    let text = |pointer: &str| policy.pointer(pointer).and_then(Value::as_str);
    match (text("/jwt/providers/0/issuer"), text("/jwt/providers/0/audiences/0")) {
        (Some(issuer), Some(audience)) => Ok((issuer.to_owned(), audience.to_owned())),
        _ => Err(BedError::Template(format!("{STANDALONE_POLICY}: no issuer and audience in jwt.providers[0]"))),
    }
}

/// An HS256 token of the demo issuer for subject `alice` with `claims`, valid five minutes.
pub fn hs256_token(secret: &[u8], issuer: &str, audience: &str, claims: Value) -> Result<String, BedError> {
    use jwt_simple::prelude::*;
    let claims = Claims::with_custom_claims(claims, Duration::from_mins(5))
        .with_issuer(issuer)
        .with_audience(audience)
        .with_subject("alice");
    HS256Key::from_bytes(secret).authenticate(claims).map_err(|e| BedError::Token(e.to_string()))
}
