//! Istio's string matching (exact, `prefix*`, `*suffix`, `*` for presence) and what is built on
//! it: hosts against `:authority`, and HTTP methods. Pure comparisons; nothing here allocates per
//! request.

/// One Istio string value, e.g. of `principals`, `hosts` or a `when` condition's `values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StringMatch {
    Exact(String),
    /// `abc*`: starts with `abc` (equality included).
    Prefix(String),
    /// `*abc`: ends with `abc` (equality included).
    Suffix(String),
    /// `*`: any non-empty value, as in Istio (an empty value is treated as absent).
    Present,
}

impl StringMatch {
    /// Istio's syntax. A `*` anywhere but alone, first or last is refused rather than taken
    /// literally: Istio would take it literally, and an operator writing `a*b` meant a glob.
    pub(crate) fn parse(value: &str) -> Result<Self, String> {
        if value.is_empty() {
            return Err("must not be empty (use \"*\" for any value)".to_owned());
        }
        if value == "*" {
            return Ok(Self::Present);
        }
        let (parsed, body) = if let Some(rest) = value.strip_prefix('*') {
            (Self::Suffix(rest.to_owned()), rest)
        } else if let Some(rest) = value.strip_suffix('*') {
            (Self::Prefix(rest.to_owned()), rest)
        } else {
            (Self::Exact(value.to_owned()), value)
        };
        if body.contains('*') {
            return Err(format!("\"{value}\": `*` may only stand alone, first or last"));
        }
        Ok(parsed)
    }

    /// The same pattern in ASCII lowercase, for case-insensitive values (hosts).
    pub(crate) fn to_lowercase(&self) -> Self {
        match self {
            Self::Exact(s) => Self::Exact(s.to_ascii_lowercase()),
            Self::Prefix(s) => Self::Prefix(s.to_ascii_lowercase()),
            Self::Suffix(s) => Self::Suffix(s.to_ascii_lowercase()),
            Self::Present => Self::Present,
        }
    }

    pub(crate) fn matches(&self, value: &str) -> bool {
        self.matches_bytes(value.as_bytes())
    }

    /// Header values are bytes: a non-UTF-8 value must never make the proxy panic.
    pub(crate) fn matches_bytes(&self, value: &[u8]) -> bool {
        match self {
            Self::Exact(s) => value == s.as_bytes(),
            Self::Prefix(s) => value.starts_with(s.as_bytes()),
            Self::Suffix(s) => value.ends_with(s.as_bytes()),
            Self::Present => !value.is_empty(),
        }
    }

    /// For a pattern built by [`StringMatch::to_lowercase`].
    pub(crate) fn matches_ignore_case(&self, value: &str) -> bool {
        let value = value.as_bytes();
        match self {
            Self::Exact(s) => value.eq_ignore_ascii_case(s.as_bytes()),
            Self::Prefix(s) => value.get(..s.len()).is_some_and(|head| head.eq_ignore_ascii_case(s.as_bytes())),
            Self::Suffix(s) => value
                .len()
                .checked_sub(s.len())
                .and_then(|start| value.get(start..))
                .is_some_and(|tail| tail.eq_ignore_ascii_case(s.as_bytes())),
            Self::Present => !value.is_empty(),
        }
    }

    /// Whether the concatenation of `parts` matches, without building it: Istio's request
    /// principal is `<iss>/<sub>`, and it is compared on every request.
    pub(crate) fn matches_parts(&self, parts: &[&str]) -> bool {
        match self {
            Self::Exact(s) => strip_parts(s, parts.iter().copied()).is_some_and(str::is_empty),
            Self::Prefix(s) => parts_start_with(parts, s),
            Self::Suffix(s) => parts_end_with(parts, s),
            Self::Present => parts.iter().any(|p| !p.is_empty()),
        }
    }

    /// Whether every value `other` matches is matched by `self` too. Conservative: `false`
    /// unless sure. Used only to find route rules that can never be selected.
    pub(crate) fn covers(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Present, _) => true,
            (Self::Exact(a), Self::Exact(b)) => a == b,
            (Self::Prefix(a), Self::Exact(b) | Self::Prefix(b)) => b.starts_with(a.as_str()),
            (Self::Suffix(a), Self::Exact(b) | Self::Suffix(b)) => b.ends_with(a.as_str()),
            _ => false,
        }
    }
}

/// What remains of `text` after removing each part in turn from its front.
fn strip_parts<'t, 'p>(text: &'t str, parts: impl Iterator<Item = &'p str>) -> Option<&'t str> {
    let mut rest = text;
    for part in parts {
        rest = rest.strip_prefix(part)?;
    }
    Some(rest)
}

fn parts_start_with(parts: &[&str], prefix: &str) -> bool {
    let mut rest = prefix;
    for part in parts {
        if rest.len() <= part.len() {
            return part.starts_with(rest);
        }
        match rest.strip_prefix(part) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest.is_empty()
}

fn parts_end_with(parts: &[&str], suffix: &str) -> bool {
    let mut rest = suffix;
    for part in parts.iter().rev() {
        if rest.len() <= part.len() {
            return part.ends_with(rest);
        }
        match rest.strip_suffix(part) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest.is_empty()
}

/// A host of Istio's `hosts` or of a route rule's `match.hosts`, against `:authority`.
/// Case-insensitive (RFC 9110 §4.2.3: the host is case-insensitive). A value without a port
/// matches the authority with any port, or none; a value with a port needs exactly that one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostMatch {
    pattern: StringMatch,
    with_port: bool,
}

impl HostMatch {
    pub(crate) fn parse(value: &str) -> Result<Self, String> {
        if value.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'/') {
            return Err(format!("\"{value}\" is not a host"));
        }
        let pattern = StringMatch::parse(value)?.to_lowercase();
        Ok(Self { pattern, with_port: port_start(value).is_some() })
    }

    pub(crate) fn matches(&self, authority: &str) -> bool {
        let authority = match port_start(authority) {
            Some(colon) if !self.with_port => authority.get(..colon).unwrap_or(authority),
            _ => authority,
        };
        self.pattern.matches_ignore_case(authority)
    }

    /// See [`StringMatch::covers`]; a host with a port and one without are never compared.
    pub(crate) fn covers(&self, other: &Self) -> bool {
        (self.pattern == StringMatch::Present && !self.with_port)
            || (self.with_port == other.with_port && self.pattern.covers(&other.pattern))
    }
}

