//! Tamper evidence: each record carries its place in its worker's chain (`seq`) and a digest
//! of the record before it (`prev`), so that a deleted, reordered or edited record breaks the
//! chain where it happened. `ztctl verify` checks a log against these rules.
//!
//! `prev` is HMAC-SHA-256 (RFC 2104, FIPS 198-1) of the previous record's exact text under the
//! chain key when one is configured, so that whoever can rewrite the log but does not hold
//! the key cannot recompute the chain after an edit; without a key it is the plain SHA-256,
//! which anyone can recompute. Every record names which (`prev_alg`), so a verifier holding
//! the key refuses an unkeyed record instead of taking it for a keyed one.

use std::fmt;

use sha2::{Digest, Sha256};

use super::record::Draft;

/// The record format's version, the first field of every record.
pub const VERSION: u8 = 1;

/// `prev` of the first record of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The shortest chain key accepted: the HMAC-SHA-256 block's worth of guessing is out of reach
/// only with a key of at least the hash's length (RFC 2104 §3).
pub const MIN_CHAIN_KEY: usize = 32;

/// How `prev` is computed, as the record's `prev_alg` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrevAlg {
    /// `sha256`: anyone can recompute it; it shows accidents and careless edits only.
    Sha256,
    /// `hmac-sha256`: only a holder of the chain key can recompute it.
    HmacSha256,
}

impl PrevAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            PrevAlg::Sha256 => "sha256",
            PrevAlg::HmacSha256 => "hmac-sha256",
        }
    }

    /// The value of `prev_alg`; `None` for any other text.
    pub fn parse(text: &str) -> Option<PrevAlg> {
        [PrevAlg::Sha256, PrevAlg::HmacSha256].into_iter().find(|alg| alg.as_str() == text)
    }
}

/// The secret that keys the chain. Its bytes never appear in `Debug` output or a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct ChainKey(Vec<u8>);

/// Why a chain key was refused. Never carries the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainKeyError {
    /// After trimming white space, fewer than [`MIN_CHAIN_KEY`] bytes.
    TooShort { bytes: usize },
}

impl fmt::Display for ChainKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainKeyError::TooShort { bytes } => {
                write!(f, "the chain key has {bytes} bytes; at least {MIN_CHAIN_KEY} are required")
            }
        }
    }
}

impl std::error::Error for ChainKeyError {}

impl ChainKey {
    /// The key from its secret's bytes (an environment variable's value, a file's content).
    /// Leading and trailing ASCII white space is not part of the key: a Secret or a file
    /// written with `echo` ends in a newline that the other side may not have, and both the
    /// filter and `ztctl verify --key` must read the same key from the same secret.
    pub fn from_secret(secret: &[u8]) -> Result<ChainKey, ChainKeyError> {
        let key = secret.trim_ascii();
        if key.len() < MIN_CHAIN_KEY {
            return Err(ChainKeyError::TooShort { bytes: key.len() });
        }
        Ok(ChainKey(key.to_vec()))
    }

    /// HMAC-SHA-256 of `text` under this key.
    pub fn mac(&self, text: &[u8]) -> [u8; 32] {
        hmac_sha256::HMAC::mac(text, &self.0)
    }
}

impl fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChainKey([redacted])")
    }
}

/// One worker VM's chain. Envoy calls a worker's filters one at a time, so a chain needs no
/// lock; the id, random at VM start, keeps the chains of several workers and restarts apart.
#[derive(Debug, Clone)]
pub struct Chain {
    id: String,
    key: Option<ChainKey>,
    next_seq: u64,
    prev: String,
}

/// A record in its final form: the exact text that is logged, exported and hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub seq: u64,
    pub text: String,
}

/// Where a chain stands: its last record's `seq` and the digest of that record's text (what
/// the next record's `prev` will be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head<'a> {
    pub chain: &'a str,
    pub seq: u64,
    pub head: &'a str,
    pub alg: PrevAlg,
}

impl Chain {
    /// A new unkeyed chain; `random` comes from the host's random source.
    pub fn new(random: [u8; 16]) -> Self {
        Self { id: hex(&random), key: None, next_seq: 0, prev: GENESIS.to_owned() }
    }

    /// A new chain whose `prev` values are HMAC-SHA-256 under `key`.
    pub fn keyed(random: [u8; 16], key: ChainKey) -> Self {
        Self { key: Some(key), ..Self::new(random) }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn alg(&self) -> PrevAlg {
        if self.key.is_some() { PrevAlg::HmacSha256 } else { PrevAlg::Sha256 }
    }

    /// The chain's last record, `None` before the first.
    pub fn head(&self) -> Option<Head<'_>> {
        let seq = self.next_seq.checked_sub(1)?;
        Some(Head { chain: &self.id, seq, head: &self.prev, alg: self.alg() })
    }

    /// Appends a record to the chain and answers its text.
    pub fn seal(&mut self, draft: &Draft) -> Sealed {
        // Serializing plain strings, numbers and maps cannot fail; an empty text would still
        // break the chain visibly rather than silently.
        let body = serde_json::to_string(draft).unwrap_or_default();
        // The chain fields lead the record. Spliced rather than `#[serde(flatten)]`, which
        // serializes through a map at several times the cost; `chain`, `prev` and `prev_alg`
        // need no escaping, and a draft always has `time`, so its object is never empty.
        let fields = body.strip_prefix('{').unwrap_or("}");
        let text = format!(
            r#"{{"v":{VERSION},"chain":"{}","seq":{},"prev":"{}","prev_alg":"{}",{fields}"#,
            self.id,
            self.next_seq,
            self.prev,
            self.alg().as_str()
        );
        let sealed = Sealed { seq: self.next_seq, text };
        self.prev = match &self.key {
            Some(key) => hex(&key.mac(sealed.text.as_bytes())),
            None => hex(&Sha256::digest(sealed.text.as_bytes())),
        };
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
