//! Where a token is taken from: request headers (with a prefix such as `Bearer `), query
//! parameters, cookies. More than one distinct token on a request is refused, never guessed
//! between: a proxy and an upstream that pick differently check different identities.

use serde::Deserialize;

use super::error::JwtError;

/// One place a provider accepts its token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum TokenSource {
    /// A request header (name case-insensitive). `value_prefix`, matched case-insensitively
    /// (RFC 6750 §2.1 makes `Bearer` so), is stripped; empty means the whole value.
    Header {
        name: String,
        #[serde(default)]
        value_prefix: String,
    },
    /// A query parameter of the request path, taken verbatim.
    Query { name: String },
    /// A cookie of the `Cookie` header.
    Cookie { name: String },
}

impl TokenSource {
    /// `Authorization: Bearer <token>`, the default of every provider.
    pub fn bearer() -> Self {
        TokenSource::Header { name: "authorization".to_owned(), value_prefix: "Bearer ".to_owned() }
    }

    /// Every token this source finds on the request. `Err` when the source's header is there
    /// but does not hold a token in the expected form.
    fn find<'r>(&self, headers: &'r [(String, Vec<u8>)], found: &mut Vec<&'r str>) -> Result<(), JwtError> {
        match self {
            TokenSource::Header { name, value_prefix } => {
                for value in header_values(headers, name) {
                    found.push(strip_prefix(value, value_prefix)?);
                }
            }
            TokenSource::Query { name } => {
                for path in header_values(headers, ":path") {
                    let Ok(path) = std::str::from_utf8(path) else { continue };
                    let query = path.split_once('?').map_or("", |(_, q)| q);
                    found.extend(pairs(query, '&').filter(|(k, _)| k == name).map(|(_, v)| v));
                }
            }
            TokenSource::Cookie { name } => {
                for cookies in header_values(headers, "cookie") {
                    let Ok(cookies) = std::str::from_utf8(cookies) else { continue };
                    found.extend(pairs(cookies, ';').filter(|(k, _)| k == name).map(|(_, v)| v));
                }
            }
        }
        Ok(())
    }
}

/// The one token the request carries, and the sources it was found in.
#[derive(Debug, PartialEq, Eq)]
pub struct FoundToken<'r, 's> {
    pub token: &'r str,
    pub sources: Vec<&'s TokenSource>,
}

/// Looks in every source; the same token in several places counts once.
pub fn find_token<'r, 's>(
    sources: &'s [TokenSource],
    headers: &'r [(String, Vec<u8>)],
) -> Result<FoundToken<'r, 's>, JwtError> {
    let mut token: Option<&'r str> = None;
    let mut found_in = Vec::new();
    let mut found = Vec::new();
    for source in sources {
        found.clear();
        source.find(headers, &mut found)?;
        for candidate in &found {
            match token {
                Some(existing) if existing != *candidate => return Err(JwtError::MultipleTokens),
                _ => token = Some(candidate),
            }
        }
        if !found.is_empty() {
            found_in.push(source);
        }
    }
    let token = token.ok_or(JwtError::Missing)?;
    if token.is_empty() {
        return Err(JwtError::TokenFormat);
    }
    Ok(FoundToken { token, sources: found_in })
}

fn header_values<'r>(headers: &'r [(String, Vec<u8>)], name: &str) -> impl Iterator<Item = &'r [u8]> {
    headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
}

fn strip_prefix<'r>(value: &'r [u8], prefix: &str) -> Result<&'r str, JwtError> {
    let value = std::str::from_utf8(value).map_err(|_| JwtError::TokenFormat)?.trim_matches([' ', '\t']);
    let rest = match value.get(..prefix.len()) {
        Some(head) if head.eq_ignore_ascii_case(prefix) => value.get(prefix.len()..).unwrap_or(""),
        _ => return Err(JwtError::TokenFormat),
    };
    let token = rest.trim_start_matches(' ');
    if token.is_empty() || token.contains([' ', '\t', ',']) {
        return Err(JwtError::TokenFormat);
    }
    Ok(token)
}

/// `k=v` pairs separated by `separator`, keys and values trimmed of spaces.
fn pairs(text: &str, separator: char) -> impl Iterator<Item = (&str, &str)> {
    text.split(separator).filter_map(|pair| pair.trim().split_once('='))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn headers(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        list.iter().map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())).collect()
    }

    fn sources() -> Vec<TokenSource> {
        vec![
            TokenSource::bearer(),
            TokenSource::Header { name: "x-api-token".into(), value_prefix: String::new() },
            TokenSource::Query { name: "access_token".into() },
            TokenSource::Cookie { name: "session".into() },
        ]
    }

    fn find(list: &[(&str, &str)]) -> Result<(String, usize), JwtError> {
        let sources = sources();
        let headers = headers(list);
        find_token(&sources, &headers).map(|f| (f.token.to_owned(), f.sources.len()))
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn finds_a_token_in_each_kind_of_source() {
        assert_eq!(find(&[("authorization", "Bearer abc")]), Ok(("abc".into(), 1)));
        assert_eq!(find(&[("Authorization", "bearer  abc ")]), Ok(("abc".into(), 1)));
        assert_eq!(find(&[("x-api-token", "abc")]), Ok(("abc".into(), 1)));
        assert_eq!(find(&[(":path", "/x?a=1&access_token=abc")]), Ok(("abc".into(), 1)));
        assert_eq!(find(&[("cookie", "theme=dark; session=abc")]), Ok(("abc".into(), 1)));
        assert_eq!(find(&[(":path", "/x"), ("cookie", "theme=dark")]), Err(JwtError::Missing));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_same_token_twice_counts_once_two_different_tokens_are_refused() {
        assert_eq!(find(&[("authorization", "Bearer abc"), (":path", "/?access_token=abc")]), Ok(("abc".into(), 2)));
        assert_eq!(
            find(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]),
            Err(JwtError::MultipleTokens)
        );
        assert_eq!(find(&[("authorization", "Bearer a"), ("cookie", "session=b")]), Err(JwtError::MultipleTokens));
        assert_eq!(find(&[(":path", "/?access_token=a&access_token=b")]), Err(JwtError::MultipleTokens));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_source_header_in_the_wrong_form_is_refused() {
        for bad in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearerabc", "Bearer a b", "Bearer a,b"] {
            assert_eq!(find(&[("authorization", bad)]), Err(JwtError::TokenFormat), "{bad}");
        }
        let sources = sources();
        let non_utf8 = vec![("authorization".to_owned(), b"Bearer \xff".to_vec())];
        assert_eq!(find_token(&sources, &non_utf8), Err(JwtError::TokenFormat));
        assert_eq!(find(&[(":path", "/?access_token=")]), Err(JwtError::TokenFormat));
    }
}
