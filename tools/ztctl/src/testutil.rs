//! Test helpers: chains of records built by the spec's rules (`seq` 0, 1, …; `prev` the SHA-256,
//! or the HMAC-SHA-256 under the chain key, of the previous record's exact text), since the
//! audit filter itself is written in parallel.

use std::rc::Rc;

use zt_core::audit::ChainKey;

use crate::record::digest;
use crate::scan::{Found, Kind, Location};

/// A chain key of the minimum length, for tests.
pub const KEY: &[u8] = b"test-chain-key-0123456789abcdef!";

pub struct ChainBuilder {
    chain: String,
    seq: u64,
    prev: String,
    /// `prev_alg` as written: none (records from before it existed), `sha256` or `hmac-sha256`.
    alg: Option<&'static str>,
    key: Option<ChainKey>,
}

impl ChainBuilder {
    /// An unkeyed chain whose records have no `prev_alg` (as written before it existed).
    pub fn new(chain: &str) -> Self {
        Self { chain: chain.to_owned(), seq: 0, prev: "0".repeat(64), alg: None, key: None }
    }

    /// An unkeyed chain whose records say `"prev_alg":"sha256"`.
    pub fn unkeyed(chain: &str) -> Self {
        Self { alg: Some("sha256"), ..Self::new(chain) }
    }

    /// A chain keyed by `key`, its records saying `"prev_alg":"hmac-sha256"`.
    pub fn keyed(chain: &str, key: &[u8]) -> Self {
        let key = ChainKey::from_secret(key).unwrap();
        Self { alg: Some("hmac-sha256"), key: Some(key), ..Self::new(chain) }
    }

    /// A request of `alice` (provider `corp`) to route `orders`, with this outcome.
    pub fn next(&mut self, outcome: &str) -> String {
        self.next_with(&format!(
            r#""time":"2026-11-23T19:56:31.123Z","method":"GET","path":"/orders/7","route":"orders","status":200,"identity":{{"provider":"corp","iss":"https://issuer.example","sub":"alice"}},"outcome":"{outcome}""#
        ))
    }

    /// The next record with these members after `v`, `chain`, `seq`, `prev` (and `prev_alg`).
    pub fn next_with(&mut self, members: &str) -> String {
        let alg = self.alg.map(|alg| format!(r#""prev_alg":"{alg}","#)).unwrap_or_default();
        let text =
            format!(r#"{{"v":1,"chain":"{}","seq":{},"prev":"{}",{alg}{members}}}"#, self.chain, self.seq, self.prev);
        self.seq += 1;
        let mac = match &self.key {
            Some(key) => key.mac(text.as_bytes()),
            None => digest(&text),
        };
        self.prev = mac.iter().map(|b| format!("{b:02x}")).collect();
        text
    }

    /// The checkpoint the filter would send now: the last record's `seq` and digest.
    pub fn checkpoint(&self) -> String {
        let alg = self.alg.unwrap_or("sha256");
        format!(
            r#"{{"checkpoint":{{"v":1,"chain":"{}","seq":{},"head":"{}","prev_alg":"{alg}","time":"2026-11-23T19:56:32.000Z"}}}}"#,
            self.chain,
            self.seq - 1,
            self.prev
        )
    }
}

pub fn found(line: usize, text: &str) -> Found {
    let kind = if text.starts_with(r#"{"checkpoint""#) { Kind::Checkpoint } else { Kind::Record };
    Found { at: Location { source: Rc::from("t"), line, otlp_record: None }, text: Ok(text.to_owned()), kind }
}
