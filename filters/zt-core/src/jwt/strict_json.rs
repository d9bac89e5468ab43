//! JSON objects parsed with serde_json, refusing duplicate member names at any depth.
//!
//! serde_json keeps the last of two equal names (`{"scope":"read","scope":"admin"}` reads as
//! `admin`) while other parsers keep the first: a token whose components disagree on its claims
//! is an authorization bypass, so duplicates are an error here (RFC 8725 §3.11 spirit).

use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// Parses `bytes` as one JSON object with no duplicate member names anywhere inside it.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, StrictJsonError> {
    let value: StrictValue = serde_json::from_slice(bytes).map_err(|e| {
        if e.to_string().starts_with(DUPLICATE) { StrictJsonError::DuplicateMember } else { StrictJsonError::Invalid }
    })?;
    match value.0 {
        Value::Object(map) => Ok(map),
        _ => Err(StrictJsonError::NotAnObject),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrictJsonError {
    Invalid,
    NotAnObject,
    DuplicateMember,
}

const DUPLICATE: &str = "duplicate member";

struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = StrictValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::from(v)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::from(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v)))
    }

    fn visit_unit<E>(self) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrictValue, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(StrictValue(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<StrictValue, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let StrictValue(value) = access.next_value()?;
            if map.insert(key, value).is_some() {
                return Err(A::Error::custom(DUPLICATE));
            }
        }
        Ok(StrictValue(Value::Object(map)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn accepts_objects_and_keeps_values() {
        let map = parse_object(br#"{"a":1,"b":[true,null,"x",{"c":-2.5}]}"#).unwrap();
        assert_eq!(map["a"], 1);
        assert_eq!(map["b"][3]["c"], -2.5);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn refuses_duplicates_at_any_depth() {
        assert_eq!(parse_object(br#"{"scope":"read","scope":"admin"}"#), Err(StrictJsonError::DuplicateMember));
        assert_eq!(parse_object(br#"{"a":{"b":1,"b":2}}"#), Err(StrictJsonError::DuplicateMember));
        assert_eq!(parse_object(br#"{"a":[{"b":1,"b":1}]}"#), Err(StrictJsonError::DuplicateMember));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn refuses_non_objects_and_invalid_json() {
        assert_eq!(parse_object(br#"["HS256"]"#), Err(StrictJsonError::NotAnObject));
        assert_eq!(parse_object(br#""x""#), Err(StrictJsonError::NotAnObject));
        assert_eq!(parse_object(b"{\"a\":1"), Err(StrictJsonError::Invalid));
        assert_eq!(parse_object(b"\xef\xbb\xbf{}"), Err(StrictJsonError::Invalid));
        assert_eq!(parse_object(b"{\"a\":\"\xff\"}"), Err(StrictJsonError::Invalid));
    }
}
