//! Where a provider's remote keys come from: a JWKS URI on an Envoy cluster, or an OpenID
//! Connect issuer whose discovery document names the JWKS URI. Validated at configuration
//! time; nothing here touches the network.

use std::collections::BTreeMap;

use crate::config_error::ConfigError;
use crate::shared_name::Definition;
use serde::Deserialize;

// The timing fields are repeated in both sources rather than `#[serde(flatten)]`ed: flatten
// disables `deny_unknown_fields` and loses the JSON path of errors.

/// `jwks: {"remote": {...}}`: keys fetched from a JWKS URI through an Envoy cluster.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteJwksJson {
    /// The Envoy cluster the request is sent to (it decides TLS and the address).
    pub cluster: String,
    /// `http(s)://authority/path`: the authority becomes `:authority`, the path `:path`.
    pub uri: String,
    /// Default 600. How long fetched keys are considered fresh; a refresh starts in the
    /// background when four fifths of it have passed. Between 10 and 86400.
    #[serde(default = "default_cache_duration")]
    pub cache_duration_seconds: u64,
    /// Default 5000. Timeout of each fetch. Between 100 and 60000.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Default 60. A token naming a `kid` the keys lack triggers a refetch at most this often
    /// (per provider, counted from the last fetch of any worker): a stream of made-up `kid`s
    /// cannot turn into a stream of fetches. Between 1 and 86400.
    #[serde(default = "default_kid_refetch")]
    pub unknown_kid_refetch_interval_seconds: u64,
}

/// `jwks: {"oidc_discovery": {...}}`: keys found through `<issuer>/.well-known/openid-configuration`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcDiscoveryJson {
    /// The cluster serving the issuer's discovery document (and its JWKS when the `jwks_uri`
    /// has the issuer's authority).
    pub cluster: String,
    /// Default none. Clusters for JWKS URIs on other authorities, e.g.
    /// `{"keys.example.com": "idp_keys"}`. A `jwks_uri` on an authority that is neither the
    /// issuer's nor listed here is refused: discovery never sends the proxy somewhere new.
    #[serde(default)]
    pub jwks_clusters: BTreeMap<String, String>,
    /// Default 600. How long fetched keys are considered fresh; a refresh starts in the
    /// background when four fifths of it have passed. Between 10 and 86400.
    #[serde(default = "default_cache_duration")]
    pub cache_duration_seconds: u64,
    /// Default 5000. Timeout of each fetch. Between 100 and 60000.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Default 60. A token naming a `kid` the keys lack triggers a refetch at most this often
    /// (per provider, counted from the last fetch of any worker): a stream of made-up `kid`s
    /// cannot turn into a stream of fetches. Between 1 and 86400.
    #[serde(default = "default_kid_refetch")]
    pub unknown_kid_refetch_interval_seconds: u64,
}

fn default_cache_duration() -> u64 {
    600
}
fn default_timeout_ms() -> u64 {
    5000
}
fn default_kid_refetch() -> u64 {
    60
}

/// A validated fetch policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPolicy {
    pub cache_duration_seconds: u64,
    pub timeout_ms: u64,
    pub unknown_kid_refetch_interval_seconds: u64,
}

impl FetchPolicy {
    fn validate(
        (cache_duration_seconds, timeout_ms, unknown_kid_refetch_interval_seconds): (u64, u64, u64),
        path: &str,
    ) -> Result<Self, ConfigError> {
        let range = |field: &str, value: u64, min: u64, max: u64| {
            if (min..=max).contains(&value) {
                Ok(value)
            } else {
                Err(ConfigError::new(format!("{path}.{field}"), format!("must be between {min} and {max}")))
            }
        };
        Ok(Self {
            cache_duration_seconds: range("cache_duration_seconds", cache_duration_seconds, 10, 86_400)?,
            timeout_ms: range("timeout_ms", timeout_ms, 100, 60_000)?,
            unknown_kid_refetch_interval_seconds: range(
                "unknown_kid_refetch_interval_seconds",
                unknown_kid_refetch_interval_seconds,
                1,
                86_400,
            )?,
        })
    }

    /// Seconds after a successful fetch at which the background refresh starts.
    pub fn refresh_after(&self) -> u64 {
        (self.cache_duration_seconds.saturating_mul(4) / 5).max(1)
    }
}

/// One HTTP GET target: cluster, `:authority`, `:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchTarget {
    pub cluster: String,
    pub authority: String,
    pub path: String,
}

/// A validated remote key source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteSource {
    Jwks {
        target: FetchTarget,
        policy: FetchPolicy,
    },
    OidcDiscovery {
        discovery: FetchTarget,
        issuer_authority: String,
        jwks_clusters: BTreeMap<String, String>,
        policy: FetchPolicy,
    },
}

