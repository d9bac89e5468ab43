//! Tests of the authorization core through its public surface: configuration JSON in, decisions
//! and replies out. Table-driven; every request is built by [`Req`].

use std::net::IpAddr;

use serde_json::{Value, json};

use super::*;
use crate::config_error::ConfigError;

mod addresses;
mod combine;
mod conditions;
mod istio_rules;
mod routes;
mod validation;

/// 2023-11-14 22:13:20 UTC, a Tuesday.
pub(super) const NOW: UnixSeconds = UnixSeconds(1_700_000_000);
pub(super) const ISS: &str = "https://issuer.example";

pub(super) fn config(json: Value) -> AuthzConfig {
    match AuthzConfig::from_json(json.to_string().as_bytes()) {
        Ok(config) => config,
        Err(e) => panic!("{e}\n{json:#}"),
    }
}

pub(super) fn config_error(json: Value) -> ConfigError {
    match AuthzConfig::from_json(json.to_string().as_bytes()) {
        Ok(_) => panic!("accepted: {json:#}"),
        Err(e) => e,
    }
}

/// An identity of provider `corp` issued by [`ISS`], with these claims added to `iss`.
pub(super) fn identity(claims: Value) -> Identity {
    let Value::Object(mut map) = claims else { panic!("claims must be an object") };
    map.entry("iss").or_insert_with(|| json!(ISS));
    Identity::from_claims("corp", map)
}

/// One request and everything the adapter could have read about it.
#[derive(Clone)]
pub(super) struct Req {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) authority: Option<String>,
    pub(super) headers: Vec<(String, Vec<u8>)>,
    pub(super) source: Option<IpAddr>,
    pub(super) remote: Option<IpAddr>,
    pub(super) peer: Option<String>,
    pub(super) identity: Option<Identity>,
    pub(super) route_name: Option<String>,
    pub(super) route_choice: Option<String>,
    pub(super) now: UnixSeconds,
}

impl Req {
    pub(super) fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            authority: Some("api.example.com".to_owned()),
            headers: Vec::new(),
            // Envoy always knows a connection's peer; tests of an unknown one say so.
            source: Some(IpAddr::from([127, 0, 0, 1])),
            remote: Some(IpAddr::from([127, 0, 0, 1])),
            peer: None,
            identity: None,
            route_name: None,
            route_choice: None,
            now: NOW,
        }
    }

    pub(super) fn get(path: &str) -> Self {
        Self::new("GET", path)
    }

    pub(super) fn authority(mut self, authority: &str) -> Self {
        self.authority = Some(authority.to_owned());
        self
    }

    pub(super) fn header(mut self, name: &str, value: &[u8]) -> Self {
        self.headers.push((name.to_owned(), value.to_vec()));
        self
    }

    pub(super) fn source(mut self, ip: &str) -> Self {
        self.source = Some(ip.parse().unwrap());
        self
    }

    /// Envoy's remote address (from `X-Forwarded-For` by the listener's trusted hops).
    pub(super) fn remote(mut self, ip: &str) -> Self {
        self.remote = Some(ip.parse().unwrap());
        self
    }

    /// No peer address the proxy could vouch for (its remote address came from a header).
    pub(super) fn peer_unknown(mut self) -> Self {
        self.source = None;
        self
    }

    /// No remote address at all (not an IP listener).
    pub(super) fn remote_unknown(mut self) -> Self {
        self.remote = None;
        self
    }

    pub(super) fn peer(mut self, san: &str) -> Self {
        self.peer = Some(san.to_owned());
        self
    }

    pub(super) fn identity(mut self, claims: Value) -> Self {
        self.identity = Some(identity(claims));
        self
    }

    pub(super) fn route_name(mut self, name: &str) -> Self {
        self.route_name = Some(name.to_owned());
        self
    }

    pub(super) fn route_choice(mut self, name: &str) -> Self {
        self.route_choice = Some(name.to_owned());
        self
    }

    pub(super) fn at(mut self, now: u64) -> Self {
        self.now = UnixSeconds(now);
        self
    }

    pub(super) fn facts(&self) -> RequestFacts<'_> {
        RequestFacts {
            route_name: self.route_name.as_deref(),
            route_choice: self.route_choice.as_deref(),
            authority: self.authority.as_deref(),
            method: &self.method,
            path: &self.path,
            headers: &self.headers,
            source: self.source,
            remote: self.remote,
            peer_uri_san: self.peer.as_deref(),
            identity: self.identity.as_ref(),
            now: self.now,
        }
    }
}

/// A configuration whose only policy allows requests for which `rule` holds.
pub(super) fn allow_rule(rule: Value) -> AuthzConfig {
    config(json!({
        "environment": "production",
        "policies": {"p": {"action": "ALLOW", "rules": [rule]}},
        "defaults": {"policies": ["p"]},
    }))
}

/// A configuration whose only policy allows requests for which `condition` holds.
pub(super) fn allow_when(condition: Value) -> AuthzConfig {
    allow_rule(json!({"when": [condition]}))
}

pub(super) fn allowed(config: &AuthzConfig, req: &Req) -> bool {
    config.authorize(&req.facts()).verdict == Verdict::Allow
}

/// `verdict policy reason route`, for compact assertions.
pub(super) fn summary(decision: &Decision) -> String {
    format!(
        "{} {} {} {}",
        decision.verdict.as_str(),
        decision.policy,
        decision.reason.as_str(),
        decision.route.as_deref().unwrap_or("-")
    )
}
