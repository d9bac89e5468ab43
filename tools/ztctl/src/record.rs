//! One zt-audit record (format v1, filters/zt-audit/README.md): the chain header every record must
//! carry (`v`, `chain`, `seq`, `prev`), the fields the inventory reads, and the SHA-256 that links
//! a record to the next. Never reads a file: the text comes from [`crate::scan`].
//!
//! Neither struct denies unknown fields, on purpose: the verifier judges the chain, not the
//! schema, and every byte of a record is covered by the next record's `prev` anyway; the
//! inventory reads a few fields of records that carry many more.

use std::fmt;

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use sha2::{Digest, Sha256};
pub use zt_core::audit::PrevAlg;

/// `prev` of `seq` 0: 64 `0` characters (spec, `prev`).
pub const GENESIS_PREV: [u8; 32] = [0; 32];

/// Why a candidate is not a valid record. Each is a break: a record that cannot be read cannot be
/// vouched for, and skipping it would hide an edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// The bytes after the marker are not UTF-8.
    NotUtf8,
    /// Not one JSON value (or trailing bytes after it).
    NotJson {
        detail: String,
    },
    /// A JSON value other than an object.
    NotAnObject,
    /// A JSON object spread over several lines: records are one line each.
    SpreadOverLines,
    /// An OTLP request whose structure is not `ExportLogsServiceRequest`'s.
    OtlpInvalid {
        detail: String,
    },
    /// `v` is present but not 1.
    UnsupportedVersion {
        found: String,
    },
    Missing {
        field: &'static str,
    },
    Invalid {
        field: &'static str,
        expected: &'static str,
    },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotUtf8 => write!(f, "the record text is not UTF-8"),
            Self::NotJson { detail } => write!(f, "not valid JSON ({detail})"),
            Self::NotAnObject => write!(f, "not a JSON object"),
            Self::SpreadOverLines => write!(f, "a record JSON object spread over several lines (records are one line)"),
            Self::OtlpInvalid { detail } => write!(f, "not a valid OTLP ExportLogsServiceRequest ({detail})"),
            Self::UnsupportedVersion { found } => write!(f, "`v` is {found}; this tool reads format version 1"),
            Self::Missing { field } => write!(f, "`{field}` is missing"),
            Self::Invalid { field, expected } => write!(f, "`{field}` is not {expected}"),
        }
    }
}

impl std::error::Error for RecordError {}

/// What links a record into its chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// 32 lowercase hex digits.
    pub chain: String,
    pub seq: u64,
    pub prev: [u8; 32],
    /// `prev_alg`; records written before it existed have none and are `sha256`.
    pub alg: PrevAlg,
}

/// The header as written, each value kept raw to name precisely what is wrong with it. A derived
/// struct (rather than a `Value`) so that a key given twice is refused instead of the last one
/// silently winning.
#[derive(Deserialize)]
struct RawHeader {
    #[serde(default, deserialize_with = "present")]
    v: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    chain: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    seq: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    prev: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    prev_alg: Option<Value>,
}

/// `Some` for any value given, `null` included: the spec omits absent values, so a `null` is
/// invalid rather than missing.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// Parses and checks the chain header of one record's text.
pub fn header(text: &str) -> Result<Header, RecordError> {
    // A derived struct would also accept a JSON array by position.
    if !text.trim_start().starts_with('{') {
        return Err(RecordError::NotAnObject);
    }
    let raw: RawHeader = serde_json::from_str(text).map_err(|e| RecordError::NotJson { detail: e.to_string() })?;
    match raw.v {
        None => return Err(RecordError::Missing { field: "v" }),
        Some(v) if v.as_u64() == Some(1) => {}
        Some(v) => return Err(RecordError::UnsupportedVersion { found: v.to_string() }),
    }
    let chain = match raw.chain.ok_or(RecordError::Missing { field: "chain" })? {
        Value::String(chain) if is_lower_hex(&chain, 32) => chain,
        _ => return Err(RecordError::Invalid { field: "chain", expected: "32 lowercase hex digits" }),
    };
    let seq = raw
        .seq
        .ok_or(RecordError::Missing { field: "seq" })?
        .as_u64()
        .ok_or(RecordError::Invalid { field: "seq", expected: "a non-negative integer" })?;
    let prev = match raw.prev.ok_or(RecordError::Missing { field: "prev" })? {
        Value::String(prev) => decode_hex32(&prev),
        _ => None,
    }
    .ok_or(RecordError::Invalid { field: "prev", expected: "64 lowercase hex digits" })?;
    let alg = prev_alg(raw.prev_alg)?.unwrap_or(PrevAlg::Sha256);
    Ok(Header { chain, seq, prev, alg })
}

fn prev_alg(value: Option<Value>) -> Result<Option<PrevAlg>, RecordError> {
    let invalid = RecordError::Invalid { field: "prev_alg", expected: "\"sha256\" or \"hmac-sha256\"" };
    match value {
        None => Ok(None),
        Some(Value::String(alg)) => PrevAlg::parse(&alg).map(Some).ok_or(invalid),
        Some(_) => Err(invalid),
    }
}

