//! The configurations compared: bare Envoy, Envoy's native `jwt_authn` (with and without its
//! cache), and `zt-jwt` (signatures on the host where it can, or all in the module); `jwt_authn`
//! with `rbac` against `zt-jwt` with `zt-authz`; `local_ratelimit` against `zt-ratelimit`; a JSON
//! access log against `zt-audit`; and the native chain of all four against the suite's. Each is
//! the benchmark template with its own HTTP filters (and access log); everything else is identical.

use std::path::Path;

use crate::{BedError, Ports, jwt_plugin_config, render, wasm_filter, yaml_string};

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
    /// Native `jwt_authn` (cache on, payload in dynamic metadata) then `rbac` on the `sub` claim.
    NativeJwtRbac,
    /// `zt-jwt` then `zt-authz` with the same rule (`requestPrincipals` = issuer/subject).
    ZtJwtAuthz,
    /// `envoy.filters.http.local_ratelimit`, one token bucket (shared by the workers) that never
    /// runs dry, with its `x-ratelimit-*` headers: the admission path alone.
    NativeRateLimit,
    /// `zt-ratelimit` with the same bucket (one key for all, in shared data) and its headers.
    ZtRateLimit,
    /// Envoy's file access log with a JSON format of the fields an audit record has.
    NativeAccessLog,
    /// `zt-audit` with its defaults: one chained record per request to Envoy's log.
    ZtAudit,
    /// `jwt_authn` (cache) + `rbac` + `local_ratelimit` + the JSON access log.
    NativeChain,
    /// `zt-jwt` + `zt-authz` + `zt-ratelimit` + `zt-audit`, the same rules.
    ZtChain,
    /// `zt-suite`: the same four stages and rules in one filter.
    ZtSuite,
}

impl Variant {
    pub const ALL: [Variant; 15] = [
        Variant::Bare,
        Variant::WasmNoop,
        Variant::NativeJwtCached,
        Variant::NativeJwt,
        Variant::ZtJwt,
        Variant::ZtJwtInModuleNoCache,
        Variant::NativeJwtRbac,
        Variant::ZtJwtAuthz,
        Variant::NativeRateLimit,
        Variant::ZtRateLimit,
        Variant::NativeAccessLog,
        Variant::ZtAudit,
        Variant::NativeChain,
        Variant::ZtChain,
        Variant::ZtSuite,
    ];

