//! Tamper evidence: each record carries its place in its worker's chain (`seq`) and the
//! SHA-256 of the record before it (`prev`), so that a deleted, reordered or edited record
//! breaks the chain where it happened. `ztctl verify` checks a log against these rules.

use sha2::{Digest, Sha256};

use super::record::Draft;

/// The record format's version, the first field of every record.
pub const VERSION: u8 = 1;

/// `prev` of the first record of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One worker VM's chain. Envoy calls a worker's filters one at a time, so a chain needs no
/// lock; the id, random at VM start, keeps the chains of several workers and restarts apart.
#[derive(Debug, Clone)]
pub struct Chain {
    id: String,
    next_seq: u64,
    prev: String,
}

/// A record in its final form: the exact text that is logged, exported and hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub seq: u64,
    pub text: String,
}

impl Chain {
    /// A new chain; `random` comes from the host's random source.
    pub fn new(random: [u8; 16]) -> Self {
        Self { id: hex(&random), next_seq: 0, prev: GENESIS.to_owned() }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Appends a record to the chain and answers its text.
    pub fn seal(&mut self, draft: &Draft) -> Sealed {
        // Serializing plain strings, numbers and maps cannot fail; an empty text would still
        // break the chain visibly rather than silently.
        let body = serde_json::to_string(draft).unwrap_or_default();
        // The chain fields lead the record. Spliced rather than `#[serde(flatten)]`, which
        // serializes through a map at several times the cost; `chain` and `prev` are hex, so
        // they need no escaping, and a draft always has `time`, so its object is never empty.
        let fields = body.strip_prefix('{').unwrap_or("}");
        let text =
            format!(r#"{{"v":{VERSION},"chain":"{}","seq":{},"prev":"{}",{fields}"#, self.id, self.next_seq, self.prev);
        let sealed = Sealed { seq: self.next_seq, text };
        self.prev = hex(&Sha256::digest(sealed.text.as_bytes()));
        self.next_seq += 1;
        sealed
    }
}

/// Lower-case hex, the form of `chain`, `prev` and keyed hashes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}
