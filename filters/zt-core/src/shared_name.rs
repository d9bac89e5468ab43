//! Names of the entries the filters keep in Envoy's shared data. Envoy shares that data per
//! `vm_id`, and several configurations can run in one (two listeners with the same module and
//! `vm_id`, two Istio WasmPlugins of one image): an entry named only by what the operator called
//! it (a provider, a limit) would be read and written by every configuration using that name.
//! So a name carries a digest of the definition it holds state for, after the readable name:
//! `<name>.<digest>`. Equal definitions share their entries (which is right: the same issuer
//! at the same location has the same keys); different ones never meet.
//!
//! The digest is SHA-256 over a canonical encoding (a domain tag, then every field
//! length-prefixed, so that no two different definitions encode alike), cut to its first 32
//! hex digits: 128 bits, far beyond any chance collision among the definitions of one VM.

use sha2::{Digest, Sha256};

/// Hex digits of the digest kept in a name.
pub(crate) const DIGEST_HEX_DIGITS: usize = 32;

/// The canonical encoding of a definition, field by field.
pub(crate) struct Definition {
    hasher: Sha256,
}

impl Definition {
    /// `domain` tells kinds of state apart (`zt-jwt.jwks/1`, `zt-ratelimit.table/1`); changing
    /// the encoding of a kind means a new domain, so old entries are never misread.
    pub(crate) fn new(domain: &str) -> Self {
        let mut definition = Self { hasher: Sha256::new() };
        definition.field(domain.as_bytes());
        definition
    }

    pub(crate) fn field(&mut self, bytes: &[u8]) -> &mut Self {
        self.hasher.update((bytes.len() as u64).to_le_bytes());
        self.hasher.update(bytes);
        self
    }

    pub(crate) fn number(&mut self, value: u64) -> &mut Self {
        self.field(&value.to_le_bytes())
    }

    /// `<readable>.<digest>`.
    pub(crate) fn name(self, readable: &str) -> String {
        use std::fmt::Write as _;
        let mut name = String::with_capacity(readable.len() + 1 + DIGEST_HEX_DIGITS);
        name.push_str(readable);
        name.push('.');
        for byte in self.hasher.finalize().iter().take(DIGEST_HEX_DIGITS / 2) {
            // Writing to a String cannot fail.
            let _ = write!(name, "{byte:02x}");
        }
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn name(fields: &[&str]) -> String {
        let mut definition = Definition::new("test/1");
        for field in fields {
            definition.field(field.as_bytes());
        }
        definition.name("n")
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn names_are_readable_then_a_fixed_length_digest() {
        let name = name(&["a"]);
        let (readable, digest) = name.split_once('.').unwrap();
        assert_eq!(readable, "n");
        assert_eq!(digest.len(), DIGEST_HEX_DIGITS);
        assert!(digest.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn fields_shifting_between_each_other_change_the_name() {
        assert_ne!(name(&["ab", "c"]), name(&["a", "bc"]));
        assert_ne!(name(&["a", ""]), name(&["a"]));
        assert_eq!(name(&["a", "b"]), name(&["a", "b"]));
        assert_ne!(Definition::new("one/1").name("n"), Definition::new("two/1").name("n"));
    }
}
