//! The JWT filter's configuration: serde structs as written by the operator, then validated
//! types. Every error names the JSON path of the field at fault.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::algorithm::Algorithm;
use super::claim_headers::{ClaimHeader, validate as validate_claim_headers, validate_header_name};
use super::claims::{ClaimRules, IssuerRule, TenantIssuer};
use super::error::JwtError;
use super::hmac_keys::{HmacKeyJson, import_hmac_keys};
use super::keys::{KeySet, KeyUse};
use super::next_hop::{NextHop, NextHopJson};
use super::remote::{OidcDiscoveryJson, ProviderId, RemoteJwksJson, RemoteSource};
use super::requirement::{Requirements, RequirementsJson};
use super::sources::TokenSource;
use crate::config_error::ConfigError;
use crate::spiffe::{SpiffeId, check_trust_domain};

/// The plugin configuration as JSON (`config.configuration` of the Envoy Wasm filter).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtFilterConfigJson {
    /// Realm named in `WWW-Authenticate` (RFC 6750 §3). Default `zt`. Printable ASCII without
    /// `"` or `\`, since it is sent inside a quoted string.
    #[serde(default = "default_realm")]
    pub realm: String,
    /// Token issuers. At least one; a token is matched to its provider by `iss`.
    pub providers: Vec<ProviderJson>,
    /// Default `false`: every token source (headers, the query parameter, the cookie) is removed
    /// from the request, so the upstream never sees a token it could replay. `true` forwards a
    /// verified token unchanged; a token that did not verify (on `allow_missing`, `allow_failed`
    /// or `advisory` routes) and the caller's token on `next_hop_token` routes are still removed.
    #[serde(default)]
    pub forward_token: bool,
    /// Default none. Verified claims set as request headers for the upstream, e.g.
    /// `[{"claim": "sub", "header": "x-user"}]`. Every listed header is first removed from every
    /// request, so a client can never supply one.
    #[serde(default)]
    pub claim_headers: Vec<ClaimHeader>,
    /// Default none. A request header that receives the verified claims as base64url JSON
    /// (like `jwt_authn`'s `forward_payload_header`), for upstreams that cannot read filter
    /// state. Removed from every request first, so a client cannot supply it.
    #[serde(default)]
    pub payload_header: Option<String>,
    /// Default 8192. Longer tokens are refused before any decoding; raising it raises the
    /// work an anonymous client can make the filter do.
    #[serde(default = "default_max_token_bytes")]
    pub max_token_bytes: usize,
    /// Default `auto`: RS* and ES* signatures are verified by the host (Envoy's BoringSSL
    /// through `verify_signature`) when a probe at start shows it works, the rest in the
    /// module. `in_module` verifies everything with `jwt-simple` inside the VM (slower; for
    /// hosts whose function misbehaves, and for benchmarks).
    #[serde(default)]
    pub signature_verifier: SignatureVerifierChoice,
    /// Default 1024 per worker. Verified tokens kept (by SHA-256) until their `exp`, so that a
    /// repeated token skips the signature check; 0 disables the cache. At most 100000.
    #[serde(default = "default_cache_entries")]
    pub cache_entries: usize,
    /// Default none. Minting of scoped tokens for upstreams (see `next_hop.rs`); requirements
    /// choose a profile with `next_hop_token`.
    #[serde(default)]
    pub next_hop: Option<NextHopJson>,
    /// What routes require: by default a valid token of any provider on every route.
    #[serde(default)]
    pub requirements: RequirementsJson,
    /// Default `false`. `true` records the stage's time on each request in the histogram
    /// `zt_jwt.latency_us` (microseconds, from the stage's start to its decision, waits for keys or a service included); costs clock reads and a metric
    /// call per request.
    #[serde(default)]
    pub latency_histogram: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureVerifierChoice {
    #[default]
    Auto,
    InModule,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderJson {
    /// Unique name, reported in the identity and in logs.
    pub name: String,
    /// Exact `iss` value (RFC 7519 §4.1.1), or a multi-tenant template holding `{tenantid}`
    /// once (then `tenants` lists the tenants). Required, except for a `spiffe` provider
    /// whose JWT-SVIDs carry no `iss`.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Default none. With an `issuer` template: the tenants whose tokens are accepted; the
    /// token's `iss` must be the template with one of them in place of `{tenantid}`, and its
    /// `tid` that same tenant. Never "any tenant".
    #[serde(default)]
    pub tenants: Vec<String>,
    /// Accepted `aud` values; at least one must appear in the token. Required unless
    /// `client_ids` bind the token instead.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Default none. Accepted OAuth clients: the token must name one in `client_id` or `azp`,
    /// and every one of those it carries must be listed. For issuers whose access tokens carry
    /// no `aud` (Amazon Cognito); with `audiences`, both must hold.
    #[serde(default)]
    pub client_ids: Vec<String>,
    /// Default none. Makes this a SPIFFE JWT-SVID provider: its key source is read as a SPIFFE
    /// trust bundle, `sub` must be a SPIFFE ID in `trust_domain`, and the ID is handed on as
    /// the caller's workload identity.
    #[serde(default)]
    pub spiffe: Option<SpiffeJson>,
    /// Where the verification keys come from. Optional only when `hmac_keys` are given.
    pub jwks: Option<JwksSourceJson>,
    /// Default none. Shared secrets for HS256/384/512 tokens of this provider only.
    #[serde(default)]
    pub hmac_keys: Vec<HmacKeyJson>,
    /// Default: what the provider's keys declare. A JWK's `alg` when it has one; without it,
    /// RS256/RS384/RS512 for RSA keys (never PS*), ES256 for P-256, ES384 for P-384, EdDSA for
    /// Ed25519; an HMAC secret its own `alg`. A list (e.g. `["RS256", "PS256"]`, names as RFC
    /// 7518 spells them) replaces that default for every key of the provider, inline or fetched;
    /// a token whose header names another algorithm is refused (`algorithm_not_allowed`) before
    /// any signature work. Listing PS* or EdDSA lets any client make the module verify them.
    #[serde(default)]
    pub algorithms: Option<Vec<String>>,
    /// Default `[{"header": {"name": "authorization", "value_prefix": "Bearer "}}]`. Where this
    /// provider's tokens may be found: `header` (with a prefix), `query`, `cookie`.
    #[serde(default = "default_token_sources")]
    pub token_sources: Vec<TokenSource>,
    /// Default 60. Tolerance for `exp`, `nbf` and `iat` against the proxy's clock; at most 300.
    #[serde(default = "default_clock_skew")]
    pub clock_skew_seconds: u64,
    /// Default 86400 (one day). Tokens whose `exp` lies further after `iat` (or after now,
    /// without `iat`) are refused.
    #[serde(default = "default_max_lifetime")]
    pub max_lifetime_seconds: u64,
    /// Default `false`: a token without `exp` is refused. `true` accepts tokens that never
    /// expire; dangerous, since such a token, once leaked, is valid forever.
    #[serde(default)]
    pub dangerous_allow_missing_expiration: bool,
    /// Default none. Claims that must hold a value, e.g. `{"email_verified": true}`; an array
    /// claim must contain a scalar value. Checked in name order after the registered claims.
    #[serde(default)]
    pub required_claims: serde_json::Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpiffeJson {
    /// The trust domain whose workloads this provider vouches for, e.g. `example.org`.
    pub trust_domain: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum JwksSourceJson {
    /// A JWKS as a JSON object, or a string holding one.
    #[serde(rename = "inline")]
    Inline(Value),
    /// A JWKS fetched from a URI through an Envoy cluster.
    #[serde(rename = "remote")]
    Remote(RemoteJwksJson),
    /// A JWKS found through the issuer's OpenID Connect discovery document.
    #[serde(rename = "oidc_discovery")]
    OidcDiscovery(OidcDiscoveryJson),
}

fn default_realm() -> String {
    "zt".to_owned()
}
fn default_max_token_bytes() -> usize {
    8192
}
fn default_token_sources() -> Vec<TokenSource> {
    vec![TokenSource::bearer()]
}
fn default_cache_entries() -> usize {
    1024
}
fn default_clock_skew() -> u64 {
    60
}
fn default_max_lifetime() -> u64 {
    86_400
}

const MAX_CLOCK_SKEW: u64 = 300;

/// A validated provider.
pub struct Provider {
    pub name: String,
    pub token_sources: Vec<TokenSource>,
    pub rules: ClaimRules,
    /// Inline JWKS keys and shared secrets, fixed for the life of the configuration.
    pub keys: KeySet,
    /// Where remote keys are fetched from, if anywhere.
    pub remote: Option<RemoteSource>,
    /// The configured `algorithms`; `None`: each key's default (see [`super::VerifyingKey::accepts_by_default`]).
    pub algorithms: Option<Vec<Algorithm>>,
    /// Which JWKs of its key source verify its tokens.
    pub key_use: KeyUse,
}

impl Provider {
    /// The issuer as shared-data names and discovery know it: the exact `iss`, the tenant
    /// template, or for JWT-SVIDs without `iss` the trust domain's ID.
    pub fn issuer_label(&self) -> String {
        match (&self.rules.issuer, self.spiffe_trust_domain()) {
            (IssuerRule::Absent, Some(domain)) => format!("spiffe://{domain}"),
            (rule, _) => rule.label().to_owned(),
        }
    }

    /// The trust domain of a JWT-SVID provider.
    pub fn spiffe_trust_domain(&self) -> Option<&str> {
        self.rules.spiffe_trust_domain.as_deref()
    }
}

/// The validated configuration.
pub struct JwtFilterConfig {
    pub requirements: Requirements,
    pub signature_verifier: SignatureVerifierChoice,
    pub cache_entries: usize,
    pub realm: String,
    pub providers: Vec<Provider>,
    /// Every provider's token sources, each once: a request is searched in all of them.
    pub token_sources: Vec<TokenSource>,
    pub forward_token: bool,
    pub claim_headers: Vec<ClaimHeader>,
    pub payload_header: Option<String>,
    pub max_token_bytes: usize,
    pub next_hop: Option<NextHop>,
    /// Whether the stage's time per request goes to the histogram `zt_jwt.latency_us`.
    pub latency_histogram: bool,
}

impl JwtFilterConfig {
    /// Parses and validates the plugin configuration bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        Self::try_from(ConfigError::parse_json::<JwtFilterConfigJson>(bytes)?)
    }

    /// The provider a token belongs to: the one admitting its `iss`, or, for a token without
    /// `iss`, the JWT-SVID provider without an issuer whose trust domain is its `sub`'s.
    pub fn provider_for(&self, claims: &Map<String, Value>) -> Result<(ProviderId, &Provider), JwtError> {
        let mut providers = self.providers.iter().enumerate();
        let found = match claims.get("iss") {
            Some(Value::String(iss)) => {
                providers.find(|(_, p)| p.rules.issuer.admits(iss)).ok_or(JwtError::UnknownIssuer)
            }
            Some(_) => Err(JwtError::ClaimInvalid { claim: "iss" }),
            None => {
                let sub = claims.get("sub").and_then(Value::as_str).and_then(|sub| SpiffeId::parse(sub).ok());
                let domain = sub.map(|id| id.trust_domain).ok_or(JwtError::IssuerMissing)?;
                providers
                    .find(|(_, p)| p.rules.issuer == IssuerRule::Absent && p.spiffe_trust_domain() == Some(domain))
                    .ok_or(JwtError::IssuerMissing)
            }
        };
        found.map(|(i, p)| (ProviderId(i), p))
    }

    /// The provider of this `name`.
    pub fn provider_named(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.name == name)
    }
}

impl TryFrom<JwtFilterConfigJson> for JwtFilterConfig {
    type Error = ConfigError;

    fn try_from(json: JwtFilterConfigJson) -> Result<Self, ConfigError> {
        if json.realm.is_empty() || !json.realm.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\') {
            return Err(ConfigError::new("realm", "must be non-empty printable ASCII without `\"` or `\\`"));
        }
        if !(256..=65_536).contains(&json.max_token_bytes) {
            return Err(ConfigError::new("max_token_bytes", "must be between 256 and 65536"));
        }
        if json.providers.is_empty() {
            return Err(ConfigError::new("providers", "must not be empty"));
        }
        let mut providers: Vec<Provider> = Vec::with_capacity(json.providers.len());
        for (i, provider) in json.providers.into_iter().enumerate() {
            let provider = validate_provider(provider, &format!("providers[{i}]"))?;
            if let Some(j) = providers.iter().position(|p| p.name == provider.name) {
                return Err(ConfigError::new(
                    format!("providers[{i}].name"),
                    format!("duplicates providers[{j}].name"),
                ));
            }
            let issuers = provider.rules.issuer.values();
            if let Some(j) =
                providers.iter().position(|p| p.rules.issuer.values().iter().any(|iss| issuers.contains(iss)))
            {
                return Err(ConfigError::new(
                    format!("providers[{i}].issuer"),
                    format!("duplicates providers[{j}].issuer: a token must match one provider"),
                ));
            }
            if provider.rules.issuer == IssuerRule::Absent
                && let Some(j) = providers.iter().position(|p| {
                    p.rules.issuer == IssuerRule::Absent && p.spiffe_trust_domain() == provider.spiffe_trust_domain()
                })
            {
                return Err(ConfigError::new(
                    format!("providers[{i}].spiffe.trust_domain"),
                    format!(
                        "duplicates providers[{j}].spiffe.trust_domain, both without issuer: a JWT-SVID must match one provider"
                    ),
                ));
            }
            providers.push(provider);
        }
        if json.cache_entries > 100_000 {
            return Err(ConfigError::new("cache_entries", "must be at most 100000"));
        }
        let mut token_sources: Vec<TokenSource> = Vec::new();
        for source in providers.iter().flat_map(|p| &p.token_sources) {
            if !token_sources.contains(source) {
                token_sources.push(source.clone());
            }
        }
        validate_claim_headers(&json.claim_headers, "claim_headers")?;
        if let Some(header) = &json.payload_header {
            validate_header_name(header, "payload_header")?;
            if json.claim_headers.iter().any(|m| m.header == *header) {
                return Err(ConfigError::new("payload_header", "is also a claim_headers header"));
            }
        }
        let names: Vec<String> = providers.iter().map(|p| p.name.clone()).collect();
        let next_hop = json.next_hop.map(|n| NextHop::validate(n, "next_hop")).transpose()?;
        let profiles = next_hop.as_ref().map(NextHop::profile_names).unwrap_or_default();
        let requirements = Requirements::validate(json.requirements, &names, &profiles, "requirements")?;
        check_all_of_sources(&requirements, &providers)?;
        Ok(Self {
            requirements,
            signature_verifier: json.signature_verifier,
            cache_entries: json.cache_entries,
            token_sources,
            realm: json.realm,
            providers,
            forward_token: json.forward_token,
            claim_headers: json.claim_headers,
            payload_header: json.payload_header,
            next_hop,
            max_token_bytes: json.max_token_bytes,
            latency_histogram: json.latency_histogram,
        })
    }
}

