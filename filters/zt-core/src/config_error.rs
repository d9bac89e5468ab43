//! The one error a filter's configuration can fail with: a JSON path and what is wrong there.

use std::fmt;

/// A configuration error naming the JSON path of the offending field, e.g.
/// `providers[1].audiences: must not be empty`. Filters log it and refuse to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { path: path.into(), message: message.into() }
    }

    /// Parses JSON into the raw configuration structs, reporting serde's failure at the path
    /// where it happened (unknown field, wrong type, missing field).
    pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ConfigError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let parsed: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { "(root)".to_owned() } else { path };
            ConfigError::new(path, strip_position(&e.into_inner().to_string()))
        })?;
        de.end().map_err(|e| ConfigError::new("(root)", strip_position(&e.to_string())))?;
        Ok(parsed)
    }
}

/// serde_json appends " at line L column C"; the JSON path already says where.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message.get(..i).unwrap_or(message).to_owned(),
        None => message.to_owned(),
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        items: Vec<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        name: String,
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn names_the_path_of_a_wrong_type() {
        let err = ConfigError::parse_json::<Outer>(br#"{"items":[{"name":"a"},{"name":7}]}"#).unwrap_err();
        assert_eq!(err.path, "items[1].name");
        assert!(err.message.contains("invalid type"), "{err}");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn names_an_unknown_field() {
        let err = ConfigError::parse_json::<Outer>(br#"{"items":[],"itemz":1}"#).unwrap_err();
        assert!(err.message.contains("unknown field `itemz`"), "{err}");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn rejects_trailing_garbage_and_empty_input() {
        assert!(ConfigError::parse_json::<Outer>(br#"{"items":[]} x"#).is_err());
        assert!(ConfigError::parse_json::<Outer>(b"").is_err());
    }
}
