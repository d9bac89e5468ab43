//! The command line, parsed by hand: a subcommand, a few flags, and input files. No CLI crate,
//! to keep the build small (CI has two cores). Never touches the files themselves.

use crate::error::CliError;

pub const USAGE: &str = "\
ztctl: operator tool of the zero-trust filter suite

usage:
  ztctl verify [--mid-chain] [--key KEYFILE] [--checkpoints FILE]... FILE...
  ztctl inventory [--mid-chain] [--key KEYFILE] [--draft-policy OUT.json] FILE...
  ztctl package --wasm-dir DIR --out DIR [--version V]
  ztctl check [FILTER] FILE...
  ztctl token mint --key KEYFILE --alg ALG --issuer ISS [--audience AUD] [--subject SUB]
                   [--kid KID] [--claim NAME=VALUE]... [--lifetime SECONDS]
  ztctl token inspect TOKEN|-
  ztctl token verify (--config JWT.json [--jwks JWKS.json] | --jwks JWKS.json --issuer ISS
                     [--audience AUD]) [--at UNIX_SECONDS] TOKEN|-
  ztctl --help | --version

subcommands:
  verify     check the zt-audit record chains in FILE... (Envoy log lines, also in Istio's text
             and JSON log formats, NDJSON or OTLP JSON, detected line by line) and report the
             first break: a missing, reordered, duplicated, edited or malformed record. Files are read in the order given, as one stream, so
             rotated logs are passed oldest first.
  inventory  print who called what (caller, route, method, count, outcomes) from the same inputs;
             warns on stderr when the chains are broken, but does not require them intact.
  package    build each filter module found in --wasm-dir (zt_jwt.wasm, zt_authz.wasm,
             zt_ratelimit.wasm, zt_audit.wasm, zt_suite.wasm) into two OCI image layouts, OUT/<filter>-compat
             and OUT/<filter>-oci (Istio WasmPlugin and solo-io Wasm image spec), tagged V, and
             print their digests. The same modules give the same bytes (SOURCE_DATE_EPOCH, when
             set, is the images' creation time; else 1970-01-01T00:00:00Z).
  check      check plugin configurations offline with the filter's own parser. With FILTER
             (jwt, authz, ratelimit, audit or suite), each FILE is one configuration's JSON (Envoy's
             `config.configuration`, a WasmPlugin's `pluginConfig`). Without, each FILE is a
             deployment: Istio WasmPlugin manifests (the filter named by the image, else the
             resource) or an Envoy configuration (every Wasm filter whose module is zt_*.wasm,
             and the files its config_discovery loads, read from the current directory as Envoy
             reads them), YAML or JSON, several documents allowed. Prints the field and the
             reason of each error, as the filter would log it before Envoy refuses to start it.
  token      mint: sign a token (demos, tests) with KEYFILE, a PEM private key (RS*, PS*, ES256,
             ES384, EdDSA) or an HMAC secret's bytes (HS*), valid for --lifetime seconds (default
             300); a --claim VALUE that parses as JSON is JSON, else a string. inspect: print a
             token's header and claims and its times as dates, the signature unchecked. verify:
             check a token with the JWT filter's own code against a zt-jwt configuration (its
             keys replaced by --jwks FILE when given) or one provider given by --issuer, --jwks
             and --audience, at --at (default now); prints who it names, or the refusal by the
             reason the filter's metrics and logs use. A token is read from standard input with
             `-` (a token on the command line stays in the shell's history).

options:
  --mid-chain             the log starts in the middle of the chains: a chain first seen at seq N > 0
                          is checked from there instead of being a break
  --key KEYFILE           the chain key (the file's bytes, leading and trailing white space cut; at
                          least 32 bytes): records with prev_alg hmac-sha256 are checked under it, and
                          every unkeyed record (sha256) is a break
  --checkpoints FILE      (verify) the collector's copy (NDJSON or OTLP JSON): its chain checkpoints are
                          checked against the records of FILE... (its records are not read), so that a
                          tail cut from the log or an edited last record is a break. Checkpoints in
                          FILE... themselves are always checked. May be given more than once
  --draft-policy OUT.json (inventory) also write a draft zt-authz configuration allowing exactly the
                          observed (caller, route, method) calls, default deny, in advisory mode
  --wasm-dir DIR          (package) where the built modules are (`make build`: target/wasm)
  --out DIR               (package) where the image layouts go; an existing OUT/<filter>-<variant>
                          is replaced only if it is an image layout
  --version V             (package) the tag; default the workspace version (ztctl's own)
  -h, --help              this text
  -V, --version           the version

FILE `-` reads standard input.

exit status: 0 intact (verify) or done (inventory, package, token mint|inspect) or valid
             (check, token verify), 1 a chain is broken (verify) or a configuration is invalid
             (check) or the token is refused (token verify),
             2 usage error, unreadable input or unwritable output, or a bad --key file,
             3 not verified (verify): keyed records (prev_alg hmac-sha256) and no --key";

/// What to do, as the command line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Version,
    Verify(Inputs),
    Inventory {
        inputs: Inputs,
        draft_policy: Option<String>,
    },
    Package(Package),
    Token(Token),
    /// Each file's configuration through `filter`'s parser; without a filter, each file is a
    /// deployment (WasmPlugin manifests, an Envoy configuration) whose plugin configurations are
    /// checked by the parser of the filter each configures.
    Check {
        filter: Option<String>,
        files: Vec<String>,
    },
}

/// What `token` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Mint(crate::token::Mint),
    /// The token, or `-` for standard input.
    Inspect(String),
    Verify(crate::token::Verify),
}

