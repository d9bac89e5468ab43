//! Just enough of an HTTP/1.1 client to assert Envoy's answers: one `GET` per connection
//! (`Connection: close`), bounded by an overall deadline so that a hung Envoy fails a test
//! instead of stalling the suite.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::BedError;

#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    /// Names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

/// `GET path` on 127.0.0.1:`port` with extra `headers`; the whole exchange must end within `timeout`.
pub fn get(port: u16, path: &str, headers: &[(&str, &str)], timeout: Duration) -> Result<Response, BedError> {
    let deadline = Instant::now() + timeout;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(BedError::io(format!("connect {addr}")))?;
    let mut request = format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).map_err(BedError::io("send request"))?;

    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(BedError::Http(format!("no complete answer within {timeout:?} ({} bytes)", raw.len())));
        }
        stream.set_read_timeout(Some(left)).map_err(BedError::io("set timeout"))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(e) => return Err(BedError::io("read answer")(e)),
        }
        if let Some(response) = complete(&raw, false)? {
            return Ok(response);
        }
    }
    complete(&raw, true)?.ok_or_else(|| BedError::Http(format!("connection closed mid-answer ({} bytes)", raw.len())))
}

/// The status and headers (names lower-cased) of a response head, without its blank line.
pub(crate) fn parse_head(head: &str) -> Result<(u16, Vec<(String, String)>), BedError> {
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| BedError::Http(format!("bad status line {status_line:?}")))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok((status, headers))
}

/// The response in `raw` if it is complete: by `content-length`, the last chunk, or (neither
/// given) the end of the connection, `eof`.
fn complete(raw: &[u8], eof: bool) -> Result<Option<Response>, BedError> {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else { return Ok(None) };
    let head = String::from_utf8_lossy(raw.get(..end).unwrap_or_default()).into_owned();
    let body = raw.get(end + 4..).unwrap_or_default();
    let (status, headers) = parse_head(&head)?;
    let response =
        |body: &[u8]| Response { status, headers: headers.clone(), body: String::from_utf8_lossy(body).into_owned() };
    let value = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    if value("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        return Ok(dechunk(body).map(|b| response(&b)));
    }
    match value("content-length").and_then(|v| v.parse::<usize>().ok()) {
        Some(length) => Ok(body.get(..length).map(response)),
        None => Ok(eof.then(|| response(body))),
    }
}

/// The body of a complete chunked encoding, or `None` while the last chunk is still to come.
fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(rest.get(..line_end)?).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = rest.get(line_end + 2..)?;
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_and_chunked_bodies_and_waits_for_the_rest() {
        let r =
            complete(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\ncontent-length: 2\r\n\r\nok", false);
        let r = r.unwrap().unwrap();
        assert_eq!((r.status, r.header("www-authenticate"), r.body.as_str()), (401, Some("Bearer"), "ok"));
        assert!(complete(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nok", false).unwrap().is_none());
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n";
        assert_eq!(complete(chunked, false).unwrap().unwrap().body, "abc");
    }
}
