//! What the decision targets share: arbitrary bytes cut into request facts, and an in-memory
//! shared store.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::IpAddr;

use serde_json::{Map, Value};
use zt_core::jwt::Identity;
use zt_core::{SharedStore, StoreError};

/// Request facts read from fuzzer bytes: fields separated by `0x00`, in the order of the
/// members below; absent trailing fields are empty.
pub struct Facts {
    pub selector: u8,
    pub method: String,
    pub path: String,
    pub authority: Option<String>,
    pub source: Option<IpAddr>,
    pub san: Option<String>,
    /// `name:value` lines.
    pub headers: Vec<(String, Vec<u8>)>,
    pub identity: Option<Identity>,
    pub now: u64,
    pub route_name: Option<String>,
    pub rest: Vec<u8>,
}

impl Facts {
    pub fn parse(data: &[u8]) -> Facts {
        let mut fields = data.splitn(11, |b| *b == 0);
        let mut next = || fields.next().unwrap_or_default();
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        let optional = |bytes: &[u8]| (!bytes.is_empty()).then(|| String::from_utf8_lossy(bytes).into_owned());
        let selector = next().first().copied().unwrap_or_default();
        let method = text(next());
        let path = text(next());
        let authority = optional(next());
        let source = match next() {
            [a, b, c, d] => Some(IpAddr::from([*a, *b, *c, *d])),
            bytes => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        };
        let san = optional(next());
        let headers = next()
            .split(|b| *b == b'\n')
            .filter_map(|line| {
                let colon = line.iter().position(|b| *b == b':')?;
                let (name, value) = line.split_at(colon);
                Some((String::from_utf8_lossy(name).to_ascii_lowercase(), value.get(1..).unwrap_or_default().to_vec()))
            })
            .collect();
        let identity =
            serde_json::from_slice::<Map<String, Value>>(next()).ok().map(|claims| Identity::from_claims("p", claims));
        let now = next().iter().take(8).fold(0u64, |n, b| n << 8 | u64::from(*b));
        let route_name = optional(next());
        let rest = next().to_vec();
        Facts { selector, method, path, authority, source, san, headers, identity, now, route_name, rest }
    }

    /// Whether some `name` header has exactly this value.
    pub fn header_is(&self, name: &str, value: &[u8]) -> bool {
        self.headers.iter().any(|(n, v)| n == name && v == value)
    }

    pub fn has_header(&self, name: &str) -> bool {
        self.headers.iter().any(|(n, _)| n == name)
    }
}

/// Envoy's shared data: compare-and-swap on a version per key.
#[derive(Default)]
pub struct Store {
    entries: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    next_cas: Cell<u32>,
}

impl SharedStore for Store {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.entries.borrow().get(key).filter(|(value, _)| !value.is_empty()).cloned()
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        let mut entries = self.entries.borrow_mut();
        if let (Some(cas), Some((_, current))) = (cas, entries.get(key)) {
            if cas != *current {
                return Err(StoreError::CasMismatch);
            }
        }
        self.next_cas.set(self.next_cas.get().wrapping_add(1));
        entries.insert(key.to_owned(), (value.to_vec(), self.next_cas.get()));
        Ok(())
    }
}
