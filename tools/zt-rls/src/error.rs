//! The one error type of this crate: starting things (a limits file, Redis, the service) and the
//! test client. Errors of a `ShouldRateLimit` call are gRPC statuses (`service.rs`), not these.

use std::fmt;
use std::time::Duration;

#[derive(Debug)]
pub enum Error {
    /// The limits file could not be read.
    LimitsUnreadable { path: String, source: std::io::Error },
    /// The limits file is not Limitador's format; the text names the entry.
    LimitsInvalid(String),
    /// The counter storage could not be set up (Redis unreachable at start, a bad URL).
    Storage(String),
    /// The listen address could not be bound or read.
    Bind { address: String, source: std::io::Error },
    /// The tokio runtime or the service thread could not be started.
    Runtime(std::io::Error),
    /// The service did not report ready in time, or its thread died while starting.
    NotReady { waited: Duration, detail: String },
    /// The gRPC server stopped with an error.
    Serve(String),
    /// `redis-server` is not on PATH.
    RedisNotInstalled,
    /// `redis-server` could not be started, exited, or did not answer PING in time; `log` is the
    /// tail of its output.
    RedisNotReady { port: u16, detail: String, log: String },
    /// The test client could not connect.
    Client(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LimitsUnreadable { path, source } => write!(f, "cannot read the limits file {path}: {source}"),
            Self::LimitsInvalid(detail) => write!(f, "invalid limits file: {detail}"),
            Self::Storage(detail) => write!(f, "limits storage: {detail}"),
            Self::Bind { address, source } => write!(f, "cannot listen on {address}: {source}"),
            Self::Runtime(source) => write!(f, "cannot start the service's runtime or thread: {source}"),
            Self::NotReady { waited, detail } => {
                write!(f, "the rate-limit service was not ready within {} ms: {detail}", waited.as_millis())
            }
            Self::Serve(detail) => write!(f, "the gRPC server failed: {detail}"),
            Self::RedisNotInstalled => {
                write!(f, "redis-server is not installed (not on PATH): run `make redis-server`")
            }
            Self::RedisNotReady { port, detail, log } => {
                write!(f, "redis-server on 127.0.0.1:{port}: {detail}")?;
                if !log.is_empty() {
                    write!(f, "; its log ends with:\n{log}")?;
                }
                Ok(())
            }
            Self::Client(detail) => write!(f, "rate-limit client: {detail}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::LimitsUnreadable { source, .. } | Self::Bind { source, .. } | Self::Runtime(source) => Some(source),
            _ => None,
        }
    }
}
