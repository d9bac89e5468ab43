//! Remote keys through the host: sending the fetches the core asks for, handing their answers
//! back, and reporting what came of them in logs and metrics. Shared by the root context
//! (start-up and timer) and the HTTP context (refetch for an unknown `kid`).

use super::FILTER;
use super::metrics::JwtMetrics;
use crate::{EnvoySharedData, http_call};
use proxy_wasm::traits::Context;
use zt_core::jwt::{Authenticator, FetchOutcome, FetchRequest, MAX_DOCUMENT_BYTES};

/// Sends the fetch; the token names it in `on_http_call_response`. A fetch that cannot be sent
/// counts as failed (and is retried by the schedule).
pub fn send(
    context: &dyn Context,
    authenticator: &Authenticator,
    metrics: &JwtMetrics,
    request: &FetchRequest,
) -> Option<u32> {
    let target = &request.target;
    match http_call::get(context, &target.cluster, &target.authority, &target.path, request.timeout_ms) {
        Ok(token) => Some(token),
        Err(status) => {
            log::warn!("{FILTER}: cannot send the key fetch to cluster {}: {status:?}", target.cluster);
            let outcome = authenticator.remote_keys_response(request, None, &EnvoySharedData, crate::now(context));
            report(authenticator, metrics, request, &outcome);
            None
        }
    }
}

/// Hands the answer being delivered to the core.
pub fn answer(
    context: &dyn Context,
    authenticator: &Authenticator,
    metrics: &JwtMetrics,
    request: &FetchRequest,
    body_size: usize,
) -> FetchOutcome {
    let response = http_call::response(context, body_size, MAX_DOCUMENT_BYTES);
    let response = response.as_ref().map(|(status, body)| (*status, body.as_slice()));
    let outcome = authenticator.remote_keys_response(request, response, &EnvoySharedData, crate::now(context));
    report(authenticator, metrics, request, &outcome);
    outcome
}

fn report(authenticator: &Authenticator, metrics: &JwtMetrics, request: &FetchRequest, outcome: &FetchOutcome) {
    let provider = authenticator.provider_name(request.provider);
    let target = &request.target;
    match outcome {
        FetchOutcome::Installed { keys, skipped } => {
            if let Some(counters) = metrics.provider(provider) {
                counters.jwks_fetch_ok.increment();
            }
            for kid in &skipped.roca {
                metrics.jwks_key_roca.increment();
                log::warn!(
                    "{FILTER}: provider {provider}: key {kid:?} dropped: its RSA modulus has the ROCA fingerprint \
                     (CVE-2017-15361), its private key can be computed"
                );
            }
            log::info!(
                "{FILTER}: provider {provider}: {keys} key(s) from {}{} via cluster {} ({} unusable skipped)",
                target.authority,
                target.path,
                target.cluster,
                skipped.count
            );
        }
        FetchOutcome::Next(_) => {
            if let Some(counters) = metrics.provider(provider) {
                counters.jwks_fetch_ok.increment();
            }
        }
        FetchOutcome::Failed(failure) => {
            if let Some(counters) = metrics.provider(provider) {
                counters.jwks_fetch_failed.increment();
            }
            log::warn!(
                "{FILTER}: provider {provider}: fetch of {}{} via cluster {} failed: {failure}; {}",
                target.authority,
                target.path,
                target.cluster,
                if authenticator.has_keys(request.provider) {
                    "keeping the last good keys"
                } else {
                    "no keys yet: its tokens are refused"
                }
            );
        }
    }
}
