//! Envoy's rate-limit service messages, written by hand: a trimmed copy holding only the fields this
//! service reads or writes. Protobuf skips unknown fields, so Envoy's fuller messages decode here and
//! ours decode in Envoy; what must match is each field's number and wire type, and the gRPC path
//! (`grpc.rs`), which carries the package and service names.
//!
//! Field numbers checked against envoyproxy/data-plane-api at 84e84367 (2026-01-29):
//!
//! - `envoy/service/ratelimit/v3/rls.proto`, package `envoy.service.ratelimit.v3`:
//!   - `RateLimitRequest`: `domain = 1` (string), `descriptors = 2` (repeated RateLimitDescriptor),
//!     `hits_addend = 3` (uint32).
//!   - `RateLimitResponse`: `overall_code = 1` (Code), `statuses = 2` (repeated DescriptorStatus),
//!     `response_headers_to_add = 3` (repeated config.core.v3.HeaderValue); not kept here:
//!     `request_headers_to_add = 4`, `raw_body = 5`, `dynamic_metadata = 6`, `quota = 7`.
//!   - `RateLimitResponse.Code`: `UNKNOWN = 0`, `OK = 1`, `OVER_LIMIT = 2`.
//!   - `RateLimitResponse.DescriptorStatus`: `code = 1`, `current_limit = 2` (RateLimit),
//!     `limit_remaining = 3` (uint32), `duration_until_reset = 4` (google.protobuf.Duration); not
//!     kept: `quota = 5`.
//!   - `RateLimitResponse.RateLimit`: `name = 3` (string), `requests_per_unit = 1` (uint32),
//!     `unit = 2` (Unit).
//!   - `RateLimitResponse.RateLimit.Unit`: `UNKNOWN = 0`, `SECOND = 1`, `MINUTE = 2`, `HOUR = 3`,
//!     `DAY = 4`, `MONTH = 5`, `YEAR = 6`, `WEEK = 7`.
//! - `envoy/extensions/common/ratelimit/v3/ratelimit.proto`, package
//!   `envoy.extensions.common.ratelimit.v3`:
//!   - `RateLimitDescriptor`: `entries = 1` (repeated Entry), `limit = 2` (RateLimitOverride); not
//!     kept: `hits_addend = 3` (google.protobuf.UInt64Value).
//!   - `RateLimitDescriptor.Entry`: `key = 1`, `value = 2` (strings).
//!   - `RateLimitDescriptor.RateLimitOverride`: `requests_per_unit = 1` (uint32),
//!     `unit = 2` (envoy.type.v3.RateLimitUnit, same numbers as `Unit` above up to `DAY = 4`).
//! - `envoy/config/core/v3/base.proto`: `HeaderValue`: `key = 1`, `value = 2`.
//! - `google/protobuf/duration.proto`: `Duration`: `seconds = 1` (int64), `nanos = 2` (int32).
//!
//! This module holds data only: no I/O, no Limitador.

/// `envoy.service.ratelimit.v3.RateLimitRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimitRequest {
    /// The Limitador namespace to check; must not be empty.
    #[prost(string, tag = "1")]
    pub domain: String,
    /// Every descriptor Envoy produced for the request, in order.
    #[prost(message, repeated, tag = "2")]
    pub descriptors: Vec<RateLimitDescriptor>,
    /// Hits to add; 0 (the proto3 default, also what Envoy sends when unset) means 1.
    #[prost(uint32, tag = "3")]
    pub hits_addend: u32,
}

impl RateLimitRequest {
    /// A request with one descriptor made of `entries` (key, value pairs, in order).
    pub fn single(domain: &str, entries: &[(&str, &str)]) -> Self {
        Self {
            domain: domain.to_owned(),
            descriptors: vec![RateLimitDescriptor::from_entries(entries)],
            hits_addend: 0,
        }
    }
}

/// `envoy.extensions.common.ratelimit.v3.RateLimitDescriptor`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimitDescriptor {
    #[prost(message, repeated, tag = "1")]
    pub entries: Vec<Entry>,
    /// Envoy's per-descriptor limit override; decoded for completeness and ignored, as
    /// limitador-server ignores it (the limits file is the only source of limits).
    #[prost(message, optional, tag = "2")]
    pub limit: Option<RateLimitOverride>,
}

impl RateLimitDescriptor {
    /// A descriptor made of `entries` (key, value pairs, in order).
    pub fn from_entries(entries: &[(&str, &str)]) -> Self {
        Self {
            entries: entries
                .iter()
                .map(|(key, value)| Entry { key: (*key).to_owned(), value: (*value).to_owned() })
                .collect(),
            limit: None,
        }
    }
}