/// The index of the `:` before the port, if any. An IPv6 literal is bracketed in an authority
/// (RFC 3986 §3.2.2), so only a colon after the closing bracket separates a port.
fn port_start(authority: &str) -> Option<usize> {
    let host_end = authority.rfind(']').map_or(0, |i| i + 1);
    authority.get(host_end..)?.rfind(':').map(|i| host_end + i)
}

/// An HTTP method as written: methods are case-sensitive (RFC 9110 §9.1), so `get` is not `GET`.
pub(crate) fn parse_method(value: &str) -> Result<String, String> {
    if value.is_empty() || !value.bytes().all(is_tchar) {
        return Err(format!("\"{value}\" is not an HTTP method"));
    }
    Ok(value.to_owned())
}

/// A header name: an RFC 9110 §5.6.2 token, or a pseudo-header (`:authority`), lowercased since
/// the adapter hands names in lowercase (HTTP/2 and Envoy's header map do).
pub(crate) fn parse_header_name(value: &str) -> Result<String, String> {
    let name = value.strip_prefix(':').unwrap_or(value);
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err(format!("\"{value}\" is not a header name"));
    }
    Ok(value.to_ascii_lowercase())
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn istio_string_matching() {
        let cases = [
            ("abc", "abc", true),
            ("abc", "abcd", false),
            ("abc", "ABC", false),
            ("abc*", "abc", true),
            ("abc*", "abcdef", true),
            ("abc*", "xabc", false),
            ("*abc", "abc", true),
            ("*abc", "xyzabc", true),
            ("*abc", "abcx", false),
            ("*", "x", true),
            ("*", "", false),
        ];
        for (pattern, value, expected) in cases {
            let m = StringMatch::parse(pattern).unwrap();
            assert_eq!(m.matches(value), expected, "{pattern} vs {value}");
            assert_eq!(m.matches_bytes(value.as_bytes()), expected, "{pattern} vs {value} as bytes");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn refuses_empty_values_and_inner_stars() {
        assert!(StringMatch::parse("").is_err());
        for bad in ["a*b", "**", "*a*", "a**"] {
            assert!(StringMatch::parse(bad).is_err(), "{bad}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn matches_a_value_split_in_parts_like_its_concatenation() {
        let parts = ["https://issuer", "/", "alice"];
        let whole = parts.concat();
        for pattern in [
            "https://issuer/alice",
            "https://issuer/bob",
            "https://issuer/alice2",
            "https://iss*",
            "https://issuer/*",
            "https://issuer/al*",
            "https://issuer/alicex*",
            "*/alice",
            "*r/alice",
            "*alice",
            "*ice",
            "*xhttps://issuer/alice",
            "*",
        ] {
            let m = StringMatch::parse(pattern).unwrap();
            assert_eq!(m.matches_parts(&parts), m.matches(&whole), "{pattern}");
        }
        assert!(!StringMatch::Present.matches_parts(&["", ""]));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn hosts_ignore_case_and_a_port_unless_given() {
        let cases = [
            ("api.example.com", "api.example.com", true),
            ("api.example.com", "API.Example.COM", true),
            ("api.example.com", "api.example.com:8443", true),
            ("api.example.com:8443", "api.example.com:8443", true),
            ("api.example.com:8443", "api.example.com", false),
            ("api.example.com:8443", "api.example.com:443", false),
            ("*.example.com", "www.EXAMPLE.com:80", true),
            ("*.example.com", "example.com", false),
            ("api.*", "api.internal", true),
            ("[::1]", "[::1]:8080", true),
            ("[::1]", "[::1]", true),
            ("[::1]:8080", "[::1]:8080", true),
            ("[::1]:8080", "[::1]", false),
            ("*", "anything:1", true),
        ];
        for (pattern, authority, expected) in cases {
            assert_eq!(HostMatch::parse(pattern).unwrap().matches(authority), expected, "{pattern} vs {authority}");
        }
        assert!(HostMatch::parse("a b").is_err());
        assert!(HostMatch::parse("example.com/path").is_err());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn coverage_is_conservative() {
        let host = |s: &str| HostMatch::parse(s).unwrap();
        assert!(host("*").covers(&host("a.com")));
        assert!(host("*.com").covers(&host("a.com")));
        assert!(host("*.com").covers(&host("*.a.com")));
        assert!(host("a.*").covers(&host("a.b")));
        assert!(!host("a.com").covers(&host("*.com")));
        assert!(!host("*.com").covers(&host("a.*")));
        assert!(!host("a.com").covers(&host("a.com:80")));
        assert!(!host("*:80").covers(&host("a.com")));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn methods_and_header_names() {
        assert_eq!(parse_method("GET").unwrap(), "GET");
        assert!(parse_method("").is_err());
        assert!(parse_method("GE T").is_err());
        assert_eq!(parse_header_name("X-Env").unwrap(), "x-env");
        assert_eq!(parse_header_name(":authority").unwrap(), ":authority");
        assert!(parse_header_name("").is_err());
        assert!(parse_header_name(":").is_err());
        assert!(parse_header_name("x env").is_err());
    }
}
