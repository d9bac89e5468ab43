//! A test collector for the audit filter's HTTP sink: an HTTP/1.1 server on 127.0.0.1 that
//! records every `POST` it receives (path, headers, body) and answers as the test tells it to,
//! changeable while Envoy runs: `200`, an error status, a slow `200`, or no server at all
//! ([`Collector::stop`]: the port then refuses connections).
//!
//! Envoy keeps upstream connections open and reuses them, so each connection is served in its
//! own thread until the peer closes it; request bodies may come with `content-length` or
//! `transfer-encoding: chunked` (RFC 9112 §6 and §7.1). It is test code: it never touches the
//! filters, and it parses no more HTTP than Envoy's HTTP client sends.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::BedError;

/// A request head is refused past this size; Envoy's are a few hundred bytes.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// A request body is refused past this size (an audit batch is far smaller).
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// An idle connection is dropped after this (Envoy reconnects when it needs to).
const IDLE: Duration = Duration::from_secs(30);
/// How often the (non-blocking) accept loop looks for a connection or for `stop`.
const ACCEPT_POLL: Duration = Duration::from_millis(2);
/// How often [`Collector::wait_for`] looks at the requests.
const WAIT_POLL: Duration = Duration::from_millis(10);

/// How the collector answers the next request; [`Collector::set_mode`] changes it at any time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// `200 OK` with the body `{}` (an OTLP/HTTP JSON exporter accepts an empty JSON object).
    #[default]
    Ok,
    /// This status (e.g. 500 or 503) with an empty body.
    Status(u16),
    /// `200 OK` after this delay; only the delayed request's connection waits.
    Delay(Duration),
}

/// One request the collector received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The request target as sent (path and query).
    pub path: String,
    /// Names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body after removing any chunked transfer coding.
    pub body: Vec<u8>,
}

impl Received {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy: a test asserting on it wants to see it, not an error).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What the accept thread and the connection threads share with the handle.
#[derive(Default)]
struct Shared {
    mode: Mutex<Mode>,
    received: Mutex<Vec<Received>>,
    stopped: AtomicBool,
    /// Wakes delayed answers when the collector stops.
    stopping: Condvar,
    stop_lock: Mutex<()>,
    /// A clone of every open connection, to shut it down on `stop`.
    connections: Mutex<HashMap<u64, TcpStream>>,
    next_id: AtomicU64,
}

