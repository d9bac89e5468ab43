//! Why a request's token was not accepted. Variants are facts; none carries the token or a
//! claim value that the caller chose, so an error can be logged as it is.

use std::fmt;

use super::remote::ProviderId;
use crate::time::UnixSeconds;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    /// No `Authorization` header: RFC 6750 §3.1 says to answer without an error code.
    Missing,
    /// More than one token on the request: picking one would let a client choose which is
    /// checked by which component.
    MultipleTokens,
    /// A token source's header holds no token in the expected form (for `Authorization`: a
    /// scheme other than `Bearer`, or more than one word after it).
    TokenFormat,
    /// The token was found only in places its provider does not take tokens from.
    TokenLocationNotAllowed,
    TooLarge {
        len: usize,
        max: usize,
    },
    /// Not a compact JWS (three base64url parts, JSON object header and claims).
    Malformed(&'static str),
    /// Header or claims name a member twice; parsers disagree on which wins.
    DuplicateMember,
    UnsupportedAlgorithm,
    /// The header's `alg` is one the suite knows but the token's provider does not allow
    /// (its `algorithms`, or by default what its keys declare): refused before any signature
    /// work, so a client cannot choose a costlier verification than the issuer uses.
    AlgorithmNotAllowed,
    /// RFC 7515 §4.1.11: the suite understands no extension, so any `crit` is refused; `b64`
    /// (RFC 7797) changes what is signed and is refused too.
    CriticalHeader,
    UnsupportedType,
    IssuerMissing,
    UnknownIssuer,
    /// No key of the token's provider has the token's `kid` and `alg`. For remote keys the
    /// adapter may refetch them (rate-limited) and verify again.
    NoMatchingKey {
        provider: ProviderId,
    },
    /// The provider's keys are remote and no fetch has succeeded yet: fail closed.
    KeysUnavailable {
        provider: ProviderId,
    },
    SignatureInvalid,
    ExpirationMissing,
    Expired {
        exp: u64,
        now: UnixSeconds,
    },
    NotYetValid {
        nbf: u64,
        now: UnixSeconds,
    },
    IssuedInFuture {
        iat: u64,
        now: UnixSeconds,
    },
    LifetimeTooLong {
        lifetime: u64,
        max: u64,
    },
    AudienceMissing,
    AudienceMismatch,
    /// A claim the provider requires is missing or holds another value.
    RequiredClaimMismatch,
    /// The provider binds tokens by `client_ids`: the token names no client (`client_id`,
    /// `azp`) or one not listed.
    ClientMismatch,
    /// A multi-tenant issuer's token whose `tid` is missing or is not the tenant of its `iss`.
    TenantMismatch,
    /// A JWT-SVID whose `sub` is not a workload SPIFFE ID in the provider's trust domain.
    SpiffeSubjectInvalid,
    /// A valid token of a provider the route does not accept.
    ProviderNotAllowed,
    /// The route's metadata names a requirement the configuration does not define.
    UnknownRequirement,
    /// A registered claim of the wrong JSON type or out of range (RFC 7519 §4.1).
    ClaimInvalid {
        claim: &'static str,
    },
}

impl JwtError {
    /// Every value [`JwtError::reason`] can take, for defining one metric per reason up front.
    pub const REASONS: [&'static str; 28] = [
        "missing",
        "multiple_tokens",
        "token_format",
        "token_location",
        "too_large",
        "malformed",
        "duplicate_member",
        "unsupported_algorithm",
        "algorithm_not_allowed",
        "critical_header",
        "unsupported_type",
        "unknown_issuer",
        "no_matching_key",
        "keys_unavailable",
        "bad_signature",
        "expiration_missing",
        "expired",
        "not_yet_valid",
        "issued_in_future",
        "lifetime_too_long",
        "audience_mismatch",
        "invalid_claim",
        "provider_not_allowed",
        "unknown_requirement",
        "required_claim",
        "client_mismatch",
        "tenant_mismatch",
        "spiffe_subject",
    ];

