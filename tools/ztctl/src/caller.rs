//! Who called and which route, as the inventory groups records: the keys of its table and of the
//! draft policy. Reads a record's fields only; decides nothing about policy.

use std::fmt;

use crate::record::Fields;

/// The prefix of a value the audit filter recorded as an HMAC instead of in clear.
pub const HASHED_PREFIX: &str = "hmac-sha256:";

/// The caller of one request, by the strongest name the record has: the token's `sub` (with its
/// provider), else its `client_id`, else the mTLS peer's SPIFFE ID, else anonymous.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Caller {
    Subject {
        provider: Option<String>,
        iss: Option<String>,
        sub: String,
    },
    Client {
        provider: Option<String>,
        iss: Option<String>,
        client_id: String,
    },
    Peer(String),
    /// A verified token whose `sub` and `client_id` the audit filter left out, and no peer: not
    /// anonymous, yet not nameable either.
    Unidentified {
        provider: Option<String>,
    },
    Anonymous,
}

impl Caller {
    pub fn of(fields: &Fields) -> Self {
        if let Some(identity) = &fields.identity {
            let (provider, iss) = (identity.provider.clone(), identity.iss.clone());
            if let Some(sub) = &identity.sub {
                return Self::Subject { provider, iss, sub: sub.clone() };
            }
            if let Some(client_id) = &identity.client_id {
                return Self::Client { provider, iss, client_id: client_id.clone() };
            }
            if fields.peer.is_none() {
                return Self::Unidentified { provider };
            }
        }
        match &fields.peer {
            Some(peer) => Self::Peer(peer.clone()),
            None => Self::Anonymous,
        }
    }
}

impl fmt::Display for Caller {
    /// `corp:sub=alice`, `corp:client_id=web`, `peer=spiffe://…`, `corp:unidentified`,
    /// `anonymous`: one word each, so that the table splits on whitespace.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let provider = |p: &Option<String>| p.as_deref().map(|p| format!("{}:", printable(p))).unwrap_or_default();
        match self {
            Self::Subject { provider: p, sub, .. } => write!(f, "{}sub={}", provider(p), printable(sub)),
            Self::Client { provider: p, client_id, .. } => {
                write!(f, "{}client_id={}", provider(p), printable(client_id))
            }
            Self::Peer(peer) => write!(f, "peer={}", printable(peer)),
            Self::Unidentified { provider: p } => write!(f, "{}unidentified", provider(p)),
            Self::Anonymous => write!(f, "anonymous"),
        }
    }
}

/// Which route a request took: Envoy's route name when recorded, else its path (query and
/// fragment cut off, as zt-authz matches paths).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum RouteKey {
    Named(String),
    Path(String),
    Unknown,
}

impl RouteKey {
    pub fn of(fields: &Fields) -> Self {
        match (&fields.route, &fields.path) {
            (Some(route), _) => Self::Named(route.clone()),
            (None, Some(path)) => {
                let end = path.find(['?', '#']).unwrap_or(path.len());
                Self::Path(path.get(..end).unwrap_or(path).to_owned())
            }
            (None, None) => Self::Unknown,
        }
    }

    /// The route column: the route name, else `METHOD path`, else `-`.
    pub fn display(&self, method: Option<&str>) -> String {
        match self {
            Self::Named(name) => printable(name),
            Self::Path(path) => format!("{} {}", printable(method.unwrap_or("-")), printable(path)),
            Self::Unknown => "-".to_owned(),
        }
    }
}

/// Text from a log made safe for a terminal: control characters (an escape sequence in a path
/// could rewrite the operator's screen) shown escaped.
pub fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::fields;

    fn caller(record: &str) -> String {
        Caller::of(&fields(record).unwrap()).to_string()
    }

    #[test]
    fn callers_by_the_strongest_name_recorded() {
        let peer = r#""peer":"spiffe://td/ns/a/sa/b""#;
        let cases = [
            (
                format!(r#"{{"identity":{{"provider":"corp","sub":"alice","client_id":"web"}},{peer}}}"#),
                "corp:sub=alice",
            ),
            (r#"{"identity":{"sub":"alice"}}"#.to_owned(), "sub=alice"),
            (format!(r#"{{"identity":{{"provider":"corp","client_id":"web"}},{peer}}}"#), "corp:client_id=web"),
            (format!(r#"{{"identity":{{"provider":"corp"}},{peer}}}"#), "peer=spiffe://td/ns/a/sa/b"),
            (format!("{{{peer}}}"), "peer=spiffe://td/ns/a/sa/b"),
            (r#"{"identity":{"provider":"corp"}}"#.to_owned(), "corp:unidentified"),
            ("{}".to_owned(), "anonymous"),
        ];
        for (record, want) in cases {
            assert_eq!(caller(&record), want, "{record}");
        }
    }

    #[test]
    fn routes_by_name_else_by_path_without_query() {
        let key = |record: &str| RouteKey::of(&fields(record).unwrap());
        assert_eq!(key(r#"{"route":"orders","path":"/o"}"#), RouteKey::Named("orders".into()));
        assert_eq!(key(r#"{"path":"/o/7?x=1"}"#), RouteKey::Path("/o/7".into()));
        assert_eq!(key(r#"{"path":"/o#f"}"#), RouteKey::Path("/o".into()));
        assert_eq!(key("{}"), RouteKey::Unknown);
        assert_eq!(RouteKey::Path("/o".into()).display(Some("GET")), "GET /o");
    }

    #[test]
    fn control_characters_are_escaped_for_the_terminal() {
        assert_eq!(printable("/a\u{1b}[2Jb"), "/a\\u{1b}[2Jb");
        assert_eq!(printable("plain"), "plain");
    }
}