/// What `package` builds, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub wasm_dir: String,
    pub out: String,
    /// The tag; `None` is the workspace version.
    pub version: Option<String>,
}

/// Where the records come from and how to read their chains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    /// In order; `-` is standard input.
    pub files: Vec<String>,
    pub mid_chain: bool,
    /// The file holding the chain key.
    pub key: Option<String>,
    /// Files whose checkpoints (only) are checked against the records of `files`.
    pub checkpoints: Vec<String>,
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, CliError> {
    let mut args = args.into_iter();
    let subcommand = match args.next() {
        None => return Err(usage("missing subcommand")),
        Some(first) => first,
    };
    match subcommand.as_str() {
        "-h" | "--help" | "help" => Ok(Command::Help),
        "-V" | "--version" => Ok(Command::Version),
        "verify" | "inventory" => {
            let (inputs, draft_policy, help) = parse_inputs(&subcommand, args)?;
            if help {
                return Ok(Command::Help);
            }
            if subcommand == "verify" {
                if draft_policy.is_some() {
                    return Err(usage("--draft-policy belongs to `inventory`, not `verify`"));
                }
                return Ok(Command::Verify(inputs));
            }
            Ok(Command::Inventory { inputs, draft_policy })
        }
        "package" => parse_package(args),
        "check" => parse_check(args),
        "token" => parse_token(args),
        other if other.starts_with('-') => Err(usage(format!("expected a subcommand before {other:?}"))),
        other => Err(usage(format!("unknown subcommand {other:?}"))),
    }
}

