//! A local upstream that answers every request with the request it received (method, path,
//! headers) as JSON, and records it: a test asserts what Envoy forwarded, and that a denied
//! request never arrived at all. Paths given a document with [`EchoUpstream::publish`] answer
//! that document instead, which makes the same server a small identity provider (discovery
//! document, JWKS) whose keys a test can rotate while Envoy runs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::BedError;

/// A request head is refused past this size; a test upstream needs no more.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// An idle upstream connection is dropped after this (Envoy reconnects when it needs to).
const IDLE: Duration = Duration::from_secs(30);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Echoed {
    pub method: String,
    pub path: String,
    /// Names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
}

impl Echoed {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    pub fn to_json(&self) -> serde_json::Value {
        let headers: serde_json::Map<String, serde_json::Value> =
            self.headers.iter().map(|(n, v)| (n.clone(), v.clone().into())).collect();
        serde_json::json!({ "method": self.method, "path": self.path, "headers": headers })
    }
}

type Seen = Arc<Mutex<Vec<Echoed>>>;
type Documents = Arc<Mutex<std::collections::HashMap<String, String>>>;

pub struct EchoUpstream {
    port: u16,
    seen: Seen,
    documents: Documents,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl EchoUpstream {
    /// Listens on 127.0.0.1 on a port the kernel chooses.
    pub fn start() -> Result<Self, BedError> {
        Self::bind(0)
    }

    /// Listens on 127.0.0.1:`port`.
    pub fn bind(port: u16) -> Result<Self, BedError> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let listener = TcpListener::bind(addr).map_err(BedError::io(format!("echo upstream: bind {addr}")))?;
        let port = listener.local_addr().map_err(BedError::io("echo upstream: local address"))?.port();
        let (seen, documents, stop) = (Seen::default(), Documents::default(), Arc::new(AtomicBool::new(false)));
        let accept = {
            let (seen, documents, stop) = (Arc::clone(&seen), Arc::clone(&documents), Arc::clone(&stop));
            std::thread::spawn(move || accept_loop(&listener, &seen, &documents, &stop))
        };
        Ok(EchoUpstream { port, seen, documents, stop, accept: Some(accept) })
    }

    /// From now on, `GET path` answers `body` as JSON (replacing an earlier document).
    pub fn publish(&self, path: &str, body: &str) {
        self.documents.lock().unwrap_or_else(PoisonError::into_inner).insert(path.to_owned(), body.to_owned());
    }

    /// How many requests for `path` arrived.
    pub fn count(&self, path: &str) -> usize {
        self.requests().iter().filter(|r| r.path == path).count()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Echoed> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Serves until the process ends (the `zt-echo` binary).
    pub fn serve_forever(mut self) {
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

impl Drop for EchoUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so that the thread sees `stop`.
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, seen: &Seen, documents: &Documents, stop: &AtomicBool) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(stream) = stream {
            let (seen, documents) = (Arc::clone(seen), Arc::clone(documents));
            std::thread::spawn(move || serve_connection(stream, &seen, &documents));
        }
    }
}

/// Serves one keep-alive connection until the peer closes it, errs, or idles.
fn serve_connection(stream: TcpStream, seen: &Seen, documents: &Documents) {
    if stream.set_read_timeout(Some(IDLE)).is_err() {
        return;
    }
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    while let Some((request, body_len)) = read_head(&mut reader) {
        // Drain the body: the echo shows the head only.
        if std::io::copy(&mut (&mut reader).take(body_len), &mut std::io::sink()).is_err() {
            return;
        }
        let close = request.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let document = documents.lock().unwrap_or_else(PoisonError::into_inner).get(&request.path).cloned();
        let body = document.unwrap_or_else(|| request.to_json().to_string());
        seen.lock().unwrap_or_else(PoisonError::into_inner).push(request);
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{}\r\n{body}",
            body.len(),
            if close { "connection: close\r\n" } else { "" }
        );
        if writer.write_all(answer.as_bytes()).is_err() || close {
            return;
        }
    }
}

/// The next request head and its body length, or `None` at the end of the connection.
fn read_head(reader: &mut impl BufRead) -> Option<(Echoed, u64)> {
    let mut lines = Vec::new();
    let mut size = 0;
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).ok()?;
        size += n;
        if n == 0 || size > MAX_HEAD_BYTES {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    let mut lines = lines.into_iter();
    let request_line = lines.next()?;
    let mut parts = request_line.split(' ');
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':').map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned())))
        .collect();
    let request = Echoed { method, path, headers };
    let body_len = request.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    Some((request, body_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_and_records_the_request() {
        let echo = EchoUpstream::start().unwrap();
        let answer = crate::get(echo.port(), "/a?b=c", &[("x-test", "1")], Duration::from_secs(5)).unwrap();
        assert_eq!(answer.status, 200);
        let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(json["path"], "/a?b=c");
        assert_eq!(json["headers"]["x-test"], "1");
        let seen = echo.requests();
        assert_eq!((seen.len(), seen[0].method.as_str()), (1, "GET"));
    }
}