/// `envoy.extensions.common.ratelimit.v3.RateLimitDescriptor.Entry`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Entry {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `envoy.extensions.common.ratelimit.v3.RateLimitDescriptor.RateLimitOverride`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimitOverride {
    #[prost(uint32, tag = "1")]
    pub requests_per_unit: u32,
    #[prost(enumeration = "Unit", tag = "2")]
    pub unit: i32,
}

/// `envoy.service.ratelimit.v3.RateLimitResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimitResponse {
    #[prost(enumeration = "Code", tag = "1")]
    pub overall_code: i32,
    #[prost(message, repeated, tag = "2")]
    pub statuses: Vec<DescriptorStatus>,
    /// Left empty, as limitador-server leaves it unless started with `--rate-limit-headers`.
    #[prost(message, repeated, tag = "3")]
    pub response_headers_to_add: Vec<HeaderValue>,
}

/// `envoy.service.ratelimit.v3.RateLimitResponse.Code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Code {
    Unknown = 0,
    Ok = 1,
    OverLimit = 2,
}

/// `envoy.service.ratelimit.v3.RateLimitResponse.DescriptorStatus`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DescriptorStatus {
    #[prost(enumeration = "Code", tag = "1")]
    pub code: i32,
    /// Unset when no limit applied to the request.
    #[prost(message, optional, tag = "2")]
    pub current_limit: Option<RateLimit>,
    #[prost(uint32, tag = "3")]
    pub limit_remaining: u32,
    #[prost(message, optional, tag = "4")]
    pub duration_until_reset: Option<Duration>,
}

/// `envoy.service.ratelimit.v3.RateLimitResponse.RateLimit`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimit {
    /// The Limitador limit's `name`, empty when the limit has none.
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(uint32, tag = "1")]
    pub requests_per_unit: u32,
    #[prost(enumeration = "Unit", tag = "2")]
    pub unit: i32,
}

/// `envoy.service.ratelimit.v3.RateLimitResponse.RateLimit.Unit` (numbers are not in order in the
/// proto: WEEK was added last).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Unit {
    Unknown = 0,
    Second = 1,
    Minute = 2,
    Hour = 3,
    Day = 4,
    Month = 5,
    Year = 6,
    Week = 7,
}

/// `envoy.config.core.v3.HeaderValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HeaderValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `google.protobuf.Duration`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Duration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    // Bytes as protoc encodes them for the same values (hand-checked: tag byte = number << 3 | wire
    // type), so a field renumbered by mistake fails here rather than silently in Envoy.
    #[test]
    fn request_wire_format_matches_envoy_numbers() {
        let request = RateLimitRequest {
            domain: "d".into(),
            descriptors: vec![RateLimitDescriptor::from_entries(&[("k", "v")])],
            hits_addend: 2,
        };
        // domain: 0x0a len 1 'd'; descriptors: 0x12 len 8 { entries: 0x0a len 6 { key: 0x0a 1 'k',
        // value: 0x12 1 'v' } }; hits_addend: 0x18 2.
        let expected = [0x0a, 1, b'd', 0x12, 8, 0x0a, 6, 0x0a, 1, b'k', 0x12, 1, b'v', 0x18, 2];
        assert_eq!(request.encode_to_vec(), expected);
    }

    #[test]
    fn response_wire_format_matches_envoy_numbers() {
        let response = RateLimitResponse {
            overall_code: Code::OverLimit as i32,
            statuses: vec![DescriptorStatus {
                code: Code::OverLimit as i32,
                current_limit: Some(RateLimit { name: "n".into(), requests_per_unit: 3, unit: Unit::Week as i32 }),
                limit_remaining: 1,
                duration_until_reset: Some(Duration { seconds: 5, nanos: 0 }),
            }],
            response_headers_to_add: vec![],
        };
        // overall_code: 0x08 2; statuses: 0x12 len 17 { code: 0x08 2; current_limit: 0x12 len 7
        // { requests_per_unit: 0x08 3, unit: 0x10 7, name: 0x1a 1 'n' }; limit_remaining: 0x18 1;
        // duration_until_reset: 0x22 len 2 { seconds: 0x08 5 } }.
        let expected =
            [0x08, 2, 0x12, 17, 0x08, 2, 0x12, 7, 0x08, 3, 0x10, 7, 0x1a, 1, b'n', 0x18, 1, 0x22, 2, 0x08, 5];
        assert_eq!(response.encode_to_vec(), expected);
    }
}