/// The flags and files of `verify` and `inventory`; the third value says `--help` was asked.
fn parse_inputs(
    subcommand: &str,
    mut args: impl Iterator<Item = String>,
) -> Result<(Inputs, Option<String>, bool), CliError> {
    let mut inputs = Inputs { files: Vec::new(), mid_chain: false, key: None, checkpoints: Vec::new() };
    let mut draft_policy = None;
    let mut only_files = false;
    while let Some(arg) = args.next() {
        if only_files || arg == "-" || !arg.starts_with('-') {
            inputs.files.push(arg);
            continue;
        }
        match arg.as_str() {
            "--" => only_files = true,
            "-h" | "--help" => return Ok((inputs, None, true)),
            "--mid-chain" => inputs.mid_chain = true,
            "--draft-policy" => {
                let value = args.next().ok_or_else(|| usage("--draft-policy needs a file name"))?;
                draft_policy = Some(set_once(draft_policy, value)?);
            }
            "--key" => {
                let value = args.next().ok_or_else(|| usage("--key needs a file name"))?;
                inputs.key = Some(set_once_named("--key", inputs.key.take(), value)?);
            }
            "--checkpoints" if subcommand == "verify" => {
                inputs.checkpoints.push(args.next().ok_or_else(|| usage("--checkpoints needs a file name"))?);
            }
            _ => match arg.split_once('=') {
                Some(("--draft-policy", value)) => draft_policy = Some(set_once(draft_policy, value.to_owned())?),
                Some(("--key", value)) => {
                    inputs.key = Some(set_once_named("--key", inputs.key.take(), value.to_owned())?)
                }
                Some(("--checkpoints", value)) if subcommand == "verify" => inputs.checkpoints.push(value.to_owned()),
                _ => return Err(usage(format!("unknown option {arg:?} for `{subcommand}`"))),
            },
        }
    }
    for (flag, value) in
        inputs.key.iter().map(|k| ("--key", k)).chain(inputs.checkpoints.iter().map(|c| ("--checkpoints", c)))
    {
        if value.is_empty() || value.starts_with('-') && value != "-" {
            return Err(usage(format!("{flag} needs a file name, not {value:?}")));
        }
    }
    if let Some(out) = &draft_policy
        && (out.is_empty() || out == "-" || out.starts_with('-'))
    {
        return Err(usage(format!("--draft-policy needs a file name, not {out:?}")));
    }
    if inputs.files.is_empty() {
        return Err(usage("no FILE given (use `-` for standard input)"));
    }
    // Standard input can be read once; a second `-` would silently read nothing.
    let all = inputs.files.iter().chain(&inputs.checkpoints).chain(&inputs.key);
    if all.filter(|f| *f == "-").count() > 1 {
        return Err(usage("`-` (standard input) given more than once"));
    }
    Ok((inputs, draft_policy, false))
}

fn set_once(current: Option<String>, value: String) -> Result<String, CliError> {
    set_once_named("--draft-policy", current, value)
}

fn set_once_named(flag: &str, current: Option<String>, value: String) -> Result<String, CliError> {
    match current {
        Some(_) => Err(usage(format!("{flag} given more than once"))),
        None => Ok(value),
    }
}

/// `check FILTER FILE...`: the filter name is checked by the command, which knows the filters.
fn parse_check(args: impl Iterator<Item = String>) -> Result<Command, CliError> {
    let args: Vec<String> = args.collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        return Ok(Command::Help);
    }
    let mut args = args.into_iter().peekable();
    let first = args.peek().ok_or_else(|| {
        usage("`check` needs FILE... (optionally after a FILTER: jwt, authz, ratelimit, audit, suite)")
    })?;
    // A first word that is no filter, no file and no path was meant as a FILTER.
    let path_like = first == "-" || first.contains(['.', '/']) || std::path::Path::new(first).exists();
    if crate::check::Filter::parse(first).is_none() && !path_like {
        return Err(usage(format!("unknown FILTER {first:?}: jwt, authz, ratelimit, audit or suite")));
    }
    let filter = crate::check::Filter::parse(first).is_some().then(|| args.next()).flatten();
    let files: Vec<String> = args.collect();
    if files.is_empty() {
        return Err(usage("`check` needs at least one FILE (use `-` for standard input)"));
    }
    if files.iter().filter(|f| *f == "-").count() > 1 {
        return Err(usage("`-` (standard input) given more than once"));
    }
    if let Some(option) = files.iter().find(|f| f.starts_with('-') && *f != "-") {
        return Err(usage(format!("unknown option {option:?} for `check`")));
    }
    Ok(Command::Check { filter, files })
}

