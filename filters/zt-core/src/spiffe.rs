//! SPIFFE IDs, parsed by the SPIFFE ID standard, §2
//! (<https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md>): the mTLS peer's URI SAN,
//! the subject of a JWT-SVID, and the IDs a configuration names. One parser for all of them, so
//! an ID that the configuration could not have named never matches anything.

/// A parsed `spiffe://<trust domain><path>`, borrowing the text it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpiffeId<'a> {
    /// Lowercase letters, digits, `.`, `-`, `_` (§2.1).
    pub(crate) trust_domain: &'a str,
    /// Empty, or `/`-separated non-empty segments of letters, digits, `.`, `-`, `_`, none of
    /// them `.` or `..` (§2.2).
    pub(crate) path: &'a str,
}

const SCHEME: &str = "spiffe://";
/// §2.3: IDs longer than 2048 bytes are refused.
const MAX_LEN: usize = 2048;

impl<'a> SpiffeId<'a> {
    pub(crate) fn parse(id: &'a str) -> Result<Self, &'static str> {
        if id.len() > MAX_LEN {
            return Err("is longer than 2048 bytes");
        }
        // §2: the scheme is lowercase `spiffe`; no userinfo, port, query or fragment.
        let rest = id.strip_prefix(SCHEME).ok_or("must start with `spiffe://`")?;
        let (trust_domain, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        check_trust_domain(trust_domain)?;
        check_path(path)?;
        Ok(Self { trust_domain, path })
    }

    /// Istio's principal: the ID without its scheme, e.g. `cluster.local/ns/default/sa/sleep`.
    pub(crate) fn principal(id: &'a str) -> &'a str {
        id.strip_prefix(SCHEME).unwrap_or(id)
    }

    /// The namespace of an Istio-style path `/ns/<namespace>/sa/<account>`.
    pub(crate) fn namespace(&self) -> Option<&'a str> {
        let mut segments = self.path.strip_prefix('/')?.split('/');
        match (segments.next(), segments.next()) {
            (Some("ns"), Some(namespace)) => Some(namespace),
            _ => None,
        }
    }

    /// Whether the path is `prefix` or lies below it segment-wise: `/ns/a` covers `/ns/a` and
    /// `/ns/a/sa/b` but not `/ns/ab`, which a plain string prefix would let through.
    pub(crate) fn path_within(&self, prefix: &str) -> bool {
        match self.path.strip_prefix(prefix) {
            Some(rest) => rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'),
            None => false,
        }
    }
}

pub(crate) fn check_trust_domain(trust_domain: &str) -> Result<(), &'static str> {
    if trust_domain.is_empty() {
        return Err("has an empty trust domain");
    }
    // §2.1: a port or userinfo would show up as `:` or `@`; uppercase is not allowed.
    if !trust_domain.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b)) {
        return Err("has a trust domain with characters other than lowercase letters, digits, `.`, `-`, `_`");
    }
    Ok(())
}

/// A configured path prefix: like the path of an ID, but it may end with `/`.
pub(crate) fn check_path_prefix(path: &str) -> Result<(), &'static str> {
    if !path.starts_with('/') {
        return Err("must start with `/`");
    }
    check_path(path.strip_suffix('/').unwrap_or(path))
}

fn check_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Ok(());
    }
    for segment in path.strip_prefix('/').ok_or("has a path that does not start with `/`")?.split('/') {
        if segment.is_empty() {
            return Err("has an empty path segment (`//` or a trailing `/`)");
        }
        if segment == "." || segment == ".." {
            return Err("has a `.` or `..` path segment");
        }
        if !segment.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)) {
            return Err("has a path with characters other than letters, digits, `.`, `-`, `_`");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn parses_valid_ids() {
        let id = SpiffeId::parse("spiffe://cluster.local/ns/shop/sa/web").unwrap();
        assert_eq!(id, SpiffeId { trust_domain: "cluster.local", path: "/ns/shop/sa/web" });
        assert_eq!(id.namespace(), Some("shop"));
        assert_eq!(SpiffeId::principal("spiffe://cluster.local/ns/shop/sa/web"), "cluster.local/ns/shop/sa/web");
        let bare = SpiffeId::parse("spiffe://td").unwrap();
        assert_eq!(bare, SpiffeId { trust_domain: "td", path: "" });
        assert_eq!(bare.namespace(), None);
        assert_eq!(SpiffeId::parse("spiffe://example.org/a/b_c-d.e").unwrap().namespace(), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn refuses_invalid_ids() {
        for bad in [
            "",
            "spiffe://",
            "spiffe:///ns/a",
            "SPIFFE://td/a",
            "https://td/a",
            "spiffe://TD/a",
            "spiffe://td:8080/a",
            "spiffe://user@td/a",
            "spiffe://td/",
            "spiffe://td//a",
            "spiffe://td/a/",
            "spiffe://td/a/../b",
            "spiffe://td/./b",
            "spiffe://td/a?x=1",
            "spiffe://td/a#f",
            "spiffe://td/a b",
            "spiffe://td/%41",
        ] {
            assert!(SpiffeId::parse(bad).is_err(), "{bad}");
        }
        let long = format!("spiffe://td/{}", "a".repeat(2048));
        assert!(SpiffeId::parse(&long).is_err());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn path_prefixes_respect_segments() {
        let id = SpiffeId::parse("spiffe://td/ns/a/sa/b").unwrap();
        assert!(id.path_within("/ns/a"));
        assert!(id.path_within("/ns/a/"));
        assert!(id.path_within("/ns/a/sa/b"));
        assert!(!id.path_within("/ns/a/sa/bc"));
        assert!(!SpiffeId::parse("spiffe://td/ns/ab").unwrap().path_within("/ns/a"));
        assert!(SpiffeId::parse("spiffe://td/ns/a").unwrap().path_within("/ns/a"));
        assert!(!SpiffeId::parse("spiffe://td/ns/a").unwrap().path_within("/ns/a/"));
        assert!(check_path_prefix("/ns/a/").is_ok());
        assert!(check_path_prefix("/").is_ok());
        assert!(check_path_prefix("ns/a").is_err());
        assert!(check_path_prefix("/ns//a").is_err());
    }
}
