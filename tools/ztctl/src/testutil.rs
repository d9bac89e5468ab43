//! Test helpers: chains of records built by the spec's rules (`seq` 0, 1, …; `prev` the SHA-256
//! of the previous record's exact text), since the audit filter itself is written in parallel.

use std::rc::Rc;

use crate::record::digest;
use crate::scan::{Found, Location};

pub struct ChainBuilder {
    chain: String,
    seq: u64,
    prev: String,
}

impl ChainBuilder {
    pub fn new(chain: &str) -> Self {
        Self { chain: chain.to_owned(), seq: 0, prev: "0".repeat(64) }
    }

    /// A request of `alice` (provider `corp`) to route `orders`, with this outcome.
    pub fn next(&mut self, outcome: &str) -> String {
        self.next_with(&format!(
            r#""time":"2026-11-23T19:56:31.123Z","method":"GET","path":"/orders/7","route":"orders","status":200,"identity":{{"provider":"corp","iss":"https://issuer.example","sub":"alice"}},"outcome":"{outcome}""#
        ))
    }

    /// The next record with these members after `v`, `chain`, `seq` and `prev`.
    pub fn next_with(&mut self, members: &str) -> String {
        let text = format!(r#"{{"v":1,"chain":"{}","seq":{},"prev":"{}",{members}}}"#, self.chain, self.seq, self.prev);
        self.seq += 1;
        self.prev = digest(&text).iter().map(|b| format!("{b:02x}")).collect();
        text
    }
}

pub fn found(line: usize, text: &str) -> Found {
    Found { at: Location { source: Rc::from("t"), line, otlp_record: None }, text: Ok(text.to_owned()) }
}