/// `token mint|inspect|verify` with their flags (`--flag VALUE` or `--flag=VALUE`, once each but
/// `--claim`) and the token (`verify`, `inspect`).
fn parse_token(mut args: impl Iterator<Item = String>) -> Result<Command, CliError> {
    let action = args.next().ok_or_else(|| usage("`token` needs mint, inspect or verify"))?;
    let (mut flags, mut claims, mut positional) = (std::collections::BTreeMap::new(), Vec::new(), Vec::new());
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        if arg == "-" || !arg.starts_with('-') {
            positional.push(arg);
            continue;
        }
        let (flag, value) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), value.to_owned()),
            None => (arg.clone(), args.next().ok_or_else(|| usage(format!("{arg} needs a value")))?),
        };
        if flag == "--claim" {
            claims.push(value);
        } else if flags.insert(flag.clone(), value).is_some() {
            return Err(usage(format!("{flag} given more than once")));
        }
    }
    let allowed: &[&str] = match action.as_str() {
        "mint" => &["--key", "--alg", "--kid", "--issuer", "--audience", "--subject", "--lifetime"],
        "verify" => &["--config", "--jwks", "--issuer", "--audience", "--at"],
        "inspect" => &[],
        other => return Err(usage(format!("unknown `token` action {other:?}: mint, inspect or verify"))),
    };
    if let Some(flag) = flags.keys().find(|flag| !allowed.contains(&flag.as_str())) {
        return Err(usage(format!("unknown option {flag:?} for `token {action}`")));
    }
    if action != "mint" && !claims.is_empty() {
        return Err(usage(format!("--claim belongs to `token mint`, not `token {action}`")));
    }
    let number = |flag: &str, value: &str| {
        value.parse::<u64>().map_err(|_| usage(format!("{flag} needs a whole number of seconds, not {value:?}")))
    };
    let one_token = |positional: Vec<String>| match <[String; 1]>::try_from(positional) {
        Ok([token]) => Ok(token),
        Err(_) => Err(usage(format!("`token {action}` takes one TOKEN (or `-` for standard input)"))),
    };
    match action.as_str() {
        "mint" => {
            if !positional.is_empty() {
                return Err(usage("`token mint` takes no TOKEN"));
            }
            let required = |flags: &mut std::collections::BTreeMap<String, String>, flag: &str| {
                flags.remove(flag).ok_or_else(|| usage(format!("`token mint` needs {flag}")))
            };
            let lifetime = flags.remove("--lifetime").map(|v| number("--lifetime", &v)).transpose()?;
            Ok(Command::Token(Token::Mint(crate::token::Mint {
                key: required(&mut flags, "--key")?,
                alg: required(&mut flags, "--alg")?,
                issuer: required(&mut flags, "--issuer")?,
                kid: flags.remove("--kid"),
                audience: flags.remove("--audience"),
                subject: flags.remove("--subject"),
                claims,
                lifetime_seconds: lifetime.unwrap_or(300),
            })))
        }
        "inspect" => Ok(Command::Token(Token::Inspect(one_token(positional)?))),
        _ => {
            let at = flags.remove("--at").map(|v| number("--at", &v)).transpose()?;
            Ok(Command::Token(Token::Verify(crate::token::Verify {
                config: flags.remove("--config"),
                jwks: flags.remove("--jwks"),
                issuer: flags.remove("--issuer"),
                audience: flags.remove("--audience"),
                at,
                token: one_token(positional)?,
            })))
        }
    }
}

