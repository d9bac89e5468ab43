//! Signature verification behind one small trait, so that the same core can use `jwt-simple`
//! inside the module or, where the host offers it, the host's own crypto.
//!
//! The core, never a verifier, decides which key and algorithm are acceptable: a verifier is
//! only asked "does this key, with this algorithm, sign these bytes to this signature?".

use std::time::Duration;

use jwt_simple::prelude::{
    ECDSAP256PublicKeyLike, ECDSAP384PublicKeyLike, EdDSAPublicKeyLike, MACLike, NoCustomClaims, RSAPublicKeyLike,
    UnixTimeStamp, VerificationOptions,
};

use super::algorithm::Algorithm;
use super::keys::{KeyMaterial, VerifyingKey};
use super::token::ParsedToken;
use crate::time::UnixSeconds;

/// Answers whether `key` verifies `token`'s signature under `token.alg`. Called only with a
/// key whose [`VerifyingKey::accepts`] holds for that algorithm.
pub trait SignatureVerifier {
    fn verify(&self, token: &ParsedToken<'_>, key: &VerifyingKey, now: UnixSeconds) -> bool;

    /// A name for logs: which path verified the signatures.
    fn name(&self) -> &'static str;
}

/// Verification inside the module with `jwt-simple` (pure Rust): works on every host.
pub struct InModuleVerifier;

/// jwt-simple re-checks the time claims; the core already applied the provider's rules, so its
/// window is opened wide enough never to decide anything. One year keeps `exp + tolerance` far
/// inside jwt-simple's 32.32 fixed-point range for every date the core lets through.
const NEUTRAL_TOLERANCE: Duration = Duration::from_secs(366 * 24 * 3600);

impl SignatureVerifier for InModuleVerifier {
    fn verify(&self, token: &ParsedToken<'_>, key: &VerifyingKey, now: UnixSeconds) -> bool {
        let options = || {
            Some(VerificationOptions {
                time_tolerance: Some(NEUTRAL_TOLERANCE.into()),
                artificial_time: Some(UnixTimeStamp::from_secs(now.0)),
                accept_future: true,
                max_token_length: Some(token.compact.len()),
                ..VerificationOptions::default()
            })
        };
        let compact = token.compact;
        match (&key.material, token.alg) {
            (KeyMaterial::Rsa { rs256, .. }, Algorithm::Rs256) => {
                rs256.verify_token::<NoCustomClaims>(compact, options()).is_ok()
            }
            (KeyMaterial::Rsa { rs384, .. }, Algorithm::Rs384) => {
                rs384.verify_token::<NoCustomClaims>(compact, options()).is_ok()
            }
            (KeyMaterial::Rsa { rs512, .. }, Algorithm::Rs512) => {
                rs512.verify_token::<NoCustomClaims>(compact, options()).is_ok()
            }
            (KeyMaterial::Rsa { ps256, .. }, Algorithm::Ps256) => {
                ps256.verify_token::<NoCustomClaims>(compact, options()).is_ok()
            }
            (KeyMaterial::Rsa { ps384, .. }, Algorithm::Ps384) => {
                ps384.verify_token::<NoCustomClaims>(compact, options()).is_ok()
            }
            (KeyMaterial::Rsa { ps512, .. }, Algorithm::Ps512) => {
                ps512.verify_token::<NoCustomClaims>(compact, options()).is_ok()
            }
            (KeyMaterial::P256(key), Algorithm::Es256) => {
                key.verify_token::<NoCustomClaims>(compact, options()).is_ok()
            }
            (KeyMaterial::P384(key), Algorithm::Es384) => {
                key.verify_token::<NoCustomClaims>(compact, options()).is_ok()
            }
            (KeyMaterial::Ed25519(key), Algorithm::EdDsa) => {
                key.verify_token::<NoCustomClaims>(compact, options()).is_ok()
            }
            (KeyMaterial::Hs256(key), Algorithm::Hs256) => {
                key.verify_token::<NoCustomClaims>(compact, options()).is_ok()
            }
            (KeyMaterial::Hs384(key), Algorithm::Hs384) => {
                key.verify_token::<NoCustomClaims>(compact, options()).is_ok()
            }
            (KeyMaterial::Hs512(key), Algorithm::Hs512) => {
                key.verify_token::<NoCustomClaims>(compact, options()).is_ok()
            }
            // The core never asks this; answering false keeps a mistake closed.
            _ => false,
        }
    }

    fn name(&self) -> &'static str {
        "in-module (jwt-simple)"
    }
}
