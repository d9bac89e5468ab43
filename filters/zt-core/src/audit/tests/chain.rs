use sha2::{Digest, Sha256};
use wasm_bindgen_test::wasm_bindgen_test;

use super::{allowed_facts, config};
use crate::audit::chain::hex;
use crate::audit::{Chain, GENESIS};

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
