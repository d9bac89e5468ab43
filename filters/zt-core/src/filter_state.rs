//! Names of the Envoy filter-state entries through which the filters hand results to each
//! other. Filter state is set by a filter through `set_property` and cannot be set by a client,
//! unlike a request header, so identity never travels in a forgeable header.

/// The verified identity, JSON of [`crate::jwt::Identity`], set by the JWT filter.
pub const IDENTITY: &str = "zt.identity";

/// The JWT filter's decision on the request, JSON of [`crate::jwt::Decision::record`]:
/// `{"decision": "allow"|"anonymous"|"advisory_deny"|"deny", "reason", "requirement", "provider"}`.
pub const JWT_DECISION: &str = "zt.jwt.decision";

/// The authorization filter's decision on the request, JSON of [`crate::authz::Decision::record`]:
/// `{"decision": "allow"|"deny"|"advisory_deny", "policy": "<deciding policy id>"|"default-deny",
/// "reason": "<snake_case reason>", "route": "<route rule name>"|null, "audit": ["<AUDIT policy id>", ...]}`.
/// Ids and reasons only, never a claim value.
pub const AUTHZ_DECISION: &str = "zt.authz.decision";

/// The rate-limit filter's decision on the request, JSON of [`crate::ratelimit::Decision::record`]:
/// `{"decision": "admitted"|"limited"|"advisory_limited", "reason": "<snake_case reason>",
/// "limit": "<deciding limit>"|null, "remaining": <tokens left of the deciding or tightest
/// limit>|null, "route": "<route rule name>"|null}`. Names and numbers only, never a key's value.
pub const RATELIMIT_DECISION: &str = "zt.ratelimit.decision";

/// The suite's one entry, JSON of [`crate::suite::SuiteState`], written only when its
/// configuration sets `filter_state: true`: `{"identity": {"provider", "iss", "sub",
/// "spiffe_id"}, "jwt": {...}, "authz": {...}, "ratelimit": {...}}`, each stage's object that of
/// its entry above. Envoy stores it as `wasm.zt.suite`.
pub const SUITE: &str = "zt.suite";
