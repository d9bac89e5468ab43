//! Envoy 1.40's `verify_signature` foreign function, answered as Envoy answers it (checked on
//! the real binary with the abi-probe fixture), with native crypto in place of BoringSSL:
//! - `hash_function` `sha1` to `sha512`, any case; another name: `result=false` and an error;
//! - the key as SubjectPublicKeyInfo DER (field 2) or PEM (field 5); both: `BadArgument`;
//!   a key that does not load: `Ok`, `result=false`, "Failed to initialize digest verify.";
//! - RSA PKCS#1 v1.5, and ECDSA P-256/P-384 only with a DER signature;
//! - RSA-PSS and Ed25519 keys are not usable through it: `result=false`;
//! - a bad signature: `result=false`, "Failed to verify digest. Error code: 0".

use proxy_wasm_host::abi::v0_2_1::types::Status;

// The messages are written here again rather than shared with `zt-proxy`, on purpose: the host
// side of a protocol defined independently of the module side, as Envoy's .proto is, so that a
// mistake in the filter's encoding fails these tests instead of being mirrored by them.

#[derive(Clone, PartialEq, prost::Message)]
struct VerifySignatureArguments {
    #[prost(string, tag = "1")]
    hash_function: String,
    #[prost(bytes = "vec", tag = "2")]
    public_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    signature: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    text: Vec<u8>,
    #[prost(string, tag = "5")]
    public_key_pem: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct VerifySignatureResult {
    #[prost(bool, tag = "1")]
    result: bool,
    #[prost(string, tag = "2")]
    error: String,
}

pub const NAME: &str = "verify_signature";

#[derive(Clone, Copy)]
enum Hash {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

/// Answers one call: the serialized `VerifySignatureResult`, or the status Envoy returns.
pub fn verify_signature(arguments: &[u8]) -> Result<Vec<u8>, Status> {
    let args = <VerifySignatureArguments as prost::Message>::decode(arguments).map_err(|_| Status::BadArgument)?;
    let answer = |result: bool, error: &str| {
        Ok(prost::Message::encode_to_vec(&VerifySignatureResult { result, error: error.to_owned() }))
    };
    let hash = match args.hash_function.to_ascii_lowercase().as_str() {
        "sha1" => Hash::Sha1,
        "sha224" => Hash::Sha224,
        "sha256" => Hash::Sha256,
        "sha384" => Hash::Sha384,
        "sha512" => Hash::Sha512,
        _ => return answer(false, &format!("{} is not supported.", args.hash_function)),
    };
    if !args.public_key.is_empty() && !args.public_key_pem.is_empty() {
        return Err(Status::BadArgument);
    }
    let key = match load_key(&args) {
        Some(key) => key,
        None => return answer(false, "Failed to initialize digest verify."),
    };
    if key.verify(hash, &args.text, &args.signature) {
        answer(true, "")
    } else {
        answer(false, "Failed to verify digest. Error code: 0")
    }
}

enum PublicKey {
    Rsa(rsa::RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
}

fn load_key(args: &VerifySignatureArguments) -> Option<PublicKey> {
    use p256::pkcs8::DecodePublicKey as _;
    use rsa::pkcs8::DecodePublicKey as _;
    if !args.public_key_pem.is_empty() {
        let pem = args.public_key_pem.as_str();
        return rsa::RsaPublicKey::from_public_key_pem(pem)
            .map(PublicKey::Rsa)
            .ok()
            .or_else(|| p256::ecdsa::VerifyingKey::from_public_key_pem(pem).map(PublicKey::P256).ok())
            .or_else(|| p384::ecdsa::VerifyingKey::from_public_key_pem(pem).map(PublicKey::P384).ok());
    }
    let der = args.public_key.as_slice();
    rsa::RsaPublicKey::from_public_key_der(der)
        .map(PublicKey::Rsa)
        .ok()
        .or_else(|| p256::ecdsa::VerifyingKey::from_public_key_der(der).map(PublicKey::P256).ok())
        .or_else(|| p384::ecdsa::VerifyingKey::from_public_key_der(der).map(PublicKey::P384).ok())
}

impl PublicKey {
    fn verify(&self, hash: Hash, text: &[u8], signature: &[u8]) -> bool {
        match self {
            PublicKey::Rsa(key) => verify_rsa(key, hash, text, signature),
            // BoringSSL's digest-verify with an EC key takes a DER signature over the message
            // hashed with the given function; only the curve's own hash is used by JWS.
            PublicKey::P256(key) => {
                use p256::ecdsa::signature::Verifier as _;
                matches!(hash, Hash::Sha256)
                    && p256::ecdsa::Signature::from_der(signature).is_ok_and(|s| key.verify(text, &s).is_ok())
            }
            PublicKey::P384(key) => {
                use p384::ecdsa::signature::Verifier as _;
                matches!(hash, Hash::Sha384)
                    && p384::ecdsa::Signature::from_der(signature).is_ok_and(|s| key.verify(text, &s).is_ok())
            }
        }
    }
}

fn verify_rsa(key: &rsa::RsaPublicKey, hash: Hash, text: &[u8], signature: &[u8]) -> bool {
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::signature::Verifier as _;
    let Ok(signature) = Signature::try_from(signature) else { return false };
    let key = key.clone();
    match hash {
        Hash::Sha1 => VerifyingKey::<sha1::Sha1>::new(key).verify(text, &signature).is_ok(),
        Hash::Sha224 => VerifyingKey::<sha2::Sha224>::new(key).verify(text, &signature).is_ok(),
        Hash::Sha256 => VerifyingKey::<sha2::Sha256>::new(key).verify(text, &signature).is_ok(),
        Hash::Sha384 => VerifyingKey::<sha2::Sha384>::new(key).verify(text, &signature).is_ok(),
        Hash::Sha512 => VerifyingKey::<sha2::Sha512>::new(key).verify(text, &signature).is_ok(),
    }
}

/// Encodes arguments as a module would; for tests of this function.
pub fn encode_arguments(
    hash_function: &str,
    public_key_der: &[u8],
    signature: &[u8],
    text: &[u8],
    public_key_pem: &str,
) -> Vec<u8> {
    prost::Message::encode_to_vec(&VerifySignatureArguments {
        hash_function: hash_function.to_owned(),
        public_key: public_key_der.to_vec(),
        signature: signature.to_vec(),
        text: text.to_vec(),
        public_key_pem: public_key_pem.to_owned(),
    })
}

/// Decodes an answer into `(result, error)`; for tests.
pub fn decode_result(bytes: &[u8]) -> Option<(bool, String)> {
    <VerifySignatureResult as prost::Message>::decode(bytes).ok().map(|r| (r.result, r.error))
}
