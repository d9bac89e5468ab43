//! Request paths: Istio's `paths` values, route rules' `match.path`, and the path templates both
//! use. A path is compared as Envoy hands it over (Envoy normalises it first, when configured
//! to), without its query and fragment, byte for byte: `/Admin` is not `/admin` and `//admin`
//! is not `/admin`.

use super::matchers::StringMatch;

/// The part of `:path` that is matched: everything before `?` or `#` (RFC 3986 §3.3).
pub(crate) fn strip_query(path: &str) -> &str {
    path.split(['?', '#']).next().unwrap_or(path)
}

/// Template syntax: Istio's `{*}` / `{**}` in `paths`; in route rules Envoy's `uri_template`
/// forms as well (`{name}`, `{name=*}`, `{name=**}`, `*`, `**`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    Istio,
    Envoy,
}

/// A path template, e.g. `/users/{*}/orders/{**}`. Each wildcard takes a whole segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    /// The segments between `/`; the first is the empty one before the leading `/`.
    segments: Vec<Segment>,
    /// Ends in `{**}`: any rest (possibly empty) after a final `/`.
    rest: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{*}`: exactly one non-empty segment.
    One,
}

enum Kind {
    Literal,
    One,
    Rest,
}

impl Template {
    pub(crate) fn parse(text: &str, syntax: Syntax) -> Result<Self, String> {
        let body = text.strip_prefix('/').ok_or_else(|| format!("\"{text}\" must start with `/`"))?;
        let mut segments = vec![Segment::Literal(String::new())];
        let mut rest = false;
        let mut wildcards = 0;
        for part in body.split('/') {
            if rest {
                return Err(format!("\"{text}\": `{{**}}` may only be the last segment"));
            }
            match classify(part, syntax).map_err(|why| format!("\"{text}\": {why}"))? {
                Kind::Literal => segments.push(Segment::Literal(part.to_owned())),
                Kind::One => {
                    segments.push(Segment::One);
                    wildcards += 1;
                }
                Kind::Rest => {
                    rest = true;
                    wildcards += 1;
                }
            }
        }
        if wildcards == 0 {
            return Err(format!("\"{text}\" has no wildcard; use an exact path"));
        }
        Ok(Self { segments, rest })
    }

    pub(crate) fn matches(&self, path: &str) -> bool {
        let mut parts = path.split('/');
        for segment in &self.segments {
            let Some(part) = parts.next() else { return false };
            let fits = match segment {
                Segment::Literal(literal) => literal == part,
                Segment::One => !part.is_empty(),
            };
            if !fits {
                return false;
            }
        }
        // `{**}` matches from the next segment on, so `/a/{**}` takes `/a/` but not `/a`,
        // as Envoy's translation of the template to a regular expression does.
        parts.next().is_some() == self.rest
    }

    /// Bytes of literal text, slashes included: the longer, the more specific.
    fn literal_len(&self) -> usize {
        let literal: usize = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => l.len(),
                Segment::One => 0,
            })
            .sum();
        literal + self.segments.len() - 1 + usize::from(self.rest)
    }

    /// Whether every path `other` matches, `self` matches.
    fn covers_template(&self, other: &Template) -> bool {
        let mut theirs = other.segments.iter();
        for segment in &self.segments {
            let fits = match (segment, theirs.next()) {
                (Segment::Literal(a), Some(Segment::Literal(b))) => a == b,
                (Segment::One, Some(Segment::Literal(b))) => !b.is_empty(),
                (Segment::One, Some(Segment::One)) => true,
                _ => false,
            };
            if !fits {
                return false;
            }
        }
        let longer = theirs.next().is_some() || other.rest;
        if self.rest { longer } else { !longer }
    }

    /// Whether every path starting with `prefix` matches `self`: the prefix's complete segments
    /// (those followed by `/`) fill every segment, and `{**}` takes whatever follows.
    fn covers_prefix(&self, prefix: &str) -> bool {
        let complete = prefix.split('/').count() - 1;
        let mut parts = prefix.split('/').take(complete);
        for segment in &self.segments {
            let fits = match (segment, parts.next()) {
                (Segment::Literal(a), Some(b)) => a == b,
                (Segment::One, Some(b)) => !b.is_empty(),
                _ => false,
            };
            if !fits {
                return false;
            }
        }
        self.rest
    }
}

fn classify(part: &str, syntax: Syntax) -> Result<Kind, String> {
    match part {
        "{*}" => return Ok(Kind::One),
        "{**}" => return Ok(Kind::Rest),
        "*" if syntax == Syntax::Envoy => return Ok(Kind::One),
        "**" if syntax == Syntax::Envoy => return Ok(Kind::Rest),
        _ => {}
    }
    if syntax == Syntax::Envoy
        && let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}'))
    {
        let (name, kind) = match inner.split_once('=') {
            None => (inner, Kind::One),
            Some((name, "*")) => (name, Kind::One),
            Some((name, "**")) => (name, Kind::Rest),
            Some(_) => return Err(format!("variable `{{{inner}}}` must be `{{name}}`, `{{name=*}}` or `{{name=**}}`")),
        };
        let starts_with_letter = name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic());
        if !starts_with_letter || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("variable name `{name}` must be a letter followed by letters, digits or `_`"));
        }
        return Ok(kind);
    }
    if part.contains(['{', '}', '*']) {
        return Err(format!("segment `{part}`: a wildcard must be a whole segment"));
    }
    if part.contains(['?', '#']) {
        return Err(format!("segment `{part}`: the query and fragment are not matched"));
    }
    Ok(Kind::Literal)
}

/// A path literal of the configuration: it is compared with `:path` minus its query, so a
/// literal that does not start with `/` or holds `?` or `#` could never match.
fn check_literal(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("\"{path}\" must start with `/`"));
    }
    if path.contains(['?', '#']) {
        return Err(format!("\"{path}\": the query and fragment are not matched"));
    }
    Ok(())
}

