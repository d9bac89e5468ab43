//! What one `ShouldRateLimit` call does, after limitador-server's Envoy RLS handler
//! (`limitador-server/src/envoy_rls/server.rs`):
//!
//! - `domain` is the Limitador namespace;
//! - the descriptors become one CEL binding, `descriptors`: a list with one map per descriptor, in
//!   request order, from entry key to entry value (a repeated key keeps its last value), so limits
//!   read `descriptors[0]['user_id']`;
//! - `hits_addend` 0 counts as 1;
//! - limited answers `OVER_LIMIT`, else `OK`; a storage error (Redis down) is the gRPC error
//!   UNAVAILABLE, so Envoy's `failure_mode_deny` decides, not this service.
//!
//! Where this service differs from limitador-server, on purpose:
//!
//! - an empty domain is the gRPC error INVALID_ARGUMENT (limitador-server answers `UNKNOWN`, which
//!   Envoy treats as allowed): a test wants the mistake to be loud;
//! - `statuses` is filled (limitador-server leaves it empty): one per descriptor, as Envoy's proto
//!   asks, each carrying the overall code and the most restrictive counter that applied (fewest
//!   hits remaining, the one limitador's own `X-RateLimit-*` headers report). Limitador checks all
//!   of a namespace's limits against all descriptors at once, so a counter cannot be tied to one
//!   descriptor;
//! - a CEL evaluation error (a variable that is a map, say) is INTERNAL, and so is a panic in
//!   Limitador (a condition indexing `descriptors[1]` when the request has one descriptor makes
//!   limitador 0.14 unwrap an error): limitador-server answers UNAVAILABLE, or drops the stream.
//!
//! No sockets here: the gRPC plumbing is in `grpc.rs`, the process in `server.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use limitador::CheckResult;
use limitador::counter::Counter;
use limitador::errors::LimitadorError;
use limitador::limit::{Context, Limit, Namespace};
use tonic::Status;

use crate::Error;
use crate::proto::{Code, DescriptorStatus, Duration, RateLimit, RateLimitRequest, RateLimitResponse, Unit};
use crate::redis_counters::{CheckError, RedisLimiter};

/// Counters the in-memory storage keeps per qualified limit (limits with variables): enough for
/// tests, bounded so a runaway test cannot eat the machine.
const IN_MEMORY_CACHE_SIZE: u64 = 10_000;

/// Limitador with its counters: in memory (limitador's `RateLimiter` and in-memory storage, as
/// limitador-server runs `memory`), or in Redis (limitador's limits and counters, our storage:
/// `redis_counters.rs` says why).
pub(crate) enum RateLimiter {
    InMemory(limitador::RateLimiter),
    Redis(RedisLimiter),
}

impl RateLimiter {
    /// In-memory counters, lost with the process.
    pub(crate) fn in_memory(limits: Vec<Limit>) -> Result<Self, Error> {
        let limiter = limitador::RateLimiter::new(IN_MEMORY_CACHE_SIZE);
        limiter.configure_with(limits).map_err(|e| Error::Storage(e.to_string()))?;
        Ok(Self::InMemory(limiter))
    }

    /// Counters in Redis at `url` (`redis://HOST:PORT`), shared by every instance that uses it.
    /// Fails when Redis does not answer now.
    pub(crate) async fn redis(limits: Vec<Limit>, url: &str) -> Result<Self, Error> {
        Ok(Self::Redis(RedisLimiter::connect(limits, url).await?))
    }

    /// The whole `ShouldRateLimit` call. Limitador runs on a task of its own so that a panic in
    /// it fails this call with INTERNAL instead of tearing down the HTTP/2 stream, and so that a
    /// call the client abandons still finishes its Redis round trip (a command cut between
    /// request and reply would leave the reply for the next caller to read).
    pub(crate) async fn should_rate_limit(
        self: Arc<Self>,
        request: RateLimitRequest,
    ) -> Result<RateLimitResponse, Status> {
        if request.domain.is_empty() {
            return Err(Status::invalid_argument("domain must not be empty: it names the Limitador namespace"));
        }
        let namespace = Namespace::from(request.domain);
        let descriptors = descriptor_maps(&request.descriptors);
        let hits = u64::from(request.hits_addend.max(1));
        let descriptor_count = descriptors.len();

        let checked = tokio::spawn(async move {
            let mut context = Context::default();
            context.list_binding("descriptors".to_owned(), descriptors);
            match &*self {
                Self::InMemory(limiter) => {
                    limiter.check_rate_limited_and_update(&namespace, &context, hits).map_err(|e| match e {
                        LimitadorError::StorageError(e) => CheckError::Storage(e.to_string()),
                        LimitadorError::InterpreterError(e) => CheckError::Evaluation(e.to_string()),
                    })
                }
                Self::Redis(limiter) => limiter.check_rate_limited_and_update(&namespace, &context, hits).await,
            }
        })
        .await;

        match checked {
            Ok(Ok(result)) => Ok(response_for(result, descriptor_count)),
            Ok(Err(CheckError::Storage(e))) => {
                tracing::warn!("limits storage failed, answering UNAVAILABLE: {e}");
                Err(Status::unavailable(format!("limits storage unavailable: {e}")))
            }
            Ok(Err(CheckError::Evaluation(e))) => {
                tracing::error!("a limit's CEL expression failed: {e}");
                Err(Status::internal(format!("limit evaluation failed: {e}")))
            }
            Err(join_error) => {
                tracing::error!("limitador panicked or was cancelled: {join_error}");
                Err(Status::internal("limit evaluation panicked (see the service's log)"))
            }
        }
    }
}