    /// The short name `--variants` takes.
    pub fn id(self) -> &'static str {
        match self {
            Variant::Bare => "bare",
            Variant::WasmNoop => "noop",
            Variant::NativeJwtCached => "native-cached",
            Variant::NativeJwt => "native",
            Variant::ZtJwt => "zt-jwt",
            Variant::ZtJwtInModuleNoCache => "zt-jwt-in-module",
            Variant::NativeJwtRbac => "native-rbac",
            Variant::ZtJwtAuthz => "zt-authz",
            Variant::NativeRateLimit => "native-ratelimit",
            Variant::ZtRateLimit => "zt-ratelimit",
            Variant::NativeAccessLog => "native-accesslog",
            Variant::ZtAudit => "zt-audit",
            Variant::NativeChain => "native-chain",
            Variant::ZtChain => "zt-chain",
            Variant::ZtSuite => "zt-suite",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Variant::Bare => "bare Envoy",
            Variant::WasmNoop => "no-op Wasm filter",
            Variant::NativeJwtCached => "native jwt_authn + cache",
            Variant::NativeJwt => "native jwt_authn",
            Variant::ZtJwt => "zt-jwt",
            Variant::ZtJwtInModuleNoCache => "zt-jwt in-module, no cache",
            Variant::NativeJwtRbac => "native jwt_authn + cache + rbac",
            Variant::ZtJwtAuthz => "zt-jwt + zt-authz",
            Variant::NativeRateLimit => "native local_ratelimit",
            Variant::ZtRateLimit => "zt-ratelimit",
            Variant::NativeAccessLog => "native JSON access log",
            Variant::ZtAudit => "zt-audit",
            Variant::NativeChain => "native chain (jwt_authn+cache, rbac, local_ratelimit, access log)",
            Variant::ZtChain => "zt chain (jwt, authz, ratelimit, audit)",
            Variant::ZtSuite => "zt-suite (the same four stages, one filter)",
        }
    }

    /// Whether this variant verifies tokens (and so refuses invalid ones).
    pub fn verifies(self) -> bool {
        !matches!(
            self,
            Variant::Bare
                | Variant::WasmNoop
                | Variant::NativeRateLimit
                | Variant::ZtRateLimit
                | Variant::NativeAccessLog
                | Variant::ZtAudit
        )
    }

    /// The native variant a user would otherwise pick for the same workload.
    pub fn native_counterpart(self, every_request_a_miss: bool) -> Option<Variant> {
        match self {
            Variant::ZtJwt if every_request_a_miss => Some(Variant::NativeJwt),
            Variant::ZtJwt => Some(Variant::NativeJwtCached),
            Variant::ZtJwtInModuleNoCache => Some(Variant::NativeJwt),
            // jwt_authn's cache is no help on distinct tokens: every request a miss either way.
            Variant::ZtJwtAuthz => Some(Variant::NativeJwtRbac),
            Variant::ZtRateLimit => Some(Variant::NativeRateLimit),
            Variant::ZtAudit => Some(Variant::NativeAccessLog),
            Variant::ZtChain | Variant::ZtSuite => Some(Variant::NativeChain),
            _ => None,
        }
    }

    /// The Envoy configuration of this variant, trusting `jwks`.
    pub fn config(self, jwks: &serde_json::Value, upstream: u16, wasm_dir: &Path) -> Result<String, BedError> {
        let template = std::fs::read_to_string(bench_template())
            .map_err(BedError::io(format!("read {}", bench_template().display())))?;
        let filters = match self {
            Variant::Bare => String::new(),
            Variant::WasmNoop => wasm_filter("noop", "fixture_noop.wasm", "{{PLUGIN_CONFIG}}"),
            Variant::NativeJwtCached => native_jwt_authn(jwks, true),
            Variant::NativeJwt => native_jwt_authn(jwks, false),
            Variant::ZtJwt | Variant::ZtJwtInModuleNoCache => zt_jwt(),
            Variant::NativeJwtRbac => native_jwt_rbac(jwks),
            Variant::ZtJwtAuthz => zt_jwt() + &zt_authz(),
            Variant::NativeRateLimit => NATIVE_LOCAL_RATELIMIT.to_owned(),
            Variant::ZtRateLimit => zt_ratelimit(),
            Variant::NativeAccessLog => String::new(),
            Variant::ZtAudit => zt_audit(),
            Variant::NativeChain => native_jwt_rbac(jwks) + NATIVE_LOCAL_RATELIMIT,
            Variant::ZtChain => zt_jwt() + &zt_authz() + &zt_ratelimit() + &zt_audit(),
            Variant::ZtSuite => wasm_filter("zt-suite", "zt_suite.wasm", "{{PLUGIN_CONFIG}}"),
        };
        let access_log = match self {
            Variant::NativeAccessLog | Variant::NativeChain => native_access_log(),
            _ => String::new(),
        };
        let mut plugin: serde_json::Value =
            serde_json::from_str(&jwt_plugin_config(jwks)).map_err(|e| BedError::Token(e.to_string()))?;
        if self == Variant::ZtJwtInModuleNoCache
            && let Some(object) = plugin.as_object_mut()
        {
            object.insert("signature_verifier".into(), "in_module".into());
            object.insert("cache_entries".into(), 0.into());
        }
        if self == Variant::ZtSuite {
            plugin = suite_config(plugin)?;
        }
        let ports = Ports { upstream, ..Ports::default() };
        render(
            &template
                .replace("{{HTTP_FILTERS}}", filters.trim_end_matches('\n'))
                .replace("{{ACCESS_LOG}}", access_log.trim_end_matches('\n')),
            ports,
            wasm_dir,
            &plugin.to_string(),
        )
    }
}

fn bench_template() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/envoy.yaml")
}

fn zt_jwt() -> String {
    wasm_filter("zt-jwt", "zt_jwt.wasm", "{{PLUGIN_CONFIG}}")
}

fn zt_authz() -> String {
    wasm_filter("zt-authz", "zt_authz.wasm", &yaml_string(&authz_config()))
}

fn zt_ratelimit() -> String {
    wasm_filter("zt-ratelimit", "zt_ratelimit.wasm", &yaml_string(&ratelimit_config()))
}

/// Records to Envoy's log (its default sink), the user agent copied as the access log does.
const AUDIT_CONFIG: &str = r#"{"headers": ["user-agent"]}"#;

fn zt_audit() -> String {
    wasm_filter("zt-audit", "zt_audit.wasm", &yaml_string(AUDIT_CONFIG))
}