impl RemoteSource {
    pub fn from_remote(json: &RemoteJwksJson, path: &str) -> Result<Self, ConfigError> {
        let cluster = validate_cluster(&json.cluster, &format!("{path}.cluster"))?;
        let (authority, uri_path) =
            split_http_uri(&json.uri).map_err(|why| ConfigError::new(format!("{path}.uri"), why))?;
        Ok(RemoteSource::Jwks {
            target: FetchTarget { cluster, authority, path: uri_path },
            policy: FetchPolicy::validate(
                (json.cache_duration_seconds, json.timeout_ms, json.unknown_kid_refetch_interval_seconds),
                path,
            )?,
        })
    }

    /// `issuer` is the provider's configured issuer: the discovery document lives under it
    /// (OpenID Connect Discovery 1.0 §4).
    pub fn from_discovery(json: &OidcDiscoveryJson, issuer: &str, path: &str) -> Result<Self, ConfigError> {
        let cluster = validate_cluster(&json.cluster, &format!("{path}.cluster"))?;
        let (authority, issuer_path) = split_http_uri(issuer).map_err(|why| {
            ConfigError::new(path, format!("OpenID discovery needs an issuer that is an http(s) URL: {why}"))
        })?;
        if issuer_path.contains('?') {
            return Err(ConfigError::new(path, "OpenID discovery needs an issuer without a query"));
        }
        let discovery_path = format!("{}/.well-known/openid-configuration", issuer_path.trim_end_matches('/'));
        for (i, (mapped_authority, mapped_cluster)) in json.jwks_clusters.iter().enumerate() {
            if mapped_authority.is_empty() || mapped_authority.contains(['/', '@', ' ']) {
                return Err(ConfigError::new(
                    format!("{path}.jwks_clusters"),
                    format!("entry {i}: `{mapped_authority}` is not an authority (host[:port])"),
                ));
            }
            validate_cluster(mapped_cluster, &format!("{path}.jwks_clusters.{mapped_authority}"))?;
        }
        Ok(RemoteSource::OidcDiscovery {
            discovery: FetchTarget { cluster, authority: authority.clone(), path: discovery_path },
            issuer_authority: authority,
            jwks_clusters: json.jwks_clusters.clone(),
            policy: FetchPolicy::validate(
                (json.cache_duration_seconds, json.timeout_ms, json.unknown_kid_refetch_interval_seconds),
                path,
            )?,
        })
    }

    pub fn policy(&self) -> &FetchPolicy {
        match self {
            RemoteSource::Jwks { policy, .. } | RemoteSource::OidcDiscovery { policy, .. } => policy,
        }
    }

    /// The JWKS target, when it is known without discovery.
    pub fn configured_jwks(&self) -> Option<&FetchTarget> {
        match self {
            RemoteSource::Jwks { target, .. } => Some(target),
            RemoteSource::OidcDiscovery { .. } => None,
        }
    }

    /// Where a discovered `jwks_uri` may be fetched from: the issuer's own cluster for the
    /// issuer's authority, a mapped cluster for another, and nowhere else.
    pub fn jwks_target_for(&self, jwks_uri: &str) -> Result<FetchTarget, String> {
        let RemoteSource::OidcDiscovery { discovery, issuer_authority, jwks_clusters, .. } = self else {
            return Err("not a discovery source".to_owned());
        };
        let (authority, path) = split_http_uri(jwks_uri).map_err(|why| format!("jwks_uri: {why}"))?;
        let cluster = if authority.eq_ignore_ascii_case(issuer_authority) {
            discovery.cluster.clone()
        } else {
            jwks_clusters.get(&authority).cloned().ok_or_else(|| {
                format!("jwks_uri authority `{authority}` is neither the issuer's nor in jwks_clusters")
            })?
        };
        Ok(FetchTarget { cluster, authority, path })
    }
}

impl RemoteSource {
    /// The name under which a provider's keys live in shared data: `<provider>.<digest>`, the
    /// digest covering the issuer and where the keys come from (cluster, authority and path of
    /// the JWKS or of the discovery document, and the discovery's `jwks_clusters`), so that a
    /// configuration sharing the `vm_id` with a provider of the same name never adopts these
    /// keys (see [`crate::shared_name`]). The same issuer at the same location is the same key
    /// set, and shares one record and one fetch. The fetch timings are left out: they change
    /// when keys are fetched, not which keys.
    pub fn shared_name(&self, provider: &str, issuer: &str) -> String {
        let mut definition = Definition::new("zt-jwt.jwks/1");
        definition.field(issuer.as_bytes());
        match self {
            RemoteSource::Jwks { target, .. } => {
                definition.field(b"remote");
                for part in [&target.cluster, &target.authority, &target.path] {
                    definition.field(part.as_bytes());
                }
            }
            RemoteSource::OidcDiscovery { discovery, jwks_clusters, .. } => {
                definition.field(b"oidc_discovery");
                for part in [&discovery.cluster, &discovery.authority, &discovery.path] {
                    definition.field(part.as_bytes());
                }
                definition.number(jwks_clusters.len() as u64);
                // A `BTreeMap`: its order is canonical.
                for (authority, cluster) in jwks_clusters {
                    definition.field(authority.as_bytes()).field(cluster.as_bytes());
                }
            }
        }
        definition.name(provider)
    }
}