/// One map per descriptor, in request order: the value of Limitador's `descriptors` binding.
fn descriptor_maps(descriptors: &[crate::proto::RateLimitDescriptor]) -> Vec<HashMap<String, String>> {
    descriptors
        .iter()
        .map(|descriptor| descriptor.entries.iter().map(|entry| (entry.key.clone(), entry.value.clone())).collect())
        .collect()
}

/// Limitador's answer as Envoy's response: see the module header for `statuses`.
fn response_for(mut result: CheckResult, descriptor_count: usize) -> RateLimitResponse {
    let code = if result.limited { Code::OverLimit } else { Code::Ok };
    // Most restrictive first, as limitador's `CheckResult::response_header` orders them.
    result.counters.sort_by_key(|counter| counter.remaining().unwrap_or_else(|| counter.max_value()));
    let status = status_for(code, result.counters.first());
    RateLimitResponse {
        overall_code: code as i32,
        statuses: vec![status; descriptor_count],
        response_headers_to_add: Vec::new(),
    }
}

fn status_for(code: Code, counter: Option<&Counter>) -> DescriptorStatus {
    let Some(counter) = counter else {
        // No limit applied: Envoy's proto leaves `current_limit` unset for "no limit".
        return DescriptorStatus {
            code: code as i32,
            current_limit: None,
            limit_remaining: 0,
            duration_until_reset: None,
        };
    };
    let remaining = counter.remaining().unwrap_or_else(|| counter.max_value());
    DescriptorStatus {
        code: code as i32,
        current_limit: Some(RateLimit {
            name: counter.limit().name().unwrap_or_default().to_owned(),
            requests_per_unit: saturate(counter.max_value()),
            unit: unit_for(counter.window().as_secs()) as i32,
        }),
        limit_remaining: saturate(remaining),
        duration_until_reset: counter.expires_in().map(|reset| Duration {
            seconds: i64::try_from(reset.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(reset.subsec_nanos()).unwrap_or(0),
        }),
    }
}

/// Envoy's `RateLimit` has units, Limitador has seconds: a window that is exactly one unit maps to
/// it; any other window is `UNKNOWN`, with `requests_per_unit` still the limit's `max_value` (the
/// window then shows only through `duration_until_reset`). Months and years have no fixed length.
pub(crate) fn unit_for(seconds: u64) -> Unit {
    match seconds {
        1 => Unit::Second,
        60 => Unit::Minute,
        3_600 => Unit::Hour,
        86_400 => Unit::Day,
        604_800 => Unit::Week,
        _ => Unit::Unknown,
    }
}

fn saturate(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_of_exactly_one_unit_map_to_it() {
        let table = [
            (1, Unit::Second),
            (60, Unit::Minute),
            (3_600, Unit::Hour),
            (86_400, Unit::Day),
            (604_800, Unit::Week),
            (0, Unit::Unknown),
            (10, Unit::Unknown),
            (120, Unit::Unknown),
            (2_592_000, Unit::Unknown),
        ];
        for (seconds, unit) in table {
            assert_eq!(unit_for(seconds), unit, "{seconds} s");
        }
    }

    #[test]
    fn counts_saturate_at_u32_max() {
        assert_eq!(saturate(7), 7);
        assert_eq!(saturate(u64::MAX), u32::MAX);
    }

    #[test]
    fn descriptors_become_one_map_each_in_order() {
        let descriptors = [
            crate::proto::RateLimitDescriptor::from_entries(&[("a", "1"), ("b", "2"), ("a", "3")]),
            crate::proto::RateLimitDescriptor::from_entries(&[("c", "4")]),
        ];
        let maps = descriptor_maps(&descriptors);
        assert_eq!(maps.len(), 2);
        assert_eq!(maps[0].get("a").map(String::as_str), Some("3"), "a repeated key keeps its last value");
        assert_eq!(maps[0].get("b").map(String::as_str), Some("2"));
        assert_eq!(maps[1].get("c").map(String::as_str), Some("4"));
    }

    #[test]
    fn no_applied_limit_is_ok_without_current_limit() {
        let result = CheckResult { limited: false, counters: vec![], limit_name: None };
        let response = response_for(result, 2);
        assert_eq!(response.overall_code, Code::Ok as i32);
        assert_eq!(response.statuses.len(), 2);
        assert!(response.statuses.iter().all(|s| s.current_limit.is_none() && s.code == Code::Ok as i32));
    }
}