/// The flags of `package`: each `--flag VALUE` or `--flag=VALUE`, once.
fn parse_package(mut args: impl Iterator<Item = String>) -> Result<Command, CliError> {
    let (mut wasm_dir, mut out, mut version) = (None, None, None);
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.to_owned())),
            _ => (arg.clone(), None),
        };
        let slot = match flag.as_str() {
            "--wasm-dir" => &mut wasm_dir,
            "--out" => &mut out,
            "--version" => &mut version,
            _ if flag.starts_with('-') => return Err(usage(format!("unknown option {arg:?} for `package`"))),
            _ => return Err(usage(format!("`package` takes no FILE ({arg:?}); use --wasm-dir and --out"))),
        };
        let value = match inline {
            Some(value) => value,
            None => args.next().ok_or_else(|| usage(format!("{flag} needs a value")))?,
        };
        if value.is_empty() || value.starts_with('-') {
            return Err(usage(format!("{flag} needs a value, not {value:?}")));
        }
        *slot = Some(set_once_named(&flag, slot.take(), value)?);
    }
    let wasm_dir = wasm_dir.ok_or_else(|| usage("`package` needs --wasm-dir DIR (`make build` writes target/wasm)"))?;
    let out = out.ok_or_else(|| usage("`package` needs --out DIR"))?;
    if let Some(tag) = &version {
        check_tag(tag)?;
    }
    Ok(Command::Package(Package { wasm_dir, out, version }))
}

/// A tag as the distribution spec allows it (`[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`), with room
/// for the `-oci` suffix `make publish` adds. SemVer build metadata (`+...`) is not allowed.
pub fn check_tag(tag: &str) -> Result<(), CliError> {
    let first_ok = tag.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let rest_ok = tag.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok && tag.len() <= 124 {
        Ok(())
    } else {
        Err(usage(format!(
            "--version {tag:?} is not a valid image tag: letters, digits, `_`, `.` and `-`, not starting with `.` or `-`, at most 124 characters"
        )))
    }
}