/// Providers required together must take their tokens from different places: one place holds
/// one token.
fn check_all_of_sources(requirements: &Requirements, providers: &[Provider]) -> Result<(), ConfigError> {
    for requirement in requirements.all() {
        let Some(all) = &requirement.all_of else { continue };
        let listed: Vec<&Provider> = all.iter().filter_map(|name| providers.iter().find(|p| p.name == *name)).collect();
        for (i, a) in listed.iter().enumerate() {
            for b in listed.iter().skip(i + 1) {
                if a.token_sources.iter().any(|source| b.token_sources.contains(source)) {
                    let at = if requirement.name == "default" {
                        "requirements.default.all_of".to_owned()
                    } else {
                        format!("requirements.named.{}.all_of", requirement.name)
                    };
                    return Err(ConfigError::new(
                        at,
                        format!("providers `{}` and `{}` share a token source", a.name, b.name),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn validate_provider(json: ProviderJson, path: &str) -> Result<Provider, ConfigError> {
    let err = |field: &str, message: &str| ConfigError::new(format!("{path}.{field}"), message);
    if json.name.trim().is_empty() {
        return Err(err("name", "must not be empty"));
    }
    let spiffe_trust_domain = match &json.spiffe {
        Some(spiffe) => {
            check_trust_domain(&spiffe.trust_domain)
                .map_err(|why| err("spiffe.trust_domain", &format!("\"{}\" {why}", spiffe.trust_domain)))?;
            if json.dangerous_allow_missing_expiration {
                return Err(err("dangerous_allow_missing_expiration", "a JWT-SVID must carry `exp` (JWT-SVID §3)"));
            }
            if !json.hmac_keys.is_empty() {
                return Err(err("hmac_keys", "a JWT-SVID provider takes its keys from its trust bundle only"));
            }
            if json.audiences.is_empty() {
                return Err(err(
                    "audiences",
                    "must not be empty: a JWT-SVID is always checked against its audience (JWT-SVID §3)",
                ));
            }
            Some(spiffe.trust_domain.clone())
        }
        None => None,
    };
    let issuer = issuer_rule(&json, path)?;
    if json.audiences.is_empty() && json.client_ids.is_empty() {
        return Err(err(
            "audiences",
            "must not be empty unless `client_ids` bind the token to this API: a token for any audience would be accepted",
        ));
    }
    for (field, list) in [("audiences", &json.audiences), ("client_ids", &json.client_ids)] {
        if let Some(i) = list.iter().position(String::is_empty) {
            return Err(ConfigError::new(format!("{path}.{field}[{i}]"), "must not be empty"));
        }
    }
    if json.clock_skew_seconds > MAX_CLOCK_SKEW {
        return Err(err("clock_skew_seconds", "must be at most 300"));
    }
    if json.max_lifetime_seconds == 0 {
        return Err(err("max_lifetime_seconds", "must be positive"));
    }
    if json.token_sources.is_empty() {
        return Err(err("token_sources", "must not be empty"));
    }
    for (i, source) in json.token_sources.iter().enumerate() {
        let name = match source {
            TokenSource::Header { name, .. } | TokenSource::Query { name } | TokenSource::Cookie { name } => name,
        };
        if name.is_empty() || name.contains([' ', '=', ';', '&']) {
            return Err(ConfigError::new(
                format!("{path}.token_sources[{i}]"),
                "needs a name without spaces, `=`, `;` or `&`",
            ));
        }
    }
    let algorithms =
        json.algorithms.as_deref().map(|names| algorithms(names, &format!("{path}.algorithms"))).transpose()?;
    let key_use = if spiffe_trust_domain.is_some() { KeyUse::JwtSvid } else { KeyUse::Signature };
    let (mut keys, remote) = match &json.jwks {
        Some(JwksSourceJson::Inline(jwks)) => (KeySet::from_jwks(jwks, key_use, &format!("{path}.jwks.inline"))?, None),
        Some(JwksSourceJson::Remote(remote)) => {
            (KeySet::empty(), Some(RemoteSource::from_remote(remote, &format!("{path}.jwks.remote"))?))
        }
        Some(JwksSourceJson::OidcDiscovery(discovery)) => {
            let IssuerRule::Exact(issuer) = &issuer else {
                return Err(err(
                    "jwks.oidc_discovery",
                    "needs one exact issuer to discover (for a tenant template or a JWT-SVID provider without issuer, use jwks.remote)",
                ));
            };
            let source = RemoteSource::from_discovery(discovery, issuer, &format!("{path}.jwks.oidc_discovery"))?;
            (KeySet::empty(), Some(source))
        }
        None if json.hmac_keys.is_empty() => return Err(err("jwks", "missing (or give hmac_keys)")),
        None => (KeySet::empty(), None),
    };
    keys.extend(import_hmac_keys(&json.hmac_keys, &format!("{path}.hmac_keys"))?, &format!("{path}.hmac_keys"))?;
    Ok(Provider {
        name: json.name,
        token_sources: json.token_sources,
        rules: ClaimRules {
            issuer,
            audiences: json.audiences,
            client_ids: json.client_ids,
            spiffe_trust_domain,
            clock_skew_seconds: json.clock_skew_seconds,
            require_expiration: !json.dangerous_allow_missing_expiration,
            max_lifetime_seconds: json.max_lifetime_seconds,
            required: json.required_claims.into_iter().collect(),
        },
        keys,
        remote,
        algorithms,
        key_use,
    })
}

/// `{tenantid}` in an issuer: Entra ID's multi-tenant discovery publishes
/// `https://login.microsoftonline.com/{tenantid}/v2.0`.
const TENANT_PLACEHOLDER: &str = "{tenantid}";

/// The provider's `issuer` and `tenants` as one rule.
fn issuer_rule(json: &ProviderJson, path: &str) -> Result<IssuerRule, ConfigError> {
    let err = |field: &str, message: &str| ConfigError::new(format!("{path}.{field}"), message);
    let Some(issuer) = &json.issuer else {
        if json.spiffe.is_none() {
            return Err(err(
                "issuer",
                "missing (only a `spiffe` provider, for JWT-SVIDs without `iss`, may leave it out)",
            ));
        }
        if !json.tenants.is_empty() {
            return Err(err("tenants", "needs an `issuer` template holding `{tenantid}`"));
        }
        return Ok(IssuerRule::Absent);
    };
    if issuer.is_empty() {
        return Err(err("issuer", "must not be empty"));
    }
    match issuer.matches(TENANT_PLACEHOLDER).count() {
        0 if json.tenants.is_empty() => return Ok(IssuerRule::Exact(issuer.clone())),
        0 => return Err(err("tenants", "needs an `issuer` template holding `{tenantid}`")),
        1 => {}
        _ => return Err(err("issuer", "holds `{tenantid}` more than once")),
    }
    if json.tenants.is_empty() {
        return Err(err(
            "tenants",
            "must list the accepted tenants: an issuer template without them would accept every tenant",
        ));
    }
    let mut issuers: Vec<TenantIssuer> = Vec::with_capacity(json.tenants.len());
    for (i, tenant) in json.tenants.iter().enumerate() {
        let at = format!("{path}.tenants[{i}]");
        // Tenant IDs are GUIDs or domain names; anything else could change the issuer's shape.
        if tenant.is_empty() || !tenant.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)) {
            return Err(ConfigError::new(at, "must be a non-empty tenant ID of letters, digits, `-`, `.`, `_`"));
        }
        if issuers.iter().any(|t| t.tenant == *tenant) {
            return Err(ConfigError::new(at, "is listed twice"));
        }
        issuers.push(TenantIssuer { tenant: tenant.clone(), issuer: issuer.replace(TENANT_PLACEHOLDER, tenant) });
    }
    Ok(IssuerRule::Tenants { template: issuer.clone(), issuers })
}

fn algorithms(names: &[String], path: &str) -> Result<Vec<Algorithm>, ConfigError> {
    if names.is_empty() {
        return Err(ConfigError::new(path, "must not be empty (leave it out for the keys' own algorithms)"));
    }
    let mut list = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let alg = Algorithm::from_jws_name(name).ok_or_else(|| {
            ConfigError::new(
                format!("{path}[{i}]"),
                format!("`{name}` is not a supported algorithm (RFC 7518 names, case-sensitive)"),
            )
        })?;
        if list.contains(&alg) {
            return Err(ConfigError::new(format!("{path}[{i}]"), format!("lists {alg} twice")));
        }
        list.push(alg);
    }
    Ok(list)
}