impl Shared {
    fn mode(&self) -> Mode {
        *self.mode.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Sleeps for `delay` unless the collector stops first; `true` if it stopped.
    fn sleep_unless_stopped(&self, delay: Duration) -> bool {
        let guard = self.stop_lock.lock().unwrap_or_else(PoisonError::into_inner);
        let (_guard, _timeout) = self
            .stopping
            .wait_timeout_while(guard, delay, |()| !self.is_stopped())
            .unwrap_or_else(PoisonError::into_inner);
        self.is_stopped()
    }
}

/// The running collector; dropping it stops it.
pub struct Collector {
    port: u16,
    shared: Arc<Shared>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl Collector {
    /// Listens on 127.0.0.1 on a port the kernel chooses, answering [`Mode::Ok`].
    pub fn start() -> Result<Self, BedError> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let listener = TcpListener::bind(addr).map_err(BedError::io(format!("collector: bind {addr}")))?;
        let port = listener.local_addr().map_err(BedError::io("collector: local address"))?.port();
        // Non-blocking, so that `stop` needs no wake-up connection to end the accept loop.
        listener.set_nonblocking(true).map_err(BedError::io("collector: non-blocking listener"))?;
        let shared = Arc::new(Shared::default());
        let accept = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || accept_loop(listener, &shared))
        };
        Ok(Collector { port, shared, accept: Mutex::new(Some(accept)) })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// How the following requests are answered (one already being answered keeps its mode).
    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap_or_else(PoisonError::into_inner) = mode;
    }

    /// Every `POST` received so far, in arrival order.
    pub fn requests(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Polls the requests until `condition` holds (`true`) or `timeout` passes (`false`).
    pub fn wait_for(&self, condition: impl Fn(&[Received]) -> bool, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        // Bounded: one look per poll interval, plus the first and the last.
        let polls = timeout.as_millis() / WAIT_POLL.as_millis() + 2;
        for _ in 0..polls {
            if condition(&self.shared.received.lock().unwrap_or_else(PoisonError::into_inner)) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            std::thread::sleep(left.min(WAIT_POLL));
        }
        false
    }

    /// Closes the listener and every open connection: from now on the port refuses connections
    /// (until some other process binds it). Delayed answers are abandoned. Idempotent.
    pub fn stop(&self) {
        {
            let _guard = self.shared.stop_lock.lock().unwrap_or_else(PoisonError::into_inner);
            self.shared.stopped.store(true, Ordering::SeqCst);
            self.shared.stopping.notify_all();
        }
        // The accept thread owns the listener: once joined, the listening socket is closed, and
        // no connection can be accepted after the shutdown below.
        let accept = self.accept.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(accept) = accept {
            let _ = accept.join();
        }
        let connections = std::mem::take(&mut *self.shared.connections.lock().unwrap_or_else(PoisonError::into_inner));
        for stream in connections.values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: TcpListener, shared: &Arc<Shared>) {
    while !shared.is_stopped() {
        match listener.accept() {
            Ok((stream, _)) => {
                let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
                let Ok(clone) = stream.try_clone() else { continue };
                shared.connections.lock().unwrap_or_else(PoisonError::into_inner).insert(id, clone);
                let shared = Arc::clone(shared);
                std::thread::spawn(move || {
                    serve_connection(stream, &shared);
                    shared.connections.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
            // A connection reset before it was accepted, or out of descriptors: keep serving.
            Err(_) => std::thread::sleep(ACCEPT_POLL),
        }
    }
}

/// A parsed request head.
struct Head {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    /// HTTP/1.0 closes by default (RFC 9112 §9.3).
    http10: bool,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn wants_close(&self) -> bool {
        match self.header("connection") {
            Some(v) => v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")),
            None => self.http10,
        }
    }
}

/// Serves one keep-alive connection until the peer closes it, errs, idles, or the collector stops.
fn serve_connection(stream: TcpStream, shared: &Shared) {
    if stream.set_nonblocking(false).is_err() || stream.set_read_timeout(Some(IDLE)).is_err() {
        return;
    }
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    loop {
        let head = match read_head(&mut reader) {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(why) => {
                let _ = write_answer(&mut writer, 400, why.as_bytes(), true);
                return;
            }
        };
        if head.header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
            && writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err()
        {
            return;
        }
        let body = match read_body(&mut reader, &head) {
            Ok(body) => body,
            Err(why) => {
                let _ = write_answer(&mut writer, 400, why.as_bytes(), true);
                return;
            }
        };
        let close = head.wants_close();
        if head.method != "POST" {
            // Not recorded: the sink under test only ever POSTs.
            if write_answer(&mut writer, 405, b"", close).is_err() || close {
                return;
            }
            continue;
        }
        // Read the mode before recording: a test that sees the request and then changes the mode
        // must not change this request's answer.
        let mode = shared.mode();
        let Head { path, headers, .. } = head;
        shared.received.lock().unwrap_or_else(PoisonError::into_inner).push(Received { path, headers, body });
        let written = match mode {
            Mode::Ok => write_answer(&mut writer, 200, b"{}", close),
            Mode::Status(status) => write_answer(&mut writer, status, b"", close),
            Mode::Delay(delay) => {
                if shared.sleep_unless_stopped(delay) {
                    return;
                }
                write_answer(&mut writer, 200, b"{}", close)
            }
        };
        if written.is_err() || close || shared.is_stopped() {
            return;
        }
    }
}

fn write_answer(writer: &mut impl Write, status: u16, body: &[u8], close: bool) -> std::io::Result<()> {
    let content_type = if body.is_empty() { "" } else { "content-type: application/json\r\n" };
    let head = format!(
        "HTTP/1.1 {status} {}\r\n{content_type}content-length: {}\r\n{}\r\n",
        reason(status),
        body.len(),
        if close { "connection: close\r\n" } else { "" }
    );
    writer.write_all(head.as_bytes())?;
    writer.write_all(body)?;
    writer.flush()
}

/// RFC 9110 §15 reason phrases for the statuses a test is likely to ask for.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// One CRLF-terminated line without its terminator, counting its size against `budget`; `None`
/// at the end of the connection, or when reading fails (a reset, the idle timeout, `stop`).
fn read_line(reader: &mut impl BufRead, budget: &mut usize) -> Result<Option<String>, String> {
    let mut line = Vec::new();
    let limit = u64::try_from(*budget).unwrap_or(u64::MAX).saturating_add(1);
    let Ok(n) = reader.by_ref().take(limit).read_until(b'\n', &mut line) else { return Ok(None) };
    if n == 0 {
        return Ok(None);
    }
    if n > *budget || !line.ends_with(b"\n") {
        return Err("line too long or cut short".to_owned());
    }
    *budget -= n;
    let line = String::from_utf8(line).map_err(|_| "line is not UTF-8".to_owned())?;
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_owned()))
}

/// The next request head, `None` when the peer closed (or idled) between requests.
fn read_head(reader: &mut impl BufRead) -> Result<Option<Head>, String> {
    let mut budget = MAX_HEAD_BYTES;
    // RFC 9112 §2.2: a server should ignore empty lines before the request line.
    let request_line = loop {
        match read_line(reader, &mut budget) {
            Ok(Some(line)) if line.is_empty() => continue,
            Ok(Some(line)) => break line,
            // The end of the connection (or an idle timeout) between requests: just close.
            Ok(None) => return Ok(None),
            Err(why) => return Err(why),
        }
    };
    let mut parts = request_line.split(' ');
    let (Some(method), Some(path), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("bad request line {request_line:?}"));
    };
    let (method, path, http10) = (method.to_owned(), path.to_owned(), version == "HTTP/1.0");
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader, &mut budget)?.ok_or("connection closed inside the head")?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').ok_or_else(|| format!("bad header line {line:?}"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    Ok(Some(Head { method, path, headers, http10 }))
}

