//! Signature verification by the host: Envoy 1.40's `verify_signature` foreign function, which
//! runs BoringSSL natively (RS256 about 60x, ES256 about 10x faster than `jwt-simple` inside the
//! Wasm VM, measured on Envoy 1.40: see BENCHMARKS.md's distinct-token workloads).
//!
//! The host can do PKCS#1 v1.5 RSA and ECDSA with a DER signature; it cannot do RSA-PSS or
//! Ed25519, so those stay in the module. This file builds the host's request from a token and a
//! key the core already chose; it never decides which key or algorithm is acceptable.

use std::borrow::Cow;

use super::algorithm::Algorithm;
use super::keys::VerifyingKey;
use super::signature::{InModuleVerifier, SignatureVerifier};
use super::token::ParsedToken;
use crate::time::UnixSeconds;

/// One host verification: the fields of Envoy's `VerifySignatureArguments`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostVerifyRequest<'a> {
    /// `sha256`, `sha384` or `sha512`.
    pub hash_function: &'static str,
    /// SubjectPublicKeyInfo, DER.
    pub public_key_der: &'a [u8],
    /// PKCS#1 v1.5 signature bytes, or an ECDSA signature as DER `SEQUENCE { r, s }`.
    pub signature: Cow<'a, [u8]>,
    /// The JWS signing input.
    pub text: &'a [u8],
}

/// The host's answer to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostVerdict {
    Valid,
    Invalid,
    /// The host has no such function, or refused the call: the caller must not treat it as
    /// either answer.
    Unavailable,
}

/// Access to the host's verification; implemented by the filter adapter over the ABI.
pub trait HostCrypto {
    fn verify(&self, request: &HostVerifyRequest<'_>) -> HostVerdict;
}

/// Builds the host request for `token` under `key`, or `None` when the algorithm is not one the
/// host can verify. `Some(Err(()))`: the signature cannot be valid (wrong length, or an ECDSA
/// `r` or `s` of zero or not below the group order, CVE-2022-21449), so no call is made.
#[allow(clippy::result_unit_err)]
pub fn host_request<'a>(
    token: &'a ParsedToken<'_>,
    key: &'a VerifyingKey,
) -> Option<Result<HostVerifyRequest<'a>, ()>> {
    let public_key_der = key.spki_der.as_deref()?;
    let (hash_function, signature) = match token.alg {
        Algorithm::Rs256 => ("sha256", Ok(Cow::Borrowed(token.signature.as_slice()))),
        Algorithm::Rs384 => ("sha384", Ok(Cow::Borrowed(token.signature.as_slice()))),
        Algorithm::Rs512 => ("sha512", Ok(Cow::Borrowed(token.signature.as_slice()))),
        Algorithm::Es256 => (
            "sha256",
            p256::ecdsa::Signature::from_slice(&token.signature).map(|s| Cow::Owned(s.to_der().as_bytes().to_vec())),
        ),
        Algorithm::Es384 => (
            "sha384",
            p384::ecdsa::Signature::from_slice(&token.signature).map(|s| Cow::Owned(s.to_der().as_bytes().to_vec())),
        ),
        // Envoy's function has no padding selector (PSS) and no Ed25519: verified in the module.
        // HMAC is cheap in the module and its secret stays there.
        Algorithm::Ps256
        | Algorithm::Ps384
        | Algorithm::Ps512
        | Algorithm::EdDsa
        | Algorithm::Hs256
        | Algorithm::Hs384
        | Algorithm::Hs512 => return None,
    };
    Some(match signature {
        Ok(signature) => {
            Ok(HostVerifyRequest { hash_function, public_key_der, signature, text: token.signing_input.as_bytes() })
        }
        Err(_) => Err(()),
    })
}

/// RS* and ES* on the host, everything else in the module.
pub struct HostVerifier<H: HostCrypto> {
    host: H,
}

impl<H: HostCrypto> HostVerifier<H> {
    pub fn new(host: H) -> Self {
        Self { host }
    }
}

impl<H: HostCrypto> SignatureVerifier for HostVerifier<H> {
    fn verify(&self, token: &ParsedToken<'_>, key: &VerifyingKey, now: UnixSeconds) -> bool {
        match host_request(token, key) {
            None => InModuleVerifier.verify(token, key, now),
            Some(Err(())) => false,
            // A host that stops answering fails closed: the request is refused, not waved on.
            Some(Ok(request)) => self.host.verify(&request) == HostVerdict::Valid,
        }
    }

    fn name(&self) -> &'static str {
        "on the host (Envoy verify_signature) for RS256/384/512 and ES256/384, in the module (jwt-simple) for PS256/384/512 and EdDSA"
    }
}

/// The probe run once at configuration: the host must accept RFC 7515 A.2's RS256 example and
/// refuse it with one byte of the signing input changed. Anything else, including a host
/// without the function, means the module verifies everything itself.
pub fn host_crypto_works(host: &dyn HostCrypto) -> bool {
    let Ok(keys) = serde_json::from_str(PROBE_JWKS).map_err(|_| ()).and_then(|jwks| {
        super::keys::KeySet::from_jwks(&jwks, super::keys::KeyUse::Signature, "probe").map_err(|_| ())
    }) else {
        return false;
    };
    let Ok(token) = ParsedToken::parse(PROBE_TOKEN, PROBE_TOKEN.len()) else { return false };
    let Some(key) = keys.candidates(None, token.alg, None).next() else { return false };
    let Some(Ok(good)) = host_request(&token, key) else { return false };
    let tampered_text = [good.text, b"x"].concat();
    let bad = HostVerifyRequest { text: &tampered_text, ..good.clone() };
    host.verify(&good) == HostVerdict::Valid && host.verify(&bad) == HostVerdict::Invalid
}

/// RFC 7515 Appendix A.2: a public example key and the token it signed.
const PROBE_JWKS: &str =
    concat!(r#"{"keys":[{"kty":"RSA","e":"AQAB","n":""#, include_str!("probe_rsa_n.txt"), r#""}]}"#);
const PROBE_TOKEN: &str = include_str!("probe_token.txt");
