//! A minimal Redis client, enough for the counters: one connection, commands in RESP2, replies
//! that are simple strings, errors, integers, bulk strings, or arrays of those. Written here
//! because the `redis` crate (with `url`, `idna` and the ICU tables behind it) was a fifth of
//! this tool's build time, for three commands (PING, AUTH/SELECT, EVAL).
//!
//! Every call is bounded: 1 s to connect, 2 s for a command's round trip. Any I/O or protocol
//! error drops the connection; the next call connects again, so a Redis that comes back is used
//! again and a dead one fails each call at once (connection refused). Calls are serialised on the
//! one connection: Redis runs commands one at a time anyway, and on loopback a call takes
//! microseconds.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Caps on what a reply may announce, so a corrupt length cannot allocate gigabytes.
const MAX_BULK_BYTES: usize = 1 << 20;
const MAX_ARRAY_ITEMS: usize = 1 << 16;

/// A Redis reply (RESP2). Nested arrays are not needed here and are refused as a protocol error.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

/// Where and how to connect: from `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]`.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    address: String,
    auth: Option<(Option<String>, String)>,
    database: Option<u32>,
}

pub(crate) struct RedisClient {
    target: Target,
    connection: Mutex<Option<BufStream<TcpStream>>>,
}

impl RedisClient {
    /// Parses `url`; connects on the first call.
    pub(crate) fn new(url: &str) -> Result<Self, String> {
        Ok(Self { target: parse_url(url)?, connection: Mutex::new(None) })
    }

    /// Sends one command and reads its reply. A Redis error reply is `Ok(Reply::Error)`; `Err`
    /// means no answer (refused, timed out, closed, garbled).
    pub(crate) async fn call(&self, args: &[&[u8]]) -> Result<Reply, String> {
        let mut slot = self.connection.lock().await;
        let outcome = tokio::time::timeout(COMMAND_TIMEOUT, async {
            if slot.is_none() {
                *slot = Some(self.connect().await?);
            }
            match slot.as_mut() {
                Some(stream) => round_trip(stream, args).await,
                None => Err("no connection".to_owned()),
            }
        })
        .await
        .unwrap_or_else(|_| Err(format!("no reply within {} ms", COMMAND_TIMEOUT.as_millis())));
        if outcome.is_err() {
            *slot = None;
        }
        outcome
    }

