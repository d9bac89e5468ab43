//! What becomes of the caller's token before the request goes upstream: kept only when
//! `forward_token` is set, the token verified and the route mints no next-hop token; otherwise
//! removed from every place a configured provider takes tokens from (headers, the query
//! parameter, the cookie), not only from where it was found. An upstream must never receive a
//! token this filter did not verify, nor the caller's token beside a minted one.

use super::requirement::{Decision, Requirement};
use super::sources::TokenSource;

/// One change to the request headers, for the adapter to apply in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEdit {
    Remove(String),
    /// Replace every value of the header with this one.
    Set(String, Vec<u8>),
}

/// Whether the caller's token must be removed before the request goes upstream.
pub fn must_strip(forward_token: bool, requirement: &Requirement, decision: &Decision) -> bool {
    // `allow_failed`, `allow_missing` and `advisory` let requests through without a verified
    // token: forwarding it would hand the upstream a credential nobody checked.
    !forward_token || requirement.next_hop_token.is_some() || !matches!(decision, Decision::Allow(_))
}

/// The edits that remove every token from every source in `sources`: each token header whole
/// (whatever its prefix), the named query parameters from `:path`, the named cookies.
pub fn strip_token_edits(sources: &[TokenSource], headers: &[(String, Vec<u8>)]) -> Vec<HeaderEdit> {
    let mut edits = Vec::new();
    let mut query_names: Vec<&str> = Vec::new();
    let mut cookie_names: Vec<&str> = Vec::new();
    for source in sources {
        match source {
            TokenSource::Header { name, .. } => {
                let edit = HeaderEdit::Remove(name.to_ascii_lowercase());
                if !edits.contains(&edit) {
                    edits.push(edit);
                }
            }
            TokenSource::Query { name } => query_names.push(name),
            TokenSource::Cookie { name } => cookie_names.push(name),
        }
    }
    if !query_names.is_empty()
        && let Some(path) = values(headers, ":path").next()
        && let Some(stripped) = without_query_parameters(path, &query_names)
    {
        edits.push(HeaderEdit::Set(":path".to_owned(), stripped));
    }
    if !cookie_names.is_empty() {
        edits.extend(without_cookies(values(headers, "cookie"), &cookie_names));
    }
    edits
}

fn values<'r>(headers: &'r [(String, Vec<u8>)], name: &'r str) -> impl Iterator<Item = &'r [u8]> {
    headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
}

/// The key of a `k=v` pair as `sources.rs` reads it (the pair trimmed of spaces, up to `=`);
/// `None` for a pair without `=`, which holds no token.
fn pair_key(pair: &[u8]) -> Option<&[u8]> {
    let pair = pair.trim_ascii();
    let at = pair.iter().position(|b| *b == b'=')?;
    pair.get(..at)
}

fn named(pair: &[u8], names: &[&str]) -> bool {
    pair_key(pair).is_some_and(|key| names.iter().any(|name| key == name.as_bytes()))
}

/// `path` without the named query parameters (every occurrence), or `None` when it has none.
/// The other parameters keep their order and bytes.
fn without_query_parameters(path: &[u8], names: &[&str]) -> Option<Vec<u8>> {
    let at = path.iter().position(|b| *b == b'?')?;
    let (base, query) = (path.get(..at)?, path.get(at + 1..)?);
    if !query.split(|b| *b == b'&').any(|pair| named(pair, names)) {
        return None;
    }
    let kept: Vec<&[u8]> = query.split(|b| *b == b'&').filter(|pair| !named(pair, names)).collect();
    let mut stripped = base.to_vec();
    if kept.iter().any(|pair| !pair.is_empty()) {
        stripped.push(b'?');
        stripped.extend(kept.join(&b'&'));
    }
    Some(stripped)
}