fn native_jwt_rbac(jwks: &serde_json::Value) -> String {
    native_jwt_authn(jwks, true)
        .replace("forward: false", "forward: false\n                  payload_in_metadata: jwt_payload")
        + NATIVE_RBAC
}

/// The connection manager's file access log, JSON, with what an audit record holds that Envoy
/// knows (time, request id, source, authority, method, path, route, cluster, status, flags,
/// duration, bytes, user agent, the verified `sub` from `jwt_authn`'s metadata). Into a file
/// of the benchmark's own (Envoy buffers and flushes it), never /dev/null.
fn native_access_log() -> String {
    let path = std::env::temp_dir().join(format!("zt-bench-access-{}.log", std::process::id()));
    format!(
        r#"          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: "{}"
              log_format:
                json_format:
                  time: "%START_TIME%"
                  request_id: "%REQ(X-REQUEST-ID)%"
                  traceparent: "%REQ(TRACEPARENT)%"
                  source: "%DOWNSTREAM_REMOTE_ADDRESS%"
                  peer: "%DOWNSTREAM_PEER_URI_SAN%"
                  authority: "%REQ(:AUTHORITY)%"
                  method: "%REQ(:METHOD)%"
                  path: "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"
                  route: "%ROUTE_NAME%"
                  cluster: "%UPSTREAM_CLUSTER%"
                  status: "%RESPONSE_CODE%"
                  flags: "%RESPONSE_FLAGS%"
                  details: "%RESPONSE_CODE_DETAILS%"
                  duration_ms: "%DURATION%"
                  bytes_in: "%BYTES_RECEIVED%"
                  bytes_out: "%BYTES_SENT%"
                  user_agent: "%REQ(USER-AGENT)%"
                  sub: "%DYNAMIC_METADATA(envoy.filters.http.jwt_authn:jwt_payload:sub)%""#,
        path.display()
    )
}

/// The suite's configuration: the JWT filter's as its `jwt` section, and the same sections the
/// single filters of the chain get.
fn suite_config(jwt: serde_json::Value) -> Result<serde_json::Value, BedError> {
    let section =
        |text: String| serde_json::from_str::<serde_json::Value>(&text).map_err(|e| BedError::Token(e.to_string()));
    Ok(serde_json::json!({
        "jwt": jwt,
        "authz": section(authz_config())?,
        "ratelimit": section(ratelimit_config())?,
        "audit": section(AUDIT_CONFIG.to_owned())?,
    }))
}

/// The rule both authorization variants enforce: the caller is the demo subject of the demo
/// issuer (default deny otherwise).
fn authz_config() -> String {
    serde_json::json!({
        "policies": {"demo-user": {"action": "ALLOW", "rules": [{
            "from": [{"source": {"requestPrincipals": [format!("{}/{}", crate::ISSUER, crate::SUBJECT)]}}]
        }]}},
        "defaults": {"policies": ["demo-user"]},
    })
    .to_string()
}

/// The bucket both rate-limit variants apply: one for all requests, a billion a second, so that
/// every request is admitted and the cost measured is that of admission and its headers.
fn ratelimit_config() -> String {
    serde_json::json!({
        "limits": {"all": {"quota": 1_000_000_000, "window_seconds": 1, "key": []}},
        "defaults": {"limits": ["all"]},
        "headers": {"on_admitted": true, "x_ratelimit": true},
    })
    .to_string()
}

const NATIVE_LOCAL_RATELIMIT: &str = r#"          - name: envoy.filters.http.local_ratelimit
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
              stat_prefix: bench
              token_bucket: { max_tokens: 1000000000, tokens_per_fill: 1000000000, fill_interval: 1s }
              filter_enabled: { default_value: { numerator: 100, denominator: HUNDRED }, runtime_key: rl_enabled }
              filter_enforced: { default_value: { numerator: 100, denominator: HUNDRED }, runtime_key: rl_enforced }
              enable_x_ratelimit_headers: DRAFT_VERSION_03
"#;

/// `rbac` on the verified payload `jwt_authn` left in dynamic metadata: the same rule.
const NATIVE_RBAC: &str = r#"          - name: envoy.filters.http.rbac
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
              rules:
                action: ALLOW
                policies:
                  demo-user:
                    permissions: [{ any: true }]
                    principals:
                    - metadata:
                        filter: envoy.filters.http.jwt_authn
                        path: [{ key: jwt_payload }, { key: sub }]
                        value: { string_match: { exact: "demo-user" } }  # tokens.rs SUBJECT
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
