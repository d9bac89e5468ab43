//! JWT verification: the pure logic behind the JWT filter.
//!
//! [`Authenticator::authenticate`] takes the request's `Authorization` values and the time and
//! answers an [`Identity`] or a [`JwtError`]; [`denial`] turns the error into the response.

mod algorithm;
mod authenticate;
mod cache;
mod claim_headers;
mod claims;
mod config;
mod error;
mod hmac_keys;
mod host_crypto;
mod identity;
mod keys;
mod next_hop;
#[cfg(test)]
mod provider_tests;
mod remote;
mod requirement;
mod response;
mod roca;
mod signature;
mod sources;
mod strict_json;
mod strip;
mod token;

pub use algorithm::Algorithm;
pub use authenticate::{Authenticated, Authenticator};
pub use cache::{TokenCache, VerifiedToken};
pub use claim_headers::{ClaimHeader, claim_headers, payload_header_value};
pub use claims::{ClaimRules, IssuerRule, NumericDate, TenantIssuer};
pub use config::{
    JwksSourceJson, JwtFilterConfig, JwtFilterConfigJson, Provider, ProviderJson, SignatureVerifierChoice,
};
pub use error::JwtError;
pub use hmac_keys::HmacKeyJson;
pub use host_crypto::{HostCrypto, HostVerdict, HostVerifier, HostVerifyRequest, host_crypto_works, host_request};
pub use identity::Identity;
pub use keys::{KeyMaterial, KeySet, KeyUse, SkippedKeys, VerifyingKey};
pub use next_hop::{NextHop, NextHopJson, ProfileJson, ScopeClaimJson};
pub use remote::{
    FetchFailure, FetchOutcome, FetchPolicy, FetchRequest, FetchStage, FetchTarget, KeysWait, KidRefetch,
    MAX_DOCUMENT_BYTES, OidcDiscoveryJson, ProviderId, RemoteJwksJson, RemoteKeys, RemoteSource,
};
pub use requirement::{
    Decision, DecisionRecord, Requirement, RequirementJson, Requirements, RequirementsJson, Verdict,
};
pub use response::denial;
pub use signature::{InModuleVerifier, SignatureVerifier};
pub use sources::TokenSource;
pub use strip::{HeaderEdit, must_strip, strip_token_edits};
pub use token::ParsedToken;

#[cfg(test)]
mod test_host;
#[cfg(test)]
mod tests;