    async fn connect(&self) -> Result<BufStream<TcpStream>, String> {
        let address = &self.target.address;
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
            .await
            .map_err(|_| format!("connect to {address}: no answer within {} ms", CONNECT_TIMEOUT.as_millis()))?
            .map_err(|e| format!("connect to {address}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let mut stream = BufStream::new(stream);
        if let Some((user, password)) = &self.target.auth {
            let mut args: Vec<&[u8]> = vec![b"AUTH"];
            if let Some(user) = user {
                args.push(user.as_bytes());
            }
            args.push(password.as_bytes());
            expect_ok(round_trip(&mut stream, &args).await?, "AUTH")?;
        }
        if let Some(database) = self.target.database {
            expect_ok(round_trip(&mut stream, &[b"SELECT", database.to_string().as_bytes()]).await?, "SELECT")?;
        }
        Ok(stream)
    }
}

fn expect_ok(reply: Reply, command: &str) -> Result<(), String> {
    match reply {
        Reply::Simple(_) => Ok(()),
        Reply::Error(e) => Err(format!("{command}: {e}")),
        other => Err(format!("{command}: unexpected reply {other:?}")),
    }
}

async fn round_trip(stream: &mut BufStream<TcpStream>, args: &[&[u8]]) -> Result<Reply, String> {
    stream.write_all(&encode(args)).await.map_err(|e| format!("send: {e}"))?;
    stream.flush().await.map_err(|e| format!("send: {e}"))?;
    match read_value(stream).await? {
        Value::Scalar(reply) => Ok(reply),
        Value::ArrayOf(count) => {
            let mut items = Vec::with_capacity(count);
            for _ in 0..count {
                match read_value(stream).await? {
                    Value::Scalar(item) => items.push(item),
                    Value::ArrayOf(_) => return Err("nested arrays are not supported".to_owned()),
                }
            }
            Ok(Reply::Array(items))
        }
    }
}

/// A command as RESP2 sends it: an array of bulk strings.
fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

enum Value {
    Scalar(Reply),
    /// An array header: that many values follow.
    ArrayOf(usize),
}

async fn read_value(stream: &mut BufStream<TcpStream>) -> Result<Value, String> {
    let mut line = Vec::new();
    let read = stream.read_until(b'\n', &mut line).await.map_err(|e| format!("receive: {e}"))?;
    if read == 0 {
        return Err("connection closed by Redis".to_owned());
    }
    let text = line.strip_suffix(b"\r\n").ok_or("reply line without CRLF")?;
    let (&kind, rest) = text.split_first().ok_or("empty reply line")?;
    let rest = std::str::from_utf8(rest).map_err(|_| "reply line is not UTF-8")?;
    let number = || rest.parse::<i64>().map_err(|_| format!("bad number {rest:?} in a reply"));
    match kind {
        b'+' => Ok(Value::Scalar(Reply::Simple(rest.to_owned()))),
        b'-' => Ok(Value::Scalar(Reply::Error(rest.to_owned()))),
        b':' => Ok(Value::Scalar(Reply::Integer(number()?))),
        b'$' => {
            let Ok(length) = usize::try_from(number()?) else {
                return Ok(Value::Scalar(Reply::Bulk(None)));
            };
            if length > MAX_BULK_BYTES {
                return Err(format!("bulk reply of {length} bytes"));
            }
            let mut data = vec![0; length + 2];
            stream.read_exact(&mut data).await.map_err(|e| format!("receive: {e}"))?;
            data.truncate(length);
            Ok(Value::Scalar(Reply::Bulk(Some(data))))
        }
        b'*' => match usize::try_from(number()?) {
            Ok(count) if count > MAX_ARRAY_ITEMS => Err(format!("array reply of {count} items")),
            Ok(count) => Ok(Value::ArrayOf(count)),
            Err(_) => Ok(Value::Scalar(Reply::Bulk(None))),
        },
        other => Err(format!("unknown reply type {:?}", char::from(other))),
    }
}

fn parse_url(url: &str) -> Result<Target, String> {
    let rest = url.strip_prefix("redis://").ok_or("the Redis URL must start with redis:// (no TLS here)")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => (Some(userinfo), host_port),
        None => (None, authority),
    };
    if host_port.is_empty() {
        return Err("the Redis URL has no host".to_owned());
    }
    // An IPv6 literal is bracketed, so only a colon after the last `]` starts a port.
    let has_port = host_port.rfind(':').is_some_and(|colon| host_port.rfind(']').is_none_or(|bracket| colon > bracket));
    let address = if has_port { host_port.to_owned() } else { format!("{host_port}:6379") };
    let auth = userinfo.map(|userinfo| match userinfo.split_once(':') {
        Some((user, password)) => ((!user.is_empty()).then(|| user.to_owned()), password.to_owned()),
        None => (None, userinfo.to_owned()),
    });
    let database = match path {
        "" => None,
        db => Some(db.parse().map_err(|_| format!("the Redis URL's database {db:?} is not a number"))?),
    };
    Ok(Target { address, auth, database })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        assert_eq!(encode(&[b"PING"]), b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(encode(&[b"EVAL", b"", b"0"]), b"*3\r\n$4\r\nEVAL\r\n$0\r\n\r\n$1\r\n0\r\n");
    }

    #[test]
    fn urls() {
        let table = [
            ("redis://127.0.0.1:6380", "127.0.0.1:6380", None, None),
            ("redis://localhost", "localhost:6379", None, None),
            ("redis://[::1]:7000/2", "[::1]:7000", None, Some(2)),
            ("redis://[::1]", "[::1]:6379", None, None),
            ("redis://:secret@h:1", "h:1", Some((None, "secret".to_owned())), None),
            ("redis://bob:secret@h:1/0", "h:1", Some((Some("bob".to_owned()), "secret".to_owned())), Some(0)),
        ];
        for (url, address, auth, database) in table {
            let target = parse_url(url).unwrap();
            assert_eq!(target, Target { address: address.to_owned(), auth, database }, "{url}");
        }
        for bad in ["rediss://h:1", "http://h", "redis://", "redis://h:1/x"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }
}