fn validate_cluster(cluster: &str, path: &str) -> Result<String, ConfigError> {
    if cluster.is_empty() || cluster.contains(char::is_whitespace) {
        return Err(ConfigError::new(path, "must be the name of an Envoy cluster"));
    }
    Ok(cluster.to_owned())
}

/// Splits `http(s)://authority[/path][?query]` into the authority and the path with its query.
/// Fragments and user information are refused; an empty path is `/`.
pub fn split_http_uri(uri: &str) -> Result<(String, String), &'static str> {
    let rest = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))
        .ok_or("must start with https:// or http://")?;
    if rest.contains('#') {
        return Err("must not have a fragment");
    }
    if rest.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err("must not contain spaces or control characters");
    }
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.is_empty() {
        return Err("has no host");
    }
    if authority.contains('@') {
        return Err("must not carry user information");
    }
    let path = if path.is_empty() {
        "/".to_owned()
    } else if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };
    Ok((authority.to_owned(), path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn discovery(jwks_clusters: BTreeMap<String, String>) -> OidcDiscoveryJson {
        let json = serde_json::json!({"cluster": "idp", "jwks_clusters": jwks_clusters});
        serde_json::from_value(json).unwrap()
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn uris_split_into_authority_and_path() {
        let split = |uri| split_http_uri(uri);
        assert_eq!(split("https://idp.test/keys"), Ok(("idp.test".into(), "/keys".into())));
        assert_eq!(split("http://127.0.0.1:8080"), Ok(("127.0.0.1:8080".into(), "/".into())));
        assert_eq!(split("https://idp.test?x=1"), Ok(("idp.test".into(), "/?x=1".into())));
        assert!(split("ftp://idp.test/keys").is_err());
        assert!(split("https://user@idp.test/keys").is_err());
        assert!(split("https:///keys").is_err());
        assert!(split("https://idp.test/keys#frag").is_err());
        assert!(split("https://idp.test/a b").is_err());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn discovery_lives_under_the_issuer() {
        let json = discovery(BTreeMap::new());
        let source = RemoteSource::from_discovery(&json, "https://idp.test/realms/a/", "p").unwrap();
        let RemoteSource::OidcDiscovery { discovery, .. } = &source else { panic!() };
        assert_eq!(discovery.path, "/realms/a/.well-known/openid-configuration");
        assert_eq!(discovery.authority, "idp.test");
        let err = RemoteSource::from_discovery(&json, "issuer-name", "providers[0].jwks.oidc_discovery").unwrap_err();
        assert_eq!(err.path, "providers[0].jwks.oidc_discovery");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_discovered_jwks_uri_goes_only_to_known_clusters() {
        let mut mapped = BTreeMap::new();
        mapped.insert("keys.test".to_owned(), "idp_keys".to_owned());
        let json = discovery(mapped);
        let source = RemoteSource::from_discovery(&json, "https://idp.test", "p").unwrap();
        assert_eq!(source.jwks_target_for("https://idp.test/certs").unwrap().cluster, "idp");
        let other = source.jwks_target_for("https://keys.test/jwks").unwrap();
        assert_eq!((other.cluster.as_str(), other.path.as_str()), ("idp_keys", "/jwks"));
        assert!(source.jwks_target_for("https://evil.test/jwks").unwrap_err().contains("evil.test"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn timings_are_bounded_and_named() {
        let json = serde_json::json!({"cluster": "idp", "uri": "https://idp.test/k", "cache_duration_seconds": 1});
        let remote: RemoteJwksJson = serde_json::from_value(json).unwrap();
        let err = RemoteSource::from_remote(&remote, "providers[0].jwks.remote").unwrap_err();
        assert_eq!(err.path, "providers[0].jwks.remote.cache_duration_seconds");
        let ok =
            FetchPolicy { cache_duration_seconds: 600, timeout_ms: 5000, unknown_kid_refetch_interval_seconds: 60 };
        assert_eq!(ok.refresh_after(), 480);
    }
}
