//! The one error type of the command line itself: what ends a run with exit status 2. A broken
//! chain is not an error here but a finding (`chain::Break`, exit status 1).

use std::fmt;
use std::process::ExitCode;

use zt_core::ConfigError;

#[derive(Debug)]
pub enum CliError {
    /// The command line is wrong; the text says how.
    Usage(String),
    /// An input file (or standard input, `-`) could not be read.
    Unreadable { path: String, source: std::io::Error },
    /// The output (standard output, or the draft policy file) could not be written.
    Unwritable { path: String, source: std::io::Error },
    /// The draft policy did not pass zt-core's own configuration check: a bug of this tool, since
    /// every entry was checked on its own first. Never written out.
    DraftInvalid(ConfigError),
    /// `package` found none of the filter modules in the directory given.
    NoModules { dir: String },
    /// An OCI image could not be built: the input is not a Wasm module, or (a bug of this tool) a
    /// manifest, config or layer did not pass oci-spec's own checks. Nothing is written for it.
    ImageInvalid(String),
}

impl CliError {
    /// Exit status 2 for every error: 1 is reserved for "a chain is broken".
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(2)
    }

    /// Whether the usage text helps.
    pub fn is_usage(&self) -> bool {
        matches!(self, Self::Usage(_))
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(message) => write!(f, "{message}"),
            Self::Unreadable { path, source } => write!(f, "cannot read {path}: {source}"),
            Self::Unwritable { path, source } => write!(f, "cannot write {path}: {source}"),
            Self::DraftInvalid(error) => {
                write!(f, "the draft policy does not pass zt-authz's configuration check ({error}); nothing written")
            }
            Self::NoModules { dir } => write!(
                f,
                "no filter module (zt_jwt.wasm, zt_authz.wasm, zt_ratelimit.wasm, zt_audit.wasm, zt_suite.wasm) in {dir}; run `make build` first"
            ),
            Self::ImageInvalid(message) => write!(f, "cannot build the image: {message}"),
        }
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unreadable { source, .. } | Self::Unwritable { source, .. } => Some(source),
            Self::DraftInvalid(error) => Some(error),
            Self::Usage(_) | Self::NoModules { .. } | Self::ImageInvalid(_) => None,
        }
    }
}
