use sha2::{Digest, Sha256};
use wasm_bindgen_test::wasm_bindgen_test;

use super::{allowed_facts, config};
use crate::audit::chain::hex;
use crate::audit::{Chain, ChainKey, GENESIS, PrevAlg};

#[wasm_bindgen_test(unsupported = test)]
fn each_record_names_the_hash_of_the_one_before() {
    let config = config(serde_json::json!({}));
    let mut chain = Chain::new([0xab; 16]);
    let texts: Vec<String> = (0..5).map(|_| chain.seal(&config.draft(&allowed_facts())).text).collect();
    let mut prev = GENESIS.to_owned();
    for (seq, text) in texts.iter().enumerate() {
        let record: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(record["seq"], seq);
        assert_eq!(record["chain"], chain.id());
        assert_eq!(record["prev"], prev.as_str());
        prev = hex(&Sha256::digest(text.as_bytes()));
    }
    assert!(texts[0].starts_with(r#"{"v":1,"chain":"abab"#), "{}", texts[0]);
}

#[wasm_bindgen_test(unsupported = test)]
fn chains_of_two_workers_are_apart() {
    let (a, b) = (Chain::new([1; 16]), Chain::new([2; 16]));
    assert_ne!(a.id(), b.id());
    assert_eq!(a.id().len(), 32);
}

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

fn keyed_config() -> crate::audit::AuditConfig {
    config(serde_json::json!({"chain_key": {"env": "ZT_AUDIT_CHAIN_KEY"}}))
}

#[wasm_bindgen_test(unsupported = test)]
fn an_unkeyed_chain_says_so_in_every_record() {
    let config = config(serde_json::json!({}));
    let mut chain = config.chain([1; 16], |_| panic!("no key configured, none read")).unwrap();
    assert_eq!(chain.alg(), PrevAlg::Sha256);
    for _ in 0..2 {
        let record: serde_json::Value =
            serde_json::from_str(&chain.seal(&config.draft(&allowed_facts())).text).unwrap();
        assert_eq!(record["prev_alg"], "sha256");
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn a_keyed_chain_links_records_by_hmac_under_the_key() {
    let config = keyed_config();
    // The variable's value as a Secret mounted with a trailing newline: not part of the key.
    let mut secret = KEY.to_vec();
    secret.push(b'\n');
    let mut chain = config.chain([0xab; 16], |name| (name == "ZT_AUDIT_CHAIN_KEY").then(|| secret.clone())).unwrap();
    assert_eq!(chain.alg(), PrevAlg::HmacSha256);
    let texts: Vec<String> = (0..4).map(|_| chain.seal(&config.draft(&allowed_facts())).text).collect();
    let mut prev = GENESIS.to_owned();
    for (seq, text) in texts.iter().enumerate() {
        let record: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!((record["seq"].as_u64(), record["prev_alg"].as_str()), (Some(seq as u64), Some("hmac-sha256")));
        assert_eq!(record["prev"], prev.as_str());
        // RFC 2104 HMAC, computed by the crate the filter uses for `identity.hash` too.
        prev = hex(&hmac_sha256::HMAC::mac(text.as_bytes(), KEY));
        assert_ne!(prev, hex(&Sha256::digest(text.as_bytes())), "not the plain hash");
    }
    let head = chain.head().unwrap();
    assert_eq!((head.chain, head.seq, head.head, head.alg), (chain.id(), 3, prev.as_str(), PrevAlg::HmacSha256));
    // A known HMAC-SHA-256 vector (RFC 4231 test case 2, key "Jefe" is too short for a chain
    // key, so case 6's 131-byte key): the primitive is the standard one.
    let key = ChainKey::from_secret(&[0xaa; 131]).unwrap();
    assert_eq!(
        hex(&key.mac(b"Test Using Larger Than Block-Size Key - Hash Key First")),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn a_configured_key_that_is_missing_or_short_refuses_to_start() {
    let config = keyed_config();
    let missing = config.chain([1; 16], |_| None).unwrap_err();
    assert_eq!(missing.path, "chain_key.env");
    assert!(missing.message.contains("ZT_AUDIT_CHAIN_KEY is not set"), "{}", missing.message);
    let short = config.chain([1; 16], |_| Some(b"  short-key-of-31-bytes-xxxxxxxxx\n".to_vec())).unwrap_err();
    assert_eq!(short.path, "chain_key.env");
    assert!(short.message.contains("31 bytes; at least 32"), "{}", short.message);
    assert!(!short.message.contains("short-key"), "the key is never echoed: {}", short.message);
    for bad in ["", "1KEY", "ZT-KEY", "ZT KEY"] {
        let error =
            crate::audit::AuditConfig::from_json(serde_json::json!({"chain_key": {"env": bad}}).to_string().as_bytes())
                .unwrap_err();
        assert_eq!(error.path, "chain_key.env", "{bad:?}");
    }
    let error = crate::audit::AuditConfig::from_json(br#"{"chain_key": {"env": "K", "value": "inline"}}"#).unwrap_err();
    assert_eq!(error.path, "chain_key.value");
}

#[wasm_bindgen_test(unsupported = test)]
fn a_chain_key_never_shows_in_debug_output() {
    let key = ChainKey::from_secret(KEY).unwrap();
    assert_eq!(format!("{key:?}"), "ChainKey([redacted])");
    let chain = crate::audit::Chain::keyed([1; 16], key);
    assert!(!format!("{chain:?}").contains("0123456789abcdef"));
}
