//! The one error type of the test bed: every variant carries what a failing test needs to show.

use std::fmt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

#[derive(Debug)]
pub enum BedError {
    /// A file the bed needs is absent; `hint` says which `make` target makes it.
    Missing {
        path: PathBuf,
        hint: &'static str,
    },
    Io {
        what: String,
        source: std::io::Error,
    },
    /// A template placeholder without a value, or a value that cannot be rendered safely.
    Template(String),
    /// Envoy stopped before it became ready.
    EnvoyExited {
        status: ExitStatus,
        log: String,
    },
    /// Envoy neither became ready nor exited in time (it has been killed).
    EnvoyNotReady {
        waited: Duration,
        log: String,
    },
    /// An HTTP exchange that did not parse as HTTP/1.1.
    Http(String),
    /// A key or token could not be made.
    Token(String),
}

impl BedError {
    /// `map_err(BedError::io("what was being done"))`.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| BedError::Io { what, source }
    }
}

impl fmt::Display for BedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BedError::Missing { path, hint } => write!(f, "{hint} (missing {})", path.display()),
            BedError::Io { what, source } => write!(f, "{what}: {source}"),
            BedError::Template(why) => write!(f, "template: {why}"),
            BedError::EnvoyExited { status, log } => write!(f, "Envoy exited ({status}) before ready; log:\n{log}"),
            BedError::EnvoyNotReady { waited, log } => {
                write!(f, "Envoy not ready after {waited:?} (killed); log:\n{log}")
            }
            BedError::Http(why) => write!(f, "http: {why}"),
            BedError::Token(why) => write!(f, "token: {why}"),
        }
    }
}

impl std::error::Error for BedError {}
