//! Remote keys: JWKS fetched from an Envoy cluster, directly or through OpenID Connect
//! discovery, refreshed in the background and shared across workers.

mod discovery;
mod lifecycle;
mod source;
#[cfg(test)]
mod tests;

pub use lifecycle::{
    FetchFailure, FetchOutcome, FetchRequest, FetchStage, KeysWait, KidRefetch, MAX_DOCUMENT_BYTES, ProviderId,
    RemoteKeys,
};
pub use source::{FetchPolicy, FetchTarget, OidcDiscoveryJson, RemoteJwksJson, RemoteSource};
