mod chain;
mod config;
mod outbox;
mod records;

use serde_json::Value;

use super::{AuditConfig, Handed, HandedIdentity, StreamFacts};
use crate::address::SourceAddresses;

pub(super) fn config(json: Value) -> AuditConfig {
    AuditConfig::from_json(json.to_string().as_bytes()).unwrap()
}

/// A request that the JWT and authorization filters allowed and the upstream answered.
pub(super) fn allowed_facts() -> StreamFacts {
    StreamFacts {
        start_ns: Some(1_795_463_791_123_000_000),
        now_ns: 1_795_463_791_126_000_000,
        request_id: Some("5e1c2a9d-aaaa-4bbb-8ccc-0123456789ab".into()),
        traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
        source: SourceAddresses::from_envoy(Some("127.0.0.1:45710"), None),
        peer_uri_san: Some("spiffe://cluster.local/ns/shop/sa/web".into()),
        authority: Some("api.example.com".into()),
        method: Some("GET".into()),
        path: Some("/orders/7?access_token=SECRET-QUERY-TOKEN&page=2".into()),
        route_name: Some("orders".into()),
        route_choice: None,
        cluster: Some("backend".into()),
        status: Some(200),
        flags: 0,
        details: Some("via_upstream".into()),
        duration_ns: Some(2_500_000),
        bytes_in: Some(0),
        bytes_out: Some(512),
        headers: vec![
            ("user-agent".into(), b"curl/8".to_vec()),
            ("authorization".into(), b"Bearer SECRET-HEADER-TOKEN".to_vec()),
            ("cookie".into(), b"session=SECRET-COOKIE".to_vec()),
        ],
        identity: Some(HandedIdentity::FilterState(
            serde_json::json!({
                "provider": "corp", "iss": "https://issuer.example", "sub": "alice", "aud": ["api"],
                "scopes": ["orders:read"], "exp": 1_795_467_391u64,
                "claims": {"iss": "https://issuer.example", "sub": "alice", "azp": "web", "email": "alice@example.com",
                           "org": "acme", "scope": "orders:read"}
            })
            .to_string()
            .into_bytes(),
        )),
        jwt: Some(Handed::FilterState(
            br#"{"decision":"allow","reason":null,"requirement":"default","provider":"corp"}"#.to_vec(),
        )),
        authz: Some(Handed::FilterState(
            br#"{"decision":"allow","policy":"orders-read","reason":"policy_allowed","route":"orders","audit":[]}"#
                .to_vec(),
        )),
        ratelimit: None,
    }
}
