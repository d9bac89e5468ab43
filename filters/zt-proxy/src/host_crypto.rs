//! Envoy's `verify_signature` foreign function (BoringSSL on the host) as a
//! [`zt_core::jwt::HostCrypto`]. Message shapes from Envoy's
//! `source/extensions/common/wasm/ext/verify_signature.proto`.

use proxy_wasm::types::Status;
use zt_core::jwt::{HostCrypto, HostVerdict, HostVerifyRequest};

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
}

#[derive(Clone, PartialEq, prost::Message)]
struct VerifySignatureResult {
    #[prost(bool, tag = "1")]
    result: bool,
    #[prost(string, tag = "2")]
    error: String,
}

/// Calls the host for each verification.
pub struct EnvoyHostCrypto;

const FUNCTION: &str = "verify_signature";

impl HostCrypto for EnvoyHostCrypto {
    fn verify(&self, request: &HostVerifyRequest<'_>) -> HostVerdict {
        let arguments = VerifySignatureArguments {
            hash_function: request.hash_function.to_owned(),
            public_key: request.public_key_der.to_vec(),
            signature: request.signature.to_vec(),
            text: request.text.to_vec(),
        };
        let answer = match proxy_wasm::hostcalls::call_foreign_function(
            FUNCTION,
            Some(&prost::Message::encode_to_vec(&arguments)),
        ) {
            Ok(Some(bytes)) => bytes,
            Ok(None) | Err(Status::NotFound) => return HostVerdict::Unavailable,
            Err(status) => {
                log::warn!("{FUNCTION}: host answered {status:?}");
                return HostVerdict::Unavailable;
            }
        };
        match <VerifySignatureResult as prost::Message>::decode(answer.as_slice()) {
            Ok(VerifySignatureResult { result: true, .. }) => HostVerdict::Valid,
            // "Failed to initialize digest verify." means the host could not load a key that
            // the module validated at configuration: a host fault, not a forged token, but
            // still never a pass.
            Ok(VerifySignatureResult { result: false, error }) if error.starts_with("Failed to initialize") => {
                log::warn!("{FUNCTION}: host could not load a configured key: {error}");
                HostVerdict::Unavailable
            }
            Ok(_) => HostVerdict::Invalid,
            Err(_) => HostVerdict::Unavailable,
        }
    }
}
