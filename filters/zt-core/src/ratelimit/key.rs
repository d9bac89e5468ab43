//! A limit's bucket key for one request: the values its `key` names, as descriptor entries
//! (the pairs the rate-limit service receives) and as a digest (what shared memory holds).

use std::net::IpAddr;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::RequestFacts;
use super::compile::KeyPart;
use super::table::KeyId;

/// The descriptor entries of a key, in the limit's `key` order: `("claim.sub", "alice")`,
/// `("source_prefix", "10.1.2.0/24")`.
pub(crate) type Entries = Vec<(String, String)>;

/// Why a request has no key for a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unkeyed;

pub(crate) fn entries(parts: &[KeyPart], facts: &RequestFacts<'_>, route: &str) -> Result<Entries, Unkeyed> {
    parts.iter().map(|part| entry(part, facts, route)).collect()
}

fn entry(part: &KeyPart, facts: &RequestFacts<'_>, route: &str) -> Result<(String, String), Unkeyed> {
    Ok(match part {
        KeyPart::Claim(path) => (format!("claim.{}", path.join(".")), claim(facts, path).ok_or(Unkeyed)?),
        KeyPart::Provider => ("provider".to_owned(), facts.identity.ok_or(Unkeyed)?.provider.clone()),
        KeyPart::Header(name) => {
            let value = facts.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v).ok_or(Unkeyed)?;
            (format!("header.{name}"), String::from_utf8(value.clone()).map_err(|_| Unkeyed)?)
        }
        KeyPart::SourceIp => ("source_ip".to_owned(), facts.source.ok_or(Unkeyed)?.to_string()),
        KeyPart::SourcePrefix { ipv4, ipv6 } => {
            ("source_prefix".to_owned(), network(facts.source.ok_or(Unkeyed)?, *ipv4, *ipv6))
        }
        KeyPart::RemoteIp => ("remote_ip".to_owned(), facts.remote.ok_or(Unkeyed)?.to_string()),
        KeyPart::Route => ("route".to_owned(), route.to_owned()),
        KeyPart::Method => ("method".to_owned(), facts.method.to_owned()),
    })
}

/// Strings as they are; numbers and booleans as JSON writes them; anything else keys nothing
/// (an object or array is not an identity).
fn claim(facts: &RequestFacts<'_>, path: &[String]) -> Option<String> {
    let (first, rest) = path.split_first()?;
    let identity = facts.identity?;
    let value = rest.iter().try_fold(identity.claims.get(first)?, |value, member| value.as_object()?.get(member))?;
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The address's network, `10.1.2.0/24` or `2001:db8::/64`. An IPv4-mapped IPv6 address is
/// the IPv4 client it is.
fn network(address: IpAddr, ipv4: u8, ipv6: u8) -> String {
    match address.to_canonical() {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(ipv4)).unwrap_or(0);
            format!("{}/{ipv4}", std::net::Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(ipv6)).unwrap_or(0);
            format!("{}/{ipv6}", std::net::Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

/// The digest that identifies the bucket: limit name and entries, each length-prefixed so
/// that no two different keys encode alike.
pub(crate) fn key_id(limit: &str, entries: &Entries) -> KeyId {
    let mut hasher = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    field(limit.as_bytes());
    for (name, value) in entries {
        field(name.as_bytes());
        field(value.as_bytes());
    }
    let digest = hasher.finalize();
    let mut id = [0u8; 16];
    for (out, byte) in id.iter_mut().zip(digest.iter()) {
        *out = *byte;
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn networks_mask_host_bits() {
        assert_eq!(network("10.1.2.3".parse().unwrap(), 24, 64), "10.1.2.0/24");
        assert_eq!(network("10.1.2.3".parse().unwrap(), 32, 64), "10.1.2.3/32");
        assert_eq!(network("::ffff:10.1.2.3".parse().unwrap(), 16, 64), "10.1.0.0/16");
        assert_eq!(network("2001:db8:1:2:3:4:5:6".parse().unwrap(), 24, 64), "2001:db8:1:2::/64");
        assert_eq!(network("2001:db8::1".parse().unwrap(), 24, 1), "::/1");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn key_ids_differ_when_values_shift_between_fields() {
        let a = vec![("a".to_owned(), "bc".to_owned())];
        let b = vec![("ab".to_owned(), "c".to_owned())];
        assert_ne!(key_id("l", &a), key_id("l", &b));
        assert_ne!(key_id("l", &a), key_id("m", &a));
        assert_eq!(key_id("l", &a), key_id("l", &a.clone()));
    }
}
