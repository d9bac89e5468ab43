//! Envoy's `verify_signature` foreign function as the harness answers it, called from inside a
//! module (the probe), against what the real Envoy 1.40 answers (observed with the same probe).

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jwt_simple::prelude::*;
use zt_host_tests::envoy_crypto::{decode_result, encode_arguments};
use zt_host_tests::{FilterSpec, Harness, Request};

fn rsa() -> &'static RS256KeyPair {
    static KEY: OnceLock<RS256KeyPair> = OnceLock::new();
    KEY.get_or_init(|| RS256KeyPair::generate(2048).unwrap())
}

/// Signing input and raw signature of a token signed by `sign`.
fn signed(token: String) -> (Vec<u8>, Vec<u8>) {
    let (input, signature) = token.rsplit_once('.').unwrap();
    (input.as_bytes().to_vec(), base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature).unwrap())
}

/// Calls the function from inside the probe module; `Err` carries the status name.
fn call(envoy: &mut Harness, arguments: &[u8]) -> Result<(bool, String), String> {
    let exchange = envoy.send(Request::get("/").header("x-probe-verify", STANDARD.encode(arguments)));
    let answer = exchange.upstream_header("x-probe-out-verify").unwrap();
    match STANDARD.decode(&answer) {
        Ok(bytes) if answer != "NotFound" && answer != "BadArgument" => Ok(decode_result(&bytes).unwrap()),
        _ => Err(answer),
    }
}

fn probe() -> Harness {
    let mut envoy = Harness::new();
    envoy.load(FilterSpec::new("fixture_abi_probe", "{}")).unwrap();
    envoy
}

#[test]
fn rs256_verifies_and_a_bad_signature_does_not() {
    let mut envoy = probe();
    let key = rsa().public_key().to_der().unwrap();
    let (text, signature) = signed(rsa().sign(Claims::create(Duration::from_mins(5))).unwrap());
    assert_eq!(call(&mut envoy, &encode_arguments("sha256", &key, &signature, &text, "")), Ok((true, String::new())));
    assert_eq!(call(&mut envoy, &encode_arguments("SHA256", &key, &signature, &text, "")), Ok((true, String::new())));
    let tampered = [text.as_slice(), b"x"].concat();
    assert_eq!(
        call(&mut envoy, &encode_arguments("sha256", &key, &signature, &tampered, "")),
        Ok((false, "Failed to verify digest. Error code: 0".into()))
    );
    let pem = rsa().public_key().to_pem().unwrap();
    assert_eq!(call(&mut envoy, &encode_arguments("sha256", &[], &signature, &text, &pem)), Ok((true, String::new())));
    assert_eq!(call(&mut envoy, &encode_arguments("sha256", &key, &signature, &text, &pem)), Err("BadArgument".into()));
    assert_eq!(
        call(&mut envoy, &encode_arguments("md5", &key, &signature, &text, "")),
        Ok((false, "md5 is not supported.".into()))
    );
}

#[test]
fn es256_needs_a_der_signature() {
    let mut envoy = probe();
    let pair = ES256KeyPair::generate();
    let key = pair.public_key().to_der().unwrap();
    let (text, raw) = signed(pair.sign(Claims::create(Duration::from_mins(5))).unwrap());
    let der = p256::ecdsa::Signature::from_slice(&raw).unwrap().to_der().as_bytes().to_vec();
    assert_eq!(call(&mut envoy, &encode_arguments("sha256", &key, &der, &text, "")), Ok((true, String::new())));
    assert_eq!(call(&mut envoy, &encode_arguments("sha256", &key, &raw, &text, "")).map(|r| r.0), Ok(false));
}

#[test]
fn pss_and_ed25519_do_not_verify_through_it() {
    let mut envoy = probe();
    let pss = PS256KeyPair::generate(2048).unwrap();
    let (text, signature) = signed(pss.sign(Claims::create(Duration::from_mins(5))).unwrap());
    let key = pss.public_key().to_der().unwrap();
    assert_eq!(call(&mut envoy, &encode_arguments("sha256", &key, &signature, &text, "")).map(|r| r.0), Ok(false));
    let ed = Ed25519KeyPair::generate();
    let (text, signature) = signed(ed.sign(Claims::create(Duration::from_mins(5))).unwrap());
    let key = ed.public_key().to_der();
    assert_eq!(
        call(&mut envoy, &encode_arguments("sha256", &key, &signature, &text, "")),
        Ok((false, "Failed to initialize digest verify.".into()))
    );
}

#[test]
fn an_unloadable_key_answers_ok_with_an_error_text() {
    let mut envoy = probe();
    assert_eq!(
        call(&mut envoy, &encode_arguments("sha256", b"not a key", b"sig", b"text", "")),
        Ok((false, "Failed to initialize digest verify.".into()))
    );
}

#[test]
fn a_host_without_the_function_answers_not_found() {
    let mut envoy = Harness::new();
    envoy.withhold_verify_signature();
    envoy.load(FilterSpec::new("fixture_abi_probe", "{}")).unwrap();
    assert_eq!(call(&mut envoy, &encode_arguments("sha256", b"k", b"s", b"t", "")), Err("NotFound".into()));
}