/// One value of Istio's `paths` / `notPaths`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathMatch {
    /// Exact, `prefix*`, `*suffix` or `*`.
    Glob(StringMatch),
    /// Contains `{*}` or `{**}`.
    Template(Template),
}

impl PathMatch {
    pub(crate) fn parse(value: &str) -> Result<Self, String> {
        if value.contains(['{', '}']) {
            return Ok(Self::Template(Template::parse(value, Syntax::Istio)?));
        }
        let glob = StringMatch::parse(value)?;
        match &glob {
            StringMatch::Exact(path) | StringMatch::Prefix(path) => check_literal(path)?,
            StringMatch::Suffix(_) | StringMatch::Present => {}
        }
        Ok(Self::Glob(glob))
    }

    /// `path` without its query: see [`strip_query`].
    pub(crate) fn matches(&self, path: &str) -> bool {
        match self {
            Self::Glob(glob) => glob.matches(path),
            Self::Template(template) => template.matches(path),
        }
    }
}

/// A route rule's `match.path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RoutePath {
    Exact(String),
    Prefix(String),
    Template(Template),
}

impl RoutePath {
    pub(crate) fn exact(path: &str) -> Result<Self, String> {
        check_literal(path)?;
        Ok(Self::Exact(path.to_owned()))
    }

    pub(crate) fn prefix(path: &str) -> Result<Self, String> {
        check_literal(path)?;
        Ok(Self::Prefix(path.to_owned()))
    }

    pub(crate) fn template(text: &str) -> Result<Self, String> {
        Ok(Self::Template(Template::parse(text, Syntax::Envoy)?))
    }

    pub(crate) fn matches(&self, path: &str) -> bool {
        match self {
            Self::Exact(exact) => path == exact,
            Self::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Self::Template(template) => template.matches(path),
        }
    }

    /// Specificity: exact before template before prefix, then the longer literal.
    pub(crate) fn rank(&self) -> (u8, usize) {
        match self {
            Self::Exact(exact) => (3, exact.len()),
            Self::Template(template) => (2, template.literal_len()),
            Self::Prefix(prefix) => (1, prefix.len()),
        }
    }

    /// Whether every path `other` matches, `self` matches. Conservative: `false` unless sure.
    pub(crate) fn covers(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Exact(a), Self::Exact(b)) => a == b,
            (Self::Prefix(a), Self::Exact(b) | Self::Prefix(b)) => b.starts_with(a.as_str()),
            (Self::Prefix(a), Self::Template(b)) => b.covers_prefix_of(a),
            (Self::Template(a), Self::Exact(b)) => a.matches(b),
            (Self::Template(a), Self::Template(b)) => a.covers_template(b),
            (Self::Template(a), Self::Prefix(b)) => a.covers_prefix(b),
            (Self::Exact(_), _) => false,
        }
    }
}

