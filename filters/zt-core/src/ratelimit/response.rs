//! What the client is told: the refusal (429, or 503/500 for the service or configuration
//! faults) and the rate-limit header fields.
//!
//! Header fields follow draft-ietf-httpapi-ratelimit-headers-10, as Structured Fields lists:
//! `RateLimit-Policy: "per-user";q=100;w=60` and `RateLimit: "per-user";r=42;t=18`, one item
//! per enforced limit applied, in order. `t` is the seconds until the bucket is full again;
//! `Retry-After` (RFC 9110) the seconds until the refusing limit admits one request. Advisory
//! limits are not advertised: they do not bind the client. The body names the limit, never
//! the value it is keyed on.

use super::decide::{Decision, LimitStatus, Reason, Verdict};
use crate::LocalReply;

/// The local reply for a refused request; `None` unless the verdict is `Limited`.
pub fn refusal(decision: &Decision, x_ratelimit: bool) -> Option<LocalReply> {
    if decision.verdict != Verdict::Limited {
        return None;
    }
    let (status, error) = match decision.reason {
        Reason::GlobalUnavailable => (503, "rate_limit_unavailable"),
        // The proxy's configuration is inconsistent: `configuration`, as zt-jwt and zt-authz say.
        Reason::UnknownRouteRule => (500, "configuration"),
        _ => (429, "rate_limited"),
    };
    let mut headers = rate_limit_fields(&decision.statuses, x_ratelimit, decision.deciding_status());
    let retry_after = match decision.reason {
        Reason::OverLimit | Reason::GlobalOverLimit => decision.deciding_status().map(|s| s.retry_after_seconds.max(1)),
        // Room or the service may come back in a moment; a key that is missing will not.
        Reason::TableFull | Reason::Contention | Reason::GlobalUnavailable => Some(1),
        Reason::Unkeyed | Reason::UnknownRouteRule | Reason::WithinLimits => None,
    };
    if let Some(seconds) = retry_after {
        headers.push(("retry-after".to_owned(), seconds.to_string()));
    }
    let body = serde_json::json!({
        "error": error,
        "limit": decision.limit,
        "reason": decision.reason.as_str(),
    });
    Some(LocalReply::json(status, headers, &body))
}

/// The header fields for a response the limits admitted (or an advisory limit would have
/// refused).
pub fn admitted_headers(decision: &Decision, x_ratelimit: bool) -> Vec<(String, String)> {
    rate_limit_fields(&decision.statuses, x_ratelimit, decision.deciding_status())
}

fn rate_limit_fields(
    statuses: &[LimitStatus],
    x_ratelimit: bool,
    tightest: Option<&LimitStatus>,
) -> Vec<(String, String)> {
    let enforced: Vec<&LimitStatus> = statuses.iter().filter(|s| !s.advisory).collect();
    if enforced.is_empty() {
        return Vec::new();
    }
    // Limit names are checked at configuration (letters, digits, `-_.:`), so they are valid
    // sf-string contents as they are.
    let policy = enforced.iter().map(|s| format!("\"{}\";q={};w={}", s.name, s.quota, s.window_seconds));
    let current = enforced.iter().map(|s| format!("\"{}\";r={};t={}", s.name, s.remaining, s.reset_seconds));
    let mut headers = vec![
        ("ratelimit-policy".to_owned(), policy.collect::<Vec<_>>().join(", ")),
        ("ratelimit".to_owned(), current.collect::<Vec<_>>().join(", ")),
    ];
    if x_ratelimit && let Some(tightest) = tightest.filter(|s| !s.advisory).or_else(|| enforced.first().copied()) {
        headers.push(("x-ratelimit-limit".to_owned(), tightest.quota.to_string()));
        headers.push(("x-ratelimit-remaining".to_owned(), tightest.remaining.to_string()));
        headers.push(("x-ratelimit-reset".to_owned(), tightest.reset_seconds.to_string()));
    }
    headers
}