/// A chain checkpoint the audit filter sends to its collector:
/// `{"checkpoint":{"v":1,"chain":…,"seq":…,"head":…,"prev_alg":…,"time":…}}`. It says that
/// the chain had reached `seq` at `time`, and that the digest of record `seq`'s text was `head`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub chain: String,
    pub seq: u64,
    pub head: [u8; 32],
    pub alg: PrevAlg,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheckpointLine {
    checkpoint: RawCheckpoint,
}

#[derive(Deserialize)]
struct RawCheckpoint {
    v: Value,
    chain: Value,
    seq: Value,
    head: Value,
    prev_alg: Value,
}

/// Parses and checks one checkpoint's text.
pub fn checkpoint(text: &str) -> Result<Checkpoint, RecordError> {
    let line: RawCheckpointLine =
        serde_json::from_str(text).map_err(|e| RecordError::NotJson { detail: e.to_string() })?;
    let raw = line.checkpoint;
    if raw.v.as_u64() != Some(1) {
        return Err(RecordError::UnsupportedVersion { found: raw.v.to_string() });
    }
    let chain = match raw.chain {
        Value::String(chain) if is_lower_hex(&chain, 32) => chain,
        _ => return Err(RecordError::Invalid { field: "checkpoint.chain", expected: "32 lowercase hex digits" }),
    };
    let seq =
        raw.seq.as_u64().ok_or(RecordError::Invalid { field: "checkpoint.seq", expected: "a non-negative integer" })?;
    let head = raw
        .head
        .as_str()
        .and_then(decode_hex32)
        .ok_or(RecordError::Invalid { field: "checkpoint.head", expected: "64 lowercase hex digits" })?;
    let alg = raw
        .prev_alg
        .as_str()
        .and_then(PrevAlg::parse)
        .ok_or(RecordError::Invalid { field: "checkpoint.prev_alg", expected: "\"sha256\" or \"hmac-sha256\"" })?;
    Ok(Checkpoint { chain, seq, head, alg })
}

/// SHA-256 of the record's exact text, as the next record's `prev` must hold it.
pub fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn is_lower_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn decode_hex32(text: &str) -> Option<[u8; 32]> {
    if !is_lower_hex(text, 64) {
        return None;
    }
    let nibble = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    let (pairs, _) = text.as_bytes().as_chunks::<2>();
    for (byte, [high, low]) in out.iter_mut().zip(pairs) {
        *byte = (nibble(*high)? << 4) | nibble(*low)?;
    }
    Some(out)
}

/// The fields the inventory reads. All optional: a record that lacks one still counts.
#[derive(Debug, Default, Deserialize)]
pub struct Fields {
    #[serde(default)]
    pub peer: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub route: Option<String>,
    #[serde(default)]
    pub identity: Option<IdentityFields>,
    #[serde(default)]
    pub outcome: Option<String>,
}

/// `identity` as the audit filter records it; `sub`, `client_id` and `iss` may be omitted or
/// replaced by `hmac-sha256:<hex>` per its configuration.
#[derive(Debug, Default, Deserialize)]
pub struct IdentityFields {
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub iss: Option<String>,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
}