    /// A stable snake_case name of the failure, for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            JwtError::Missing => "missing",
            JwtError::MultipleTokens => "multiple_tokens",
            JwtError::TokenFormat => "token_format",
            JwtError::TokenLocationNotAllowed => "token_location",
            JwtError::TooLarge { .. } => "too_large",
            JwtError::Malformed(_) => "malformed",
            JwtError::DuplicateMember => "duplicate_member",
            JwtError::UnsupportedAlgorithm => "unsupported_algorithm",
            JwtError::AlgorithmNotAllowed => "algorithm_not_allowed",
            JwtError::CriticalHeader => "critical_header",
            JwtError::UnsupportedType => "unsupported_type",
            JwtError::IssuerMissing | JwtError::UnknownIssuer => "unknown_issuer",
            JwtError::NoMatchingKey { .. } => "no_matching_key",
            JwtError::KeysUnavailable { .. } => "keys_unavailable",
            JwtError::SignatureInvalid => "bad_signature",
            JwtError::ExpirationMissing => "expiration_missing",
            JwtError::Expired { .. } => "expired",
            JwtError::NotYetValid { .. } => "not_yet_valid",
            JwtError::IssuedInFuture { .. } => "issued_in_future",
            JwtError::LifetimeTooLong { .. } => "lifetime_too_long",
            JwtError::AudienceMissing | JwtError::AudienceMismatch => "audience_mismatch",
            JwtError::ClaimInvalid { .. } => "invalid_claim",
            JwtError::RequiredClaimMismatch => "required_claim",
            JwtError::ClientMismatch => "client_mismatch",
            JwtError::TenantMismatch => "tenant_mismatch",
            JwtError::SpiffeSubjectInvalid => "spiffe_subject",
            JwtError::ProviderNotAllowed => "provider_not_allowed",
            JwtError::UnknownRequirement => "unknown_requirement",
        }
    }

    /// The short, fixed text sent to the client. It mirrors Envoy `jwt_authn`'s messages where
    /// one exists, so clients migrating from it see familiar words.
    pub fn client_message(&self) -> &'static str {
        match self {
            JwtError::Missing => "Jwt is missing",
            JwtError::MultipleTokens => "Jwt is presented more than once",
            JwtError::TokenFormat => "Jwt is not in the expected format",
            JwtError::TokenLocationNotAllowed => "Jwt is not accepted from this location",
            JwtError::TooLarge { .. } => "Jwt is too large",
            JwtError::Malformed(_) | JwtError::DuplicateMember => "Jwt is not in the form of Header.Payload.Signature",
            JwtError::UnsupportedAlgorithm => "Jwt algorithm is not supported",
            JwtError::AlgorithmNotAllowed => "Jwt algorithm is not allowed for its issuer",
            JwtError::CriticalHeader => "Jwt header has an unsupported critical parameter",
            JwtError::UnsupportedType => "Jwt type is not supported",
            JwtError::IssuerMissing | JwtError::UnknownIssuer => "Jwt issuer is not configured",
            JwtError::NoMatchingKey { .. } => "Jwks doesn't have key to match kid or alg from Jwt",
            JwtError::KeysUnavailable { .. } => "Jwks remote fetch is failed",
            JwtError::SignatureInvalid => "Jwt verification fails",
            JwtError::ExpirationMissing => "Jwt has no expiration",
            JwtError::Expired { .. } => "Jwt is expired",
            JwtError::NotYetValid { .. } => "Jwt not yet valid",
            JwtError::IssuedInFuture { .. } => "Jwt is issued in the future",
            JwtError::LifetimeTooLong { .. } => "Jwt lifetime is too long",
            JwtError::AudienceMissing | JwtError::AudienceMismatch => "Audiences in Jwt are not allowed",
            JwtError::ClaimInvalid { .. } => "Jwt has an invalid claim",
            JwtError::RequiredClaimMismatch => "Jwt lacks a required claim",
            JwtError::ClientMismatch => "Jwt client is not allowed",
            JwtError::TenantMismatch => "Jwt tenant is not allowed",
            JwtError::SpiffeSubjectInvalid => "Jwt subject is not a SPIFFE ID of the trust domain",
            JwtError::ProviderNotAllowed => "Jwt issuer is not allowed for this route",
            JwtError::UnknownRequirement => "Jwt requirement of this route is not configured",
        }
    }
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtError::TooLarge { len, max } => write!(f, "token of {len} bytes exceeds {max}"),
            JwtError::Malformed(why) => write!(f, "malformed token: {why}"),
            JwtError::Expired { exp, now } => write!(f, "token expired: exp {exp}, now {}", now.0),
            JwtError::NotYetValid { nbf, now } => write!(f, "token not yet valid: nbf {nbf}, now {}", now.0),
            JwtError::IssuedInFuture { iat, now } => write!(f, "token issued in the future: iat {iat}, now {}", now.0),
            JwtError::LifetimeTooLong { lifetime, max } => write!(f, "token lifetime {lifetime}s exceeds {max}s"),
            JwtError::ClaimInvalid { claim } => write!(f, "claim `{claim}` has an invalid type or value"),
            other => f.write_str(other.client_message()),
        }
    }
}

impl std::error::Error for JwtError {}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn every_reason_is_listed() {
        let now = UnixSeconds(0);
        let all = [
            JwtError::Missing,
            JwtError::MultipleTokens,
            JwtError::TokenFormat,
            JwtError::TokenLocationNotAllowed,
            JwtError::TooLarge { len: 0, max: 0 },
            JwtError::Malformed(""),
            JwtError::DuplicateMember,
            JwtError::UnsupportedAlgorithm,
            JwtError::AlgorithmNotAllowed,
            JwtError::CriticalHeader,
            JwtError::UnsupportedType,
            JwtError::IssuerMissing,
            JwtError::UnknownIssuer,
            JwtError::NoMatchingKey { provider: ProviderId(0) },
            JwtError::KeysUnavailable { provider: ProviderId(0) },
            JwtError::SignatureInvalid,
            JwtError::ExpirationMissing,
            JwtError::Expired { exp: 0, now },
            JwtError::NotYetValid { nbf: 0, now },
            JwtError::IssuedInFuture { iat: 0, now },
            JwtError::LifetimeTooLong { lifetime: 0, max: 0 },
            JwtError::AudienceMissing,
            JwtError::AudienceMismatch,
            JwtError::ClaimInvalid { claim: "" },
            JwtError::ProviderNotAllowed,
            JwtError::UnknownRequirement,
            JwtError::RequiredClaimMismatch,
            JwtError::ClientMismatch,
            JwtError::TenantMismatch,
            JwtError::SpiffeSubjectInvalid,
        ];
        for error in &all {
            assert!(JwtError::REASONS.contains(&error.reason()), "{error:?}");
        }
        for reason in JwtError::REASONS {
            assert!(all.iter().any(|e| e.reason() == reason), "{reason}");
        }
    }
}
