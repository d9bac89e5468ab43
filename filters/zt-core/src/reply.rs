//! A local reply: what a filter answers instead of forwarding the request upstream.

/// Status, headers and body of a response the filter sends itself. Built by the pure denial
/// mappers of each domain; the adapters only hand it to the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl LocalReply {
    /// A JSON body, serialised by serde so that no value can break out of its string.
    pub fn json(status: u16, mut headers: Vec<(String, String)>, body: &serde_json::Value) -> Self {
        headers.push(("content-type".to_owned(), "application/json".to_owned()));
        Self { status, headers, body: body.to_string() }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}