pub fn fields(text: &str) -> Result<Fields, RecordError> {
    serde_json::from_str(text).map_err(|e| RecordError::NotJson { detail: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAIN: &str = "5f0c1d2e3a4b5c6d7e8f901a2b3c4d5e";

    fn zeros() -> String {
        "0".repeat(64)
    }

    #[test]
    fn reads_a_valid_header() {
        let text = format!(r#"{{"v":1,"chain":"{CHAIN}","seq":3,"prev":"{}","outcome":"allow"}}"#, "ab".repeat(32));
        assert_eq!(
            header(&text).unwrap(),
            Header { chain: CHAIN.to_owned(), seq: 3, prev: [0xab; 32], alg: PrevAlg::Sha256 }
        );
        let keyed = text.replace(r#","outcome""#, r#","prev_alg":"hmac-sha256","outcome""#);
        assert_eq!(header(&keyed).unwrap().alg, PrevAlg::HmacSha256);
        for bad in [r#""prev_alg":"md5""#, r#""prev_alg":null"#, r#""prev_alg":1"#] {
            let text = text.replace(r#""outcome":"allow""#, bad);
            assert_eq!(
                header(&text),
                Err(RecordError::Invalid { field: "prev_alg", expected: "\"sha256\" or \"hmac-sha256\"" }),
                "{text}"
            );
        }
    }

    #[test]
    fn names_what_is_wrong_with_a_header() {
        let z = zeros();
        let cases = [
            (format!(r#"{{"chain":"{CHAIN}","seq":0,"prev":"{z}"}}"#), RecordError::Missing { field: "v" }),
            (
                format!(r#"{{"v":2,"chain":"{CHAIN}","seq":0,"prev":"{z}"}}"#),
                RecordError::UnsupportedVersion { found: "2".into() },
            ),
            (
                format!(r#"{{"v":"1","chain":"{CHAIN}","seq":0,"prev":"{z}"}}"#),
                RecordError::UnsupportedVersion { found: "\"1\"".into() },
            ),
            (format!(r#"{{"v":1,"seq":0,"prev":"{z}"}}"#), RecordError::Missing { field: "chain" }),
            (format!(r#"{{"v":1,"chain":"{CHAIN}","prev":"{z}"}}"#), RecordError::Missing { field: "seq" }),
            (format!(r#"{{"v":1,"chain":"{CHAIN}","seq":0}}"#), RecordError::Missing { field: "prev" }),
            (
                format!(r#"{{"v":1,"chain":"{}","seq":0,"prev":"{z}"}}"#, CHAIN.to_uppercase()),
                RecordError::Invalid { field: "chain", expected: "32 lowercase hex digits" },
            ),
            (
                format!(r#"{{"v":1,"chain":"{CHAIN}","seq":-1,"prev":"{z}"}}"#),
                RecordError::Invalid { field: "seq", expected: "a non-negative integer" },
            ),
            (
                format!(r#"{{"v":1,"chain":"{CHAIN}","seq":1.5,"prev":"{z}"}}"#),
                RecordError::Invalid { field: "seq", expected: "a non-negative integer" },
            ),
            (
                format!(r#"{{"v":1,"chain":"{CHAIN}","seq":0,"prev":null}}"#),
                RecordError::Invalid { field: "prev", expected: "64 lowercase hex digits" },
            ),
            (
                format!(r#"{{"v":1,"chain":"{CHAIN}","seq":0,"prev":"{}"}}"#, "0".repeat(63)),
                RecordError::Invalid { field: "prev", expected: "64 lowercase hex digits" },
            ),
            (format!(r#"[1,"{CHAIN}",0,"{z}"]"#), RecordError::NotAnObject),
        ];
        for (text, want) in cases {
            assert_eq!(header(&text), Err(want), "{text}");
        }
    }

    #[test]
    fn refuses_a_key_given_twice_and_trailing_bytes() {
        let z = zeros();
        for text in [
            format!(r#"{{"v":1,"chain":"{CHAIN}","seq":0,"seq":5,"prev":"{z}"}}"#),
            format!(r#"{{"v":1,"chain":"{CHAIN}","seq":0,"prev":"{z}"}} x"#),
        ] {
            assert!(matches!(header(&text), Err(RecordError::NotJson { .. })), "{text}");
        }
    }

    #[test]
    fn reads_a_checkpoint_and_names_what_is_wrong_with_one() {
        let head = "cd".repeat(32);
        let text = format!(
            r#"{{"checkpoint":{{"v":1,"chain":"{CHAIN}","seq":7,"head":"{head}","prev_alg":"hmac-sha256","time":"2026-12-06T22:00:00.000Z"}}}}"#
        );
        assert_eq!(
            checkpoint(&text).unwrap(),
            Checkpoint { chain: CHAIN.to_owned(), seq: 7, head: [0xcd; 32], alg: PrevAlg::HmacSha256 }
        );
        let cases = [
            (text.replace("\"v\":1", "\"v\":2"), RecordError::UnsupportedVersion { found: "2".into() }),
            (
                text.replace("\"seq\":7", "\"seq\":-7"),
                RecordError::Invalid { field: "checkpoint.seq", expected: "a non-negative integer" },
            ),
            (
                text.replace(&head, "CD"),
                RecordError::Invalid { field: "checkpoint.head", expected: "64 lowercase hex digits" },
            ),
            (
                text.replace("hmac-sha256", "none"),
                RecordError::Invalid { field: "checkpoint.prev_alg", expected: "\"sha256\" or \"hmac-sha256\"" },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(checkpoint(&text), Err(want), "{text}");
        }
        assert!(matches!(checkpoint(&text.replace("}}", "},\"x\":1}")), Err(RecordError::NotJson { .. })));
    }

    #[test]
    fn digest_is_sha256_of_the_exact_text() {
        // FIPS 180-2 test vector "abc".
        let hex: String = digest("abc").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(decode_hex32(&hex), Some(digest("abc")));
    }

    #[test]
    fn reads_inventory_fields_and_ignores_the_rest() {
        let text = r#"{"v":1,"method":"GET","path":"/a?b","identity":{"provider":"corp","sub":"alice","scopes":["x"]},"outcome":"allow","status":200}"#;
        let f = fields(text).unwrap();
        assert_eq!(
            (f.method.as_deref(), f.path.as_deref(), f.outcome.as_deref()),
            (Some("GET"), Some("/a?b"), Some("allow"))
        );
        let identity = f.identity.unwrap();
        assert_eq!((identity.provider.as_deref(), identity.sub.as_deref()), (Some("corp"), Some("alice")));
    }
}
