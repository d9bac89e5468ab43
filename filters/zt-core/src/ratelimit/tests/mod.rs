//! Tests of the rate-limit core: configuration, keys, combination, headers, the shared table
//! (also under real threads) and the service's messages.

mod concurrency;
mod config;
mod decisions;
mod shared_names;

use std::net::IpAddr;

use serde_json::{Value, json};

use super::{RateLimitConfig, RequestFacts};
use crate::jwt::Identity;

pub(super) fn config(value: Value) -> RateLimitConfig {
    match RateLimitConfig::from_json(value.to_string().as_bytes()) {
        Ok(config) => config,
        Err(error) => panic!("configuration refused: {error}"),
    }
}

pub(super) fn config_error(value: Value) -> String {
    match RateLimitConfig::from_json(value.to_string().as_bytes()) {
        Ok(_) => panic!("configuration accepted: {value}"),
        Err(error) => error.to_string(),
    }
}

pub(super) fn identity(sub: &str) -> Identity {
    let claims = json!({"iss": "https://issuer", "sub": sub, "tier": "gold", "org": {"id": 7}});
    let Value::Object(claims) = claims else { unreachable!() };
    Identity::from_claims("corp", claims)
}

/// A request to `path` at `now_ms`.
pub(super) struct Facts {
    pub path: String,
    pub method: String,
    pub route_name: Option<String>,
    pub route_choice: Option<String>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub source: Option<IpAddr>,
    pub remote: Option<IpAddr>,
    pub identity: Option<Identity>,
    pub now_ms: u64,
}

impl Facts {
    pub fn get(path: &str) -> Self {
        Self {
            path: path.to_owned(),
            method: "GET".to_owned(),
            route_name: None,
            route_choice: None,
            headers: Vec::new(),
            source: Some("10.1.2.3".parse().unwrap()),
            remote: Some("10.1.2.3".parse().unwrap()),
            identity: None,
            now_ms: 1_700_000_000_000,
        }
    }

    pub fn who(mut self, sub: &str) -> Self {
        self.identity = Some(identity(sub));
        self
    }

    pub fn from(mut self, address: &str) -> Self {
        self.source = Some(address.parse().unwrap());
        self
    }

    /// Envoy's remote address, as derived from `X-Forwarded-For`.
    pub fn remote(mut self, address: &str) -> Self {
        self.remote = Some(address.parse().unwrap());
        self
    }

    /// No trustworthy peer address (the remote address came from a header).
    pub fn peer_unknown(mut self) -> Self {
        self.source = None;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.as_bytes().to_vec()));
        self
    }

    pub fn at(mut self, now_ms: u64) -> Self {
        self.now_ms = now_ms;
        self
    }

    pub fn facts(&self) -> RequestFacts<'_> {
        RequestFacts {
            route_name: self.route_name.as_deref(),
            route_choice: self.route_choice.as_deref(),
            authority: None,
            method: &self.method,
            path: &self.path,
            headers: &self.headers,
            source: self.source,
            remote: self.remote,
            identity: self.identity.as_ref(),
            now_ms: self.now_ms,
        }
    }
}
