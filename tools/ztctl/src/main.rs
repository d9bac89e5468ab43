//! `ztctl`, the operator tool of the zero-trust filter suite. `ztctl --help` (generated from
//! `args.rs`) lists the subcommands; README.md shows them at work. This file only dispatches.
#![forbid(unsafe_code)]

mod args;
mod caller;
mod chain;
mod check;
mod commands;
mod draft;
mod error;
mod inventory;
mod manifest;
mod oci;
mod record;
mod scan;
#[cfg(test)]
mod testutil;
mod token;

use std::io::{ErrorKind, Write};
use std::process::ExitCode;

use args::Command;
use error::CliError;

fn main() -> ExitCode {
    let (stdout, stderr) = (std::io::stdout(), std::io::stderr());
    let (mut out, mut err) = (stdout.lock(), stderr.lock());
    match run(&mut out, &mut err) {
        Ok(code) => code,
        // `ztctl inventory … | head`: the reader went away, nothing to report.
        Err(CliError::Unwritable { source, .. }) if source.kind() == ErrorKind::BrokenPipe => ExitCode::from(2),
        Err(error) => {
            // Nothing more can be done if standard error is gone too.
            let _ = writeln!(err, "ztctl: {error}");
            if error.is_usage() {
                let _ = writeln!(err, "run `ztctl --help` for usage");
            }
            error.exit_code()
        }
    }
}

fn run(out: &mut dyn Write, err: &mut dyn Write) -> Result<ExitCode, CliError> {
    // `std::env::args` panics on an argument that is not UTF-8; this refuses it instead.
    let args = std::env::args_os()
        .skip(1)
        .map(|arg| arg.into_string().map_err(|arg| CliError::Usage(format!("argument {arg:?} is not UTF-8"))))
        .collect::<Result<Vec<String>, CliError>>()?;
    match args::parse(args)? {
        Command::Print(text) | Command::Completions(text) => write_out(out, &text).map(|()| ExitCode::SUCCESS),
        Command::Verify(inputs) => commands::verify(&inputs, out, err),
        Command::Inventory { inputs, draft_policy } => commands::inventory(&inputs, draft_policy.as_deref(), out, err),
        Command::Check { filter, files } => commands::check(filter.as_deref(), &files, out),
        Command::Token(token) => commands::token(&token, out),
        Command::Package(package) => {
            let source_date_epoch = std::env::var("SOURCE_DATE_EPOCH").ok();
            commands::package(&package, source_date_epoch.as_deref(), out, err)
        }
    }
}

fn write_out(out: &mut dyn Write, text: &str) -> Result<(), CliError> {
    out.write_all(text.as_bytes()).map_err(|source| CliError::Unwritable { path: "standard output".to_owned(), source })
}
