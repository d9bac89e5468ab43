//! The route's `filter_metadata.zt`, read once per request: every stage's rule choice
//! (`jwt_requirement`, `authz_route`, `ratelimit_route`, `audit_route`) from one host call.
//!
//! Envoy answers a metadata namespace (a `google.protobuf.Struct`, which its attribute layer
//! sees as a map) in proxy-wasm's map encoding, the one header maps use: a little-endian `u32`
//! count, the length of each key and value as `u32` pairs, then each key and value followed by
//! a NUL. String values arrive as their text (checked on Envoy 1.40 with the abi-probe fixture);
//! only those name rules.

use std::collections::HashMap;

/// Where a route's metadata for the suite lives.
const NAMESPACE: [&str; 4] = ["xds", "route_metadata", "filter_metadata", "zt"];

/// The string fields of the route's `filter_metadata.zt`.
#[derive(Debug, Default)]
pub struct RouteMetadata {
    rules: HashMap<String, String>,
}

impl RouteMetadata {
    /// Reads the namespace; a route without it names no rule. A namespace that does not decode
    /// names none either, and is logged: a stage then applies its defaults or, where a rule
    /// must be named, refuses.
    pub fn read() -> Self {
        let Some(bytes) = crate::property(&NAMESPACE) else { return Self::default() };
        match decode_pairs(&bytes) {
            Some(pairs) => Self { rules: pairs.into_iter().collect() },
            None => {
                log::warn!("route metadata filter_metadata.zt is not in the map encoding: no rule is named by it");
                Self::default()
            }
        }
    }

    /// The rule the route names under `key`.
    pub fn rule(&self, key: &str) -> Option<&str> {
        self.rules.get(key).map(String::as_str)
    }
}

/// The text pairs of proxy-wasm's map encoding; `None` when the bytes are not one. Pairs whose
/// key or value is not UTF-8 (not a rule name) are left out.
fn decode_pairs(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    let word = |at: usize| -> Option<usize> {
        let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(raw)).ok()
    };
    let count = word(0)?;
    let mut data = count.checked_mul(8)?.checked_add(4)?;
    let mut pairs = Vec::with_capacity(count.min(64));
    for index in 0..count {
        let sizes = 4 + index * 8;
        let (key_len, value_len) = (word(sizes)?, word(sizes + 4)?);
        let key = bytes.get(data..data.checked_add(key_len)?)?;
        data = data.checked_add(key_len)?.checked_add(1)?;
        let value = bytes.get(data..data.checked_add(value_len)?)?;
        data = data.checked_add(value_len)?.checked_add(1)?;
        if let (Ok(key), Ok(value)) = (std::str::from_utf8(key), std::str::from_utf8(value)) {
            pairs.push((key.to_owned(), value.to_owned()));
        }
    }
    (data == bytes.len()).then_some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As Envoy 1.40 answered `filter_metadata.zt` of `{authz_route: x, ratelimit_route: public}`.
    const ENVOY: &[u8] = b"\x02\0\0\0\x0b\0\0\0\x01\0\0\0\x0f\0\0\0\x06\0\0\0authz_route\0x\0ratelimit_route\0public\0";

    #[test]
    fn decodes_what_envoy_answers() {
        let pairs = decode_pairs(ENVOY).unwrap();
        assert_eq!(pairs, [("authz_route".into(), "x".into()), ("ratelimit_route".into(), "public".into())]);
    }

    #[test]
    fn anything_else_is_no_map() {
        for bytes in [&b""[..], b"\x01\0\0\0", &ENVOY[..ENVOY.len() - 1], b"\xff\xff\xff\xff\0\0\0\0\0\0\0\0"] {
            assert_eq!(decode_pairs(bytes), None, "{bytes:?}");
        }
        let mut longer = ENVOY.to_vec();
        longer.push(0);
        assert_eq!(decode_pairs(&longer), None);
    }
}
