//! The configurations compared: bare Envoy, Envoy's native `jwt_authn` (with and without its
//! cache), and `zt-jwt` (signatures on the host where it can, or all in the module). Each is
//! the benchmark template with its own HTTP filters; everything else is identical.

use std::path::Path;

use crate::{BedError, Ports, jwt_plugin_config, render};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// No filter but the router: the physical limit of this Envoy and upstream.
    Bare,
    /// A Wasm filter that does nothing (test fixture): what Envoy charges any Wasm filter.
    WasmNoop,
    /// `envoy.filters.http.jwt_authn` with `jwt_cache_config`.
    NativeJwtCached,
    /// `envoy.filters.http.jwt_authn` without a cache.
    NativeJwt,
    /// `zt-jwt` with its defaults: RS*/ES* on the host (`verify_signature`), cache on.
    ZtJwt,
    /// `zt-jwt` with `signature_verifier: in_module` and the cache off: the Wasm crypto alone.
    ZtJwtInModuleNoCache,
}

impl Variant {
    pub const ALL: [Variant; 6] = [
        Variant::Bare,
        Variant::WasmNoop,
        Variant::NativeJwtCached,
        Variant::NativeJwt,
        Variant::ZtJwt,
        Variant::ZtJwtInModuleNoCache,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Variant::Bare => "bare Envoy",
            Variant::WasmNoop => "no-op Wasm filter",
            Variant::NativeJwtCached => "native jwt_authn + cache",
            Variant::NativeJwt => "native jwt_authn",
            Variant::ZtJwt => "zt-jwt",
            Variant::ZtJwtInModuleNoCache => "zt-jwt in-module, no cache",
        }
    }

    /// Whether this variant verifies tokens (and so refuses invalid ones).
    pub fn verifies(self) -> bool {
        !matches!(self, Variant::Bare | Variant::WasmNoop)
    }

    /// The native variant a user would otherwise pick for the same workload.
    pub fn native_counterpart(self, every_request_a_miss: bool) -> Option<Variant> {
        match self {
            Variant::ZtJwt if every_request_a_miss => Some(Variant::NativeJwt),
            Variant::ZtJwt => Some(Variant::NativeJwtCached),
            Variant::ZtJwtInModuleNoCache => Some(Variant::NativeJwt),
            _ => None,
        }
    }

    /// The Envoy configuration of this variant, trusting `jwks`.
    pub fn config(self, jwks: &serde_json::Value, upstream: u16, wasm_dir: &Path) -> Result<String, BedError> {
        let template = std::fs::read_to_string(bench_template())
            .map_err(BedError::io(format!("read {}", bench_template().display())))?;
        let filters = match self {
            Variant::Bare => String::new(),
            Variant::WasmNoop => ZT_JWT.replace("zt-jwt", "noop").replace("zt_jwt.wasm", "fixture_noop.wasm"),
            Variant::NativeJwtCached => native_jwt_authn(jwks, true),
            Variant::NativeJwt => native_jwt_authn(jwks, false),
            Variant::ZtJwt | Variant::ZtJwtInModuleNoCache => ZT_JWT.to_owned(),
        };
        let mut plugin: serde_json::Value =
            serde_json::from_str(&jwt_plugin_config(jwks)).map_err(|e| BedError::Token(e.to_string()))?;
        if self == Variant::ZtJwtInModuleNoCache
            && let Some(object) = plugin.as_object_mut()
        {
            object.insert("signature_verifier".into(), "in_module".into());
            object.insert("cache_entries".into(), 0.into());
        }
        let ports = Ports { upstream, ..Ports::default() };
        render(
            &template.replace("{{HTTP_FILTERS}}", filters.trim_end_matches('\n')),
            ports,
            wasm_dir,
            &plugin.to_string(),
        )
    }
}

fn bench_template() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/envoy.yaml")
}

const ZT_JWT: &str = r#"          - name: zt-jwt
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: zt-jwt
                root_id: zt-jwt
                failure_policy: FAIL_CLOSED
                vm_config:
                  vm_id: zt-jwt
                  runtime: envoy.wasm.runtime.v8
                  code: { local: { filename: "{{WASM_DIR}}/zt_jwt.wasm" } }
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: {{PLUGIN_CONFIG}}
"#;

/// Native `jwt_authn` with the same issuer, audience and keys as `jwt_plugin_config`, and like
/// `zt-jwt` removing the token before the upstream.
fn native_jwt_authn(jwks: &serde_json::Value, cached: bool) -> String {
    let jwks = serde_json::Value::String(jwks.to_string()).to_string();
    let cache = if cached { "\n                  jwt_cache_config: { jwt_cache_size: 1024 }" } else { "" };
    format!(
        r#"          - name: envoy.filters.http.jwt_authn
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication
              providers:
                demo:
                  issuer: "{issuer}"
                  audiences: ["{audience}"]
                  forward: false
                  local_jwks: {{ inline_string: {jwks} }}{cache}
              rules:
              - match: {{ prefix: "/" }}
                requires: {{ provider_name: demo }}
"#,
        issuer = crate::ISSUER,
        audience = crate::AUDIENCE,
    )
}