impl Template {
    /// Whether every path this template matches starts with `prefix`: the literal segments
    /// before the first `{*}`, each followed by `/` (a template always holds a wildcard after
    /// its last literal, or `{**}`, so the `/` is always there).
    fn covers_prefix_of(&self, prefix: &str) -> bool {
        let mut head = String::new();
        for segment in &self.segments {
            let Segment::Literal(literal) = segment else { break };
            head.push_str(literal);
            head.push('/');
        }
        head.starts_with(prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn strips_query_and_fragment() {
        assert_eq!(strip_query("/a/b?x=1#f"), "/a/b");
        assert_eq!(strip_query("/a#f?x"), "/a");
        assert_eq!(strip_query("/a"), "/a");
        assert_eq!(strip_query("?x"), "");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn istio_paths() {
        let cases = [
            ("/admin", "/admin", true),
            ("/admin", "/Admin", false),
            ("/admin", "//admin", false),
            ("/admin", "/admin/", false),
            ("/api/*", "/api/", true),
            ("/api/*", "/api/v1/x", true),
            ("/api/*", "/api", false),
            ("*.html", "/a/index.html", true),
            ("*.html", "/a/index.htm", false),
            ("*", "/", true),
            ("/users/{*}", "/users/7", true),
            ("/users/{*}", "/users/", false),
            ("/users/{*}", "/users/7/x", false),
            ("/users/{*}/orders", "/users/7/orders", true),
            ("/users/{*}/orders", "/users//orders", false),
            ("/files/{**}", "/files/a/b/c", true),
            ("/files/{**}", "/files/", true),
            ("/files/{**}", "/files", false),
            ("/{*}/x/{**}", "/a/x/b", true),
            ("/{*}/x/{**}", "//x/b", false),
        ];
        for (pattern, path, expected) in cases {
            assert_eq!(PathMatch::parse(pattern).unwrap().matches(path), expected, "{pattern} vs {path}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn refuses_bad_paths_and_templates() {
        for bad in ["admin", "admin*", "/a?b", "/a/{**}/b", "/a/x{*}", "/a/{x}", "/a/{*", "/a/{", "/a/b*c", ""] {
            assert!(PathMatch::parse(bad).is_err(), "{bad}");
        }
        for bad in ["users/{id}", "/users/{id}/{**}/x", "/u/{1d}", "/u/{id=a}", "/u/x{id}", "/u/v", "/u/**/x"] {
            assert!(RoutePath::template(bad).is_err(), "{bad}");
        }
        assert!(RoutePath::exact("/a?x").is_err());
        assert!(RoutePath::prefix("a/").is_err());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn envoy_templates() {
        let cases = [
            ("/users/{id}/orders/{*}", "/users/7/orders/9", true),
            ("/users/{id}/orders/{*}", "/users/7/orders/", false),
            ("/users/{id=*}", "/users/7", true),
            ("/files/{path=**}", "/files/a/b", true),
            ("/files/*/raw", "/files/a/raw", true),
            ("/files/**", "/files/a/b", true),
        ];
        for (pattern, path, expected) in cases {
            assert_eq!(RoutePath::template(pattern).unwrap().matches(path), expected, "{pattern} vs {path}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn coverage_of_route_paths() {
        let exact = |p: &str| RoutePath::exact(p).unwrap();
        let prefix = |p: &str| RoutePath::prefix(p).unwrap();
        let template = |p: &str| RoutePath::template(p).unwrap();
        let cases = [
            (exact("/a"), exact("/a"), true),
            (exact("/a"), exact("/b"), false),
            (prefix("/a/"), exact("/a/b"), true),
            (prefix("/a/"), prefix("/a/b"), true),
            (prefix("/a/b"), prefix("/a/"), false),
            (prefix("/a/"), template("/a/{id}"), true),
            (prefix("/a/b"), template("/a/{id}"), false),
            (prefix("/"), template("/{id}/x"), true),
            (template("/a/{id}"), exact("/a/b"), true),
            (template("/a/{id}"), exact("/a/"), false),
            (template("/a/{id}"), template("/a/{x}"), true),
            (template("/{id}/b"), template("/a/{x}"), false),
            (template("/{id}/{x}"), template("/a/{x}"), true),
            (template("/a/{**}"), template("/a/{x}/b"), true),
            (template("/a/{x}"), template("/a/{**}"), false),
            (template("/a/{**}"), prefix("/a/b/"), true),
            (template("/a/{**}"), prefix("/a/"), true),
            (template("/a/{**}"), prefix("/a"), false),
            (template("/{x}/{**}"), prefix("/a/"), true),
            (template("/a/{x}"), prefix("/a/"), false),
        ];
        for (i, (a, b, expected)) in cases.iter().enumerate() {
            assert_eq!(a.covers(b), *expected, "case {i}: {a:?} covers {b:?}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn ranks_exact_then_template_then_prefix() {
        let exact = RoutePath::exact("/a").unwrap().rank();
        let template = RoutePath::template("/a/{id}/b/c/d/e").unwrap().rank();
        let prefix = RoutePath::prefix("/a/b/c/d/e/f/g").unwrap().rank();
        assert!(exact > template && template > prefix);
        assert!(RoutePath::prefix("/a/b").unwrap().rank() > RoutePath::prefix("/a").unwrap().rank());
        assert!(RoutePath::template("/a/b/{x}").unwrap().rank() > RoutePath::template("/a/{x}").unwrap().rank());
    }
}