/// The body of the request whose head is `head` (RFC 9112 §6.3: chunked wins over length).
fn read_body(reader: &mut impl BufRead, head: &Head) -> Result<Vec<u8>, String> {
    if let Some(coding) = head.header("transfer-encoding") {
        if !coding.rsplit(',').next().is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked")) {
            return Err(format!("unsupported transfer-encoding {coding:?}"));
        }
        return read_chunked(reader);
    }
    let Some(length) = head.header("content-length") else { return Ok(Vec::new()) };
    let length: usize = length.parse().map_err(|_| format!("bad content-length {length:?}"))?;
    if length > MAX_BODY_BYTES {
        return Err(format!("body of {length} bytes is over the limit"));
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).map_err(|e| format!("body: {e}"))?;
    Ok(body)
}

/// A chunked body (RFC 9112 §7.1): size lines in hex (extensions ignored), data, trailers.
fn read_chunked(reader: &mut impl BufRead) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let mut budget = MAX_HEAD_BYTES;
    loop {
        let line = read_line(reader, &mut budget)?.ok_or("connection closed inside a chunked body")?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| format!("bad chunk size {line:?}"))?;
        if size == 0 {
            break;
        }
        if body.len().saturating_add(size) > MAX_BODY_BYTES {
            return Err("chunked body is over the limit".to_owned());
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(body.get_mut(start..).unwrap_or_default()).map_err(|e| format!("chunk: {e}"))?;
        let end = read_line(reader, &mut budget)?;
        if end.as_deref() != Some("") {
            return Err("chunk data not followed by CRLF".to_owned());
        }
    }
    // Trailer fields, ignored, up to the blank line.
    loop {
        match read_line(reader, &mut budget)?.as_deref() {
            Some("") => return Ok(body),
            Some(_) => continue,
            None => return Err("connection closed inside the trailers".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(5);

    fn connect(collector: &Collector) -> TcpStream {
        let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, collector.port())).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream
    }

    /// Reads exactly one response (status, body) off a keep-alive connection.
    fn read_response(stream: &mut TcpStream) -> (u16, String) {
        let mut reader = BufReader::new(stream);
        let mut status_line = String::new();
        reader.read_line(&mut status_line).unwrap();
        let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        // The BufReader may only have read this response: the server answers one at a time.
        assert!(reader.buffer().is_empty());
        (status, String::from_utf8(body).unwrap())
    }

    fn post(stream: &mut TcpStream, path: &str, body: &str) -> (u16, String) {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: collector\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).unwrap();
        read_response(stream)
    }

    #[test]
    fn records_a_post_and_answers_200() {
        let collector = Collector::start().unwrap();
        let (status, body) = post(&mut connect(&collector), "/v1/logs", r#"{"a":1}"#);
        assert_eq!((status, body.as_str()), (200, "{}"));
        let seen = collector.requests();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].path, "/v1/logs");
        assert_eq!(seen[0].header("Content-Type"), Some("application/json"));
        assert_eq!(seen[0].headers[0], ("host".to_owned(), "collector".to_owned()));
        assert_eq!(seen[0].body, br#"{"a":1}"#);
    }

    #[test]
    fn decodes_a_chunked_body() {
        let collector = Collector::start().unwrap();
        let mut stream = connect(&collector);
        let request = "POST /any/path HTTP/1.1\r\nHost: c\r\nTransfer-Encoding: chunked\r\n\r\n\
                       5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nx-trailer: 1\r\n\r\n";
        stream.write_all(request.as_bytes()).unwrap();
        assert_eq!(read_response(&mut stream).0, 200);
        let seen = collector.requests();
        assert_eq!((seen[0].path.as_str(), seen[0].body_text().as_str()), ("/any/path", "hello, world"));
        // The connection stays usable after a chunked request.
        assert_eq!(post(&mut stream, "/v1/logs", "x").0, 200);
        assert_eq!(collector.requests().len(), 2);
    }

    #[test]
    fn serves_two_requests_on_one_keep_alive_connection() {
        let collector = Collector::start().unwrap();
        let mut stream = connect(&collector);
        assert_eq!(post(&mut stream, "/one", "1"), (200, "{}".to_owned()));
        assert_eq!(post(&mut stream, "/two", "22"), (200, "{}".to_owned()));
        let seen = collector.requests();
        let paths: Vec<(&str, &[u8])> = seen.iter().map(|r| (r.path.as_str(), r.body.as_slice())).collect();
        assert_eq!(paths, [("/one", &b"1"[..]), ("/two", &b"22"[..])]);
    }

    #[test]
    fn answers_the_status_it_is_set_to_and_still_records() {
        let collector = Collector::start().unwrap();
        let mut stream = connect(&collector);
        collector.set_mode(Mode::Status(500));
        assert_eq!(post(&mut stream, "/v1/logs", "a"), (500, String::new()));
        collector.set_mode(Mode::Status(503));
        assert_eq!(post(&mut stream, "/v1/logs", "b"), (503, String::new()));
        collector.set_mode(Mode::Ok);
        assert_eq!(post(&mut stream, "/v1/logs", "c").0, 200);
        assert_eq!(collector.requests().len(), 3);
    }

    #[test]
    fn a_delayed_answer_does_not_hold_up_other_connections() {
        let collector = Collector::start().unwrap();
        let delay = Duration::from_millis(700);
        collector.set_mode(Mode::Delay(delay));
        let started = Instant::now();
        let mut slow_stream = connect(&collector);
        let slow = std::thread::spawn(move || {
            let answer = post(&mut slow_stream, "/slow", "s");
            (answer, started.elapsed())
        });
        assert!(collector.wait_for(|r| r.iter().any(|r| r.path == "/slow"), TIMEOUT));
        collector.set_mode(Mode::Ok);
        assert_eq!(post(&mut connect(&collector), "/fast", "f").0, 200);
        let fast_done = started.elapsed();
        let ((status, _), slow_done) = slow.join().unwrap();
        assert_eq!(status, 200);
        assert!(slow_done >= delay, "the delayed answer came after {slow_done:?}");
        assert!(fast_done < delay, "the other connection waited {fast_done:?}");
    }

    #[test]
    fn stop_closes_the_listener_and_open_connections() {
        let collector = Collector::start().unwrap();
        let port = collector.port();
        let mut open = connect(&collector);
        assert_eq!(post(&mut open, "/v1/logs", "a").0, 200);
        collector.stop();
        let refused = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
        // The kept-alive connection is closed too: a read sees the end (or a reset).
        let mut buf = [0u8; 16];
        assert!(matches!(open.read(&mut buf), Ok(0) | Err(_)));
        collector.stop(); // idempotent; `Drop` calls it again
    }

    #[test]
    fn wait_for_gives_up_after_the_timeout() {
        let collector = Collector::start().unwrap();
        let started = Instant::now();
        assert!(!collector.wait_for(|r| !r.is_empty(), Duration::from_millis(50)));
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(collector.wait_for(|r| r.is_empty(), Duration::ZERO));
    }

    #[test]
    fn refuses_other_methods_without_recording_them() {
        let collector = Collector::start().unwrap();
        let mut stream = connect(&collector);
        stream.write_all(b"GET /v1/logs HTTP/1.1\r\nHost: c\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut stream).0, 405);
        assert!(collector.requests().is_empty());
    }
}