/// One edit for the `Cookie` header when some value holds a named cookie: the others joined
/// into one value (RFC 9113 §8.2.3 joins split cookie headers with `; `), or its removal.
fn without_cookies<'r>(values: impl Iterator<Item = &'r [u8]>, names: &[&str]) -> Option<HeaderEdit> {
    let values: Vec<&[u8]> = values.collect();
    let pairs = || values.iter().flat_map(|value| value.split(|b| *b == b';'));
    if !pairs().any(|pair| named(pair, names)) {
        return None;
    }
    let kept: Vec<&[u8]> =
        pairs().filter(|pair| !named(pair, names)).map(<[u8]>::trim_ascii).filter(|p| !p.is_empty()).collect();
    if kept.is_empty() {
        return Some(HeaderEdit::Remove("cookie".to_owned()));
    }
    Some(HeaderEdit::Set("cookie".to_owned(), kept.join(b"; ".as_slice())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::JwtError;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn headers(list: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        list.iter().map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())).collect()
    }

    fn sources() -> Vec<TokenSource> {
        vec![
            TokenSource::bearer(),
            TokenSource::Header { name: "X-Api-Token".into(), value_prefix: String::new() },
            TokenSource::Query { name: "access_token".into() },
            TokenSource::Cookie { name: "session".into() },
        ]
    }

    fn set(name: &str, value: &str) -> HeaderEdit {
        HeaderEdit::Set(name.into(), value.as_bytes().to_vec())
    }

    fn remove(name: &str) -> HeaderEdit {
        HeaderEdit::Remove(name.into())
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn every_source_is_stripped_and_nothing_else() {
        let request = headers(&[
            (":path", "/orders?a=1&access_token=T&b=2&access_token=U"),
            ("authorization", "Bearer T"),
            ("cookie", "theme=dark; session=T"),
            ("cookie", "lang=en"),
        ]);
        assert_eq!(
            strip_token_edits(&sources(), &request),
            [
                remove("authorization"),
                remove("x-api-token"),
                set(":path", "/orders?a=1&b=2"),
                set("cookie", "theme=dark; lang=en"),
            ]
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn query_and_cookie_edits_only_when_they_hold_the_token() {
        let sources = sources();
        let untouched = headers(&[(":path", "/a?access_tokenx=1&x=access_token"), ("cookie", "sessionid=1")]);
        assert_eq!(strip_token_edits(&sources, &untouched), [remove("authorization"), remove("x-api-token")]);
        let only = headers(&[(":path", "/a?access_token=T"), ("cookie", " session=T ")]);
        assert_eq!(
            strip_token_edits(&sources, &only)[2..],
            [set(":path", "/a"), remove("cookie")],
            "an emptied query loses its `?`, an emptied cookie header goes"
        );
        // Not UTF-8 around it: the bytes of the other parameters stay as they were.
        let raw = vec![(":path".to_owned(), b"/a?x=\xff&access_token=T".to_vec())];
        assert_eq!(strip_token_edits(&sources, &raw)[2], HeaderEdit::Set(":path".into(), b"/a?x=\xff".to_vec()));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn only_configured_sources_are_touched() {
        let bearer_only = [TokenSource::bearer()];
        let request = headers(&[(":path", "/a?access_token=T"), ("cookie", "session=T")]);
        assert_eq!(strip_token_edits(&bearer_only, &request), [remove("authorization")]);
    }

    fn requirement(next_hop: bool) -> Requirement {
        Requirement {
            name: "r".into(),
            providers: None,
            all_of: None,
            allow_missing: true,
            allow_failed: true,
            advisory: true,
            next_hop_token: next_hop.then(|| "p".to_owned()),
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_token_is_forwarded_only_when_asked_verified_and_not_replaced() {
        let verified = || {
            let identity = crate::jwt::Identity::from_claims("p", serde_json::Map::new());
            let token = std::rc::Rc::new(crate::jwt::VerifiedToken {
                identity_json: Vec::new(),
                identity,
                valid_until: crate::time::UnixSeconds(1),
            });
            Decision::Allow(crate::jwt::Authenticated { token, cache_hit: false })
        };
        let unverified = [
            Decision::AllowAnonymous { failure: None },
            Decision::AllowAnonymous { failure: Some(JwtError::SignatureInvalid) },
            Decision::AdvisoryDeny(JwtError::Expired { exp: 0, now: crate::time::UnixSeconds(1) }),
        ];
        assert!(!must_strip(true, &requirement(false), &verified()));
        assert!(must_strip(false, &requirement(false), &verified()));
        assert!(must_strip(true, &requirement(true), &verified()), "a next-hop route never forwards it");
        for decision in &unverified {
            assert!(must_strip(true, &requirement(false), decision), "{decision:?}");
            assert!(must_strip(false, &requirement(false), decision), "{decision:?}");
        }
    }
}
