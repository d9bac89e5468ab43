//! A native stand-in for Envoy's `verify_signature` (BoringSSL), answering as Envoy 1.40 does
//! (checked by `host-tests/tests/verify_signature.rs` against the harness and by the real-Envoy
//! tests): SPKI DER keys, PKCS#1 v1.5 RSA, ECDSA with DER signatures only.

use std::cell::Cell;

use p256::pkcs8::DecodePublicKey;
use rsa::pkcs1v15::{Signature as RsaSignature, VerifyingKey as RsaVerifyingKey};
use rsa::signature::Verifier as _;

use super::host_crypto::{HostCrypto, HostVerdict, HostVerifyRequest};

#[derive(Default)]
pub struct NativeHost {
    pub calls: Cell<usize>,
}

impl HostCrypto for NativeHost {
    fn verify(&self, request: &HostVerifyRequest<'_>) -> HostVerdict {
        self.calls.set(self.calls.get() + 1);
        let ok = verify_rsa(request).or_else(|| verify_ec(request)).unwrap_or(false);
        if ok { HostVerdict::Valid } else { HostVerdict::Invalid }
    }
}

fn verify_rsa(request: &HostVerifyRequest<'_>) -> Option<bool> {
    use rsa::pkcs8::DecodePublicKey as _;
    let key = rsa::RsaPublicKey::from_public_key_der(request.public_key_der).ok()?;
    let signature = RsaSignature::try_from(request.signature.as_ref()).ok()?;
    let text = request.text;
    Some(match request.hash_function.to_ascii_lowercase().as_str() {
        "sha256" => RsaVerifyingKey::<sha2::Sha256>::new(key).verify(text, &signature).is_ok(),
        "sha384" => RsaVerifyingKey::<sha2::Sha384>::new(key).verify(text, &signature).is_ok(),
        "sha512" => RsaVerifyingKey::<sha2::Sha512>::new(key).verify(text, &signature).is_ok(),
        _ => false,
    })
}

fn verify_ec(request: &HostVerifyRequest<'_>) -> Option<bool> {
    use p256::ecdsa::signature::Verifier as _;
    if let Ok(key) = p256::ecdsa::VerifyingKey::from_public_key_der(request.public_key_der) {
        let signature = p256::ecdsa::Signature::from_der(&request.signature).ok()?;
        return Some(
            request.hash_function.eq_ignore_ascii_case("sha256") && key.verify(request.text, &signature).is_ok(),
        );
    }
    let key = p384::ecdsa::VerifyingKey::from_public_key_der(request.public_key_der).ok()?;
    let signature = p384::ecdsa::Signature::from_der(&request.signature).ok()?;
    Some(request.hash_function.eq_ignore_ascii_case("sha384") && key.verify(request.text, &signature).is_ok())
}
