//! The one place an authorization denial becomes an HTTP answer. Bodies carry a fixed error
//! code and the deciding policy's id (configuration, not caller data): never a claim, a header
//! value or an identity.

use serde_json::json;

use super::decide::{AuthzReason, Decision};
use crate::reply::LocalReply;

/// Maps a decision to the reply sent instead of forwarding. Pure and total: the adapter calls it
/// only for [`super::Verdict::Deny`], but any decision maps to something sensible.
///
/// - `identity_missing` → 401 with `WWW-Authenticate: Bearer realm="…"`: RFC 6750 §3.1 says a
///   request without credentials gets no error code.
/// - `scope_missing` → 403 with `error="insufficient_scope"` and the `scope` attribute listing
///   the scopes needed (RFC 6750 §3.1, §3: space-delimited, as RFC 6749 §3.3).
/// - `unknown_route_rule` → 500: the proxy's own configuration is inconsistent, not the
///   caller's fault, and never a pass.
/// - `peer_address_unknown`, `remote_address_unknown` → 403 `source_address_unknown`: a
///   policy on the caller's address cannot be decided on an address the caller may have forged;
///   refused, never passed (the filter's log and metric say which).
/// - any other → 403 `forbidden` (RFC 9110 §15.5.4): authenticated or not, the policy refuses.
pub fn denial(decision: &Decision, realm: &str) -> LocalReply {
    let policy = decision.policy.as_str();
    match &decision.reason {
        AuthzReason::IdentityMissing => LocalReply::json(
            401,
            vec![("www-authenticate".to_owned(), format!("Bearer realm=\"{realm}\""))],
            &json!({"error": "unauthenticated", "policy": policy}),
        ),
        AuthzReason::ScopeMissing { required } => LocalReply::json(
            403,
            vec![(
                "www-authenticate".to_owned(),
                format!("Bearer realm=\"{realm}\", error=\"insufficient_scope\", scope=\"{}\"", required.join(" ")),
            )],
            &json!({"error": "insufficient_scope", "policy": policy}),
        ),
        AuthzReason::UnknownRouteRule => LocalReply::json(
            500,
            Vec::new(),
            &json!({"error": "configuration", "message": "authorization rule of this route is not configured"}),
        ),
        AuthzReason::PeerAddressUnknown | AuthzReason::RemoteAddressUnknown => {
            LocalReply::json(403, Vec::new(), &json!({"error": "source_address_unknown", "policy": policy}))
        }
        AuthzReason::PolicyAllowed | AuthzReason::PolicyDenied | AuthzReason::NoPolicyMatched => {
            LocalReply::json(403, Vec::new(), &json!({"error": "forbidden", "policy": policy}))
        }
    }
}