fn usage(message: impl Into<String>) -> CliError {
    CliError::Usage(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str]) -> Result<Command, CliError> {
        parse(args.iter().map(|a| (*a).to_owned()))
    }

    fn files(names: &[&str], mid_chain: bool) -> Inputs {
        Inputs { files: names.iter().map(|n| (*n).to_owned()).collect(), mid_chain, key: None, checkpoints: Vec::new() }
    }

    #[test]
    fn accepted_command_lines() {
        let cases: &[(&[&str], Command)] = &[
            (&["--help"], Command::Help),
            (&["help"], Command::Help),
            (&["verify", "--help"], Command::Help),
            (&["--version"], Command::Version),
            (&["verify", "a.log"], Command::Verify(files(&["a.log"], false))),
            (&["verify", "--mid-chain", "a", "-"], Command::Verify(files(&["a", "-"], true))),
            (&["verify", "a", "--mid-chain"], Command::Verify(files(&["a"], true))),
            (&["verify", "--", "--odd-name"], Command::Verify(files(&["--odd-name"], false))),
            (
                &["inventory", "a", "--draft-policy", "out.json"],
                Command::Inventory { inputs: files(&["a"], false), draft_policy: Some("out.json".into()) },
            ),
            (
                &["inventory", "--draft-policy=o.json", "--mid-chain", "a", "b"],
                Command::Inventory { inputs: files(&["a", "b"], true), draft_policy: Some("o.json".into()) },
            ),
            (&["inventory", "-"], Command::Inventory { inputs: files(&["-"], false), draft_policy: None }),
            (
                &["verify", "--key", "k", "--checkpoints", "c1.ndjson", "--checkpoints=c2.json", "a.log"],
                Command::Verify(Inputs {
                    key: Some("k".into()),
                    checkpoints: vec!["c1.ndjson".into(), "c2.json".into()],
                    ..files(&["a.log"], false)
                }),
            ),
            (
                &["inventory", "--key=k", "a"],
                Command::Inventory {
                    inputs: Inputs { key: Some("k".into()), ..files(&["a"], false) },
                    draft_policy: None,
                },
            ),
            (&["package", "--help"], Command::Help),
            (
                &["package", "--wasm-dir", "target/wasm", "--out=build/oci"],
                Command::Package(Package { wasm_dir: "target/wasm".into(), out: "build/oci".into(), version: None }),
            ),
            (
                &["package", "--version", "1.2.3-rc.1", "--out", "o", "--wasm-dir=w"],
                Command::Package(Package { wasm_dir: "w".into(), out: "o".into(), version: Some("1.2.3-rc.1".into()) }),
            ),
        ];
        for (args, want) in cases {
            assert_eq!(parsed(args).unwrap(), *want, "{args:?}");
        }
    }

    #[test]
    fn refused_command_lines() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "missing subcommand"),
            (&["frobnicate"], "unknown subcommand"),
            (&["--mid-chain", "verify"], "expected a subcommand"),
            (&["verify"], "no FILE given"),
            (&["verify", "--mid-chain"], "no FILE given"),
            (&["verify", "--bogus", "a"], "unknown option \"--bogus\""),
            (&["verify", "--draft-policy", "o.json", "a"], "belongs to `inventory`"),
            (&["inventory", "a", "--draft-policy"], "needs a file name"),
            (&["inventory", "a", "--draft-policy", "-"], "needs a file name"),
            (&["inventory", "a", "--draft-policy=x", "--draft-policy=y"], "more than once"),
            (&["verify", "--key", "k1", "--key=k2", "a"], "--key given more than once"),
            (&["verify", "a", "--key"], "--key needs a file name"),
            (&["verify", "--key", "--mid-chain", "a"], "--key needs a file name, not \"--mid-chain\""),
            (&["verify", "--checkpoints", "-", "-"], "more than once"),
            (&["inventory", "--checkpoints", "c", "a"], "unknown option \"--checkpoints\" for `inventory`"),
            (&["verify", "-", "-"], "more than once"),
            (&["package", "--out", "o"], "needs --wasm-dir"),
            (&["package", "--wasm-dir", "w"], "needs --out"),
            (&["package", "--wasm-dir", "w", "--out"], "--out needs a value"),
            (&["package", "--wasm-dir", "w", "--out", "--version"], "needs a value, not"),
            (&["package", "--wasm-dir", "w", "--wasm-dir", "x", "--out", "o"], "--wasm-dir given more than once"),
            (&["package", "--wasm-dir", "w", "--out", "o", "--version", "1.0+build"], "not a valid image tag"),
            (&["package", "--wasm-dir", "w", "--out", "o", "--version", ".1"], "not a valid image tag"),
            (&["package", "--wasm-dir", "w", "--out", "o", "--mid-chain"], "unknown option"),
            (&["package", "--wasm-dir", "w", "--out", "o", "extra"], "takes no FILE"),
            (&["token"], "needs mint, inspect or verify"),
            (&["token", "forge"], "unknown `token` action"),
            (&["token", "mint", "--alg", "ES256", "--issuer", "i"], "needs --key"),
            (&["token", "mint", "--key", "k", "--alg", "ES256", "--issuer", "i", "t"], "takes no TOKEN"),
            (&["token", "mint", "--key", "k", "--key", "k2"], "--key given more than once"),
            (&["token", "mint", "--key", "k", "--alg", "ES256", "--issuer", "i", "--lifetime", "5m"], "whole number"),
            (&["token", "verify", "--issuer", "i", "--subject", "s", "-"], "unknown option \"--subject\""),
            (&["token", "verify", "--claim", "a=b", "-"], "belongs to `token mint`"),
            (&["token", "verify", "--jwks", "j"], "takes one TOKEN"),
            (&["token", "inspect", "a", "b"], "takes one TOKEN"),
            (&["token", "inspect", "--at"], "--at needs a value"),
        ];
        for (args, want) in cases {
            match parsed(args) {
                Err(CliError::Usage(message)) => assert!(message.contains(want), "{args:?}: {message}"),
                other => panic!("{args:?}: {other:?}"),
            }
        }
    }
}
