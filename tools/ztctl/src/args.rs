//! The command line, declared with clap's derive: the help text, the usage lines and the shell
//! completions are generated from these declarations, so they cannot drift from what is parsed.
//! What clap cannot say (`-` read once, a FILTER before the files, a valid image tag) is checked
//! after it, in [`parse`]. Never touches the files themselves.

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::error::CliError;

/// Printed after the subcommands in `ztctl --help`.
const EXIT_STATUS: &str = "\
Exit status: 0 intact (verify) or done (inventory, package, token mint|inspect, completions) or
valid (check, token verify); 1 a chain is broken (verify), a configuration is invalid (check) or
the token is refused (token verify); 2 usage error, unreadable input or unwritable output, or a bad
--key file; 3 not verified (verify): keyed records (prev_alg hmac-sha256) and no --key.

FILE `-` reads standard input.";

/// Operator tool of the zero-trust filter suite.
#[derive(Debug, Parser)]
#[command(name = "ztctl", version, after_help = EXIT_STATUS)]
struct Cli {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Check the zt-audit record chains and report the first break.
    ///
    /// FILE... are Envoy log lines (also Istio's text and JSON log formats and `kubectl logs`
    /// output), NDJSON or OTLP JSON, detected line by line. A missing, reordered, duplicated,
    /// edited or malformed record is a break. Files are read in the order given, as one stream,
    /// so rotated logs are passed oldest first.
    Verify {
        #[command(flatten)]
        inputs: InputArgs,
        /// The collector's copy (NDJSON or OTLP JSON): its chain checkpoints are checked against
        /// the records of FILE... (its records are not read), so that a tail cut from the log or
        /// an edited last record is a break. Checkpoints in FILE... themselves are always checked.
        #[arg(long, value_name = "FILE")]
        checkpoints: Vec<String>,
    },
    /// Print who called what (caller, route, method, count, outcomes).
    ///
    /// From the same inputs as verify; warns on stderr when the chains are broken, but does not
    /// require them intact.
    Inventory {
        #[command(flatten)]
        inputs: InputArgs,
        /// Also write a draft zt-authz configuration allowing exactly the observed (caller,
        /// route, method) calls, default deny, in advisory mode.
        #[arg(long, value_name = "OUT.json")]
        draft_policy: Option<String>,
    },
    /// Build each filter module into two OCI image layouts and print their digests.
    ///
    /// Each module found in --wasm-dir (zt_jwt.wasm, zt_authz.wasm, zt_ratelimit.wasm,
    /// zt_audit.wasm, zt_suite.wasm) becomes OUT/<filter>-compat and OUT/<filter>-oci (Istio
    /// WasmPlugin and solo-io Wasm image spec), tagged V. The same modules give the same bytes
    /// (SOURCE_DATE_EPOCH, when set, is the images' creation time; else 1970-01-01T00:00:00Z).
    Package {
        /// Where the built modules are (`make build`: target/wasm).
        #[arg(long, value_name = "DIR")]
        wasm_dir: String,
        /// Where the image layouts go; an existing OUT/<filter>-<variant> is replaced only if it
        /// is an image layout.
        #[arg(long, value_name = "DIR")]
        out: String,
        /// The tag; default the workspace version (ztctl's own).
        #[arg(long = "version", value_name = "V")]
        tag: Option<String>,
    },
    /// Check plugin configurations offline with the filter's own parser.
    ///
    /// With FILTER (jwt, authz, ratelimit, audit or suite), each FILE is one configuration's JSON
    /// (Envoy's `config.configuration`, a WasmPlugin's `pluginConfig`). Without, each FILE is a
    /// deployment: Istio WasmPlugin manifests (the filter named by the image, else the resource)
    /// or an Envoy configuration (every Wasm filter whose module is zt_*.wasm, and the files its
    /// config_discovery loads, read from the current directory as Envoy reads them), YAML or
    /// JSON, several documents allowed. Prints the field and the reason of each error, as the
    /// filter would log it before Envoy refuses to start it.
    Check {
        /// [FILTER] FILE...
        #[arg(value_name = "[FILTER] FILE", required = true, num_args = 1..)]
        args: Vec<String>,
    },
    /// Mint, inspect or verify a token.
    #[command(subcommand)]
    Token(TokenSub),
    /// Print the shell completion script for SHELL (bash: `source <(ztctl completions bash)`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// The record inputs of `verify` and `inventory`.
#[derive(Debug, Args)]
struct InputArgs {
    /// The log starts in the middle of the chains: a chain first seen at seq N > 0 is checked
    /// from there instead of being a break.
    #[arg(long)]
    mid_chain: bool,
    /// The chain key (the file's bytes, leading and trailing white space cut; at least 32
    /// bytes): records with prev_alg hmac-sha256 are checked under it, and every unkeyed record
    /// (sha256) is a break.
    #[arg(long, value_name = "KEYFILE")]
    key: Option<String>,
    /// The records, in order.
    #[arg(value_name = "FILE", required = true, num_args = 1..)]
    files: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum TokenSub {
    /// Sign a token (demos, tests) valid for --lifetime seconds.
    Mint {
        /// A PEM private key (RS*, PS*, ES256, ES384, EdDSA) or an HMAC secret's bytes (HS*).
        #[arg(long, value_name = "KEYFILE")]
        key: String,
        #[arg(long)]
        alg: String,
        #[arg(long)]
        issuer: String,
        #[arg(long)]
        audience: Option<String>,
        #[arg(long)]
        subject: Option<String>,
        #[arg(long)]
        kid: Option<String>,
        /// NAME=VALUE; a VALUE that parses as JSON is JSON (`true`, `5`, `["a"]`), else a string.
        #[arg(long = "claim", value_name = "NAME=VALUE")]
        claims: Vec<String>,
        #[arg(long, value_name = "SECONDS", default_value_t = 300)]
        lifetime: u64,
    },
    /// Print a token's header and claims and its times as dates, the signature unchecked.
    Inspect {
        /// The token, or `-` to read it from standard input (a token on the command line stays
        /// in the shell's history).
        #[arg(value_name = "TOKEN|-")]
        token: String,
    },
    /// Check a token with the JWT filter's own code; print who it names, or the refusal by the
    /// reason the filter's metrics and logs use.
    ///
    /// Against a zt-jwt configuration (its keys replaced by --jwks FILE when given), or one
    /// provider given by --issuer, --jwks and --audience.
    Verify {
        /// A zt-jwt configuration (the `jwt` section of the suite's).
        #[arg(long, value_name = "JWT.json", conflicts_with = "issuer")]
        config: Option<String>,
        #[arg(long, value_name = "JWKS.json")]
        jwks: Option<String>,
        #[arg(long, requires = "jwks")]
        issuer: Option<String>,
        #[arg(long, requires = "issuer")]
        audience: Option<String>,
        /// Unix seconds to judge the token at; default now.
        #[arg(long, value_name = "UNIX_SECONDS")]
        at: Option<u64>,
        /// The token, or `-` to read it from standard input.
        #[arg(value_name = "TOKEN|-")]
        token: String,
    },
}

/// What to do, as the command line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Text clap made (help, version) for standard output.
    Print(String),
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
    /// The completion script for a shell.
    Completions(String),
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
    let cli = match Cli::try_parse_from(std::iter::once("ztctl".to_owned()).chain(args)) {
        Ok(cli) => cli,
        Err(error) => {
            use clap::error::ErrorKind;
            return match error.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Ok(Command::Print(error.render().to_string())),
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    Err(usage(format!("missing subcommand\n\n{}", error.render())))
                }
                _ => Err(usage(clap_message(&error))),
            };
        }
    };
    Ok(match cli.command {
        Sub::Verify { inputs, checkpoints } => Command::Verify(inputs_of(inputs, checkpoints)?),
        Sub::Inventory { inputs, draft_policy } => {
            if let Some(out) = &draft_policy
                && (out.is_empty() || out == "-")
            {
                return Err(usage(format!("--draft-policy needs a file name, not {out:?}")));
            }
            Command::Inventory { inputs: inputs_of(inputs, Vec::new())?, draft_policy }
        }
        Sub::Package { wasm_dir, out, tag } => {
            if let Some(tag) = &tag {
                check_tag(tag)?;
            }
            Command::Package(Package { wasm_dir, out, version: tag })
        }
        Sub::Check { args } => check_args(args)?,
        Sub::Token(token) => Command::Token(match token {
            TokenSub::Mint { key, alg, issuer, audience, subject, kid, claims, lifetime } => {
                Token::Mint(crate::token::Mint {
                    key,
                    alg,
                    kid,
                    issuer,
                    audience,
                    subject,
                    claims,
                    lifetime_seconds: lifetime,
                })
            }
            TokenSub::Inspect { token } => Token::Inspect(token),
            TokenSub::Verify { config, jwks, issuer, audience, at, token } => {
                Token::Verify(crate::token::Verify { config, jwks, issuer, audience, at, token })
            }
        }),
        Sub::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "ztctl", &mut script);
            Command::Completions(String::from_utf8_lossy(&script).into_owned())
        }
    })
}

/// clap's message without its `error: ` prefix, its usage line and its pointer to `--help`
/// (the caller says where help is).
fn clap_message(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let first = rendered.split("\n\n").next().unwrap_or_default();
    first.trim_start_matches("error: ").trim().to_owned()
}

fn inputs_of(inputs: InputArgs, checkpoints: Vec<String>) -> Result<Inputs, CliError> {
    let InputArgs { mid_chain, key, files } = inputs;
    for (flag, value) in key.iter().map(|k| ("--key", k)).chain(checkpoints.iter().map(|c| ("--checkpoints", c))) {
        if value.is_empty() {
            return Err(usage(format!("{flag} needs a file name, not {value:?}")));
        }
    }
    // Standard input can be read once; a second `-` would silently read nothing.
    if files.iter().chain(&checkpoints).chain(&key).filter(|f| *f == "-").count() > 1 {
        return Err(usage("`-` (standard input) given more than once"));
    }
    Ok(Inputs { files, mid_chain, key, checkpoints })
}

/// `check [FILTER] FILE...`: a first word that names a filter is the FILTER (the command checks
/// the name); one that is no filter, no file and no path was meant as one.
fn check_args(args: Vec<String>) -> Result<Command, CliError> {
    let mut args = args.into_iter().peekable();
    let first = args.peek().ok_or_else(|| usage("`check` needs FILE..."))?;
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
    Ok(Command::Check { filter, files })
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
    fn the_declarations_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn accepted_command_lines() {
        let cases: &[(&[&str], Command)] = &[
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
            (
                &["package", "--wasm-dir", "target/wasm", "--out=build/oci"],
                Command::Package(Package { wasm_dir: "target/wasm".into(), out: "build/oci".into(), version: None }),
            ),
            (
                &["package", "--version", "1.2.3-rc.1", "--out", "o", "--wasm-dir=w"],
                Command::Package(Package { wasm_dir: "w".into(), out: "o".into(), version: Some("1.2.3-rc.1".into()) }),
            ),
            (
                &["check", "authz", "a.json"],
                Command::Check { filter: Some("authz".into()), files: vec!["a.json".into()] },
            ),
            (&["check", "a.yaml", "-"], Command::Check { filter: None, files: vec!["a.yaml".into(), "-".into()] }),
        ];
        for (args, want) in cases {
            assert_eq!(parsed(args).unwrap(), *want, "{args:?}");
        }
    }

    #[test]
    fn help_version_and_completions_are_generated() {
        for args in [&["--help"][..], &["help"], &["verify", "--help"], &["token", "verify", "--help"]] {
            let Ok(Command::Print(text)) = parsed(args) else { panic!("{args:?}") };
            assert!(text.contains("Usage: ztctl"), "{args:?}: {text}");
        }
        let Ok(Command::Print(top)) = parsed(&["--help"]) else { panic!() };
        for sub in ["verify", "inventory", "package", "check", "token", "completions", "Exit status"] {
            assert!(top.contains(sub), "{sub}: {top}");
        }
        let Ok(Command::Print(version)) = parsed(&["--version"]) else { panic!() };
        assert_eq!(version.trim(), format!("ztctl {}", env!("CARGO_PKG_VERSION")));
        let Ok(Command::Completions(script)) = parsed(&["completions", "bash"]) else { panic!() };
        assert!(script.contains("ztctl") && script.contains("--draft-policy"), "{script}");
    }

    #[test]
    fn refused_command_lines() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "missing subcommand"),
            (&["frobnicate"], "unrecognized subcommand"),
            (&["--mid-chain", "verify"], "unexpected argument '--mid-chain'"),
            (&["verify"], "required arguments were not provided"),
            (&["verify", "--mid-chain"], "required arguments were not provided"),
            (&["verify", "--bogus", "a"], "unexpected argument '--bogus'"),
            (&["verify", "--draft-policy", "o.json", "a"], "unexpected argument '--draft-policy'"),
            (&["inventory", "a", "--draft-policy"], "a value is required for '--draft-policy"),
            (&["inventory", "a", "--draft-policy", "-"], "needs a file name"),
            (&["inventory", "a", "--draft-policy=x", "--draft-policy=y"], "cannot be used multiple times"),
            (&["verify", "--key", "k1", "--key=k2", "a"], "cannot be used multiple times"),
            (&["verify", "a", "--key"], "a value is required for '--key"),
            (&["verify", "--checkpoints", "-", "-"], "more than once"),
            (&["inventory", "--checkpoints", "c", "a"], "unexpected argument '--checkpoints'"),
            (&["verify", "-", "-"], "more than once"),
            (&["package", "--out", "o"], "--wasm-dir <DIR>"),
            (&["package", "--wasm-dir", "w"], "--out <DIR>"),
            (&["package", "--wasm-dir", "w", "--out"], "a value is required for '--out"),
            (&["package", "--wasm-dir", "w", "--wasm-dir", "x", "--out", "o"], "cannot be used multiple times"),
            (&["package", "--wasm-dir", "w", "--out", "o", "--version", "1.0+build"], "not a valid image tag"),
            (&["package", "--wasm-dir", "w", "--out", "o", "--version", ".1"], "not a valid image tag"),
            (&["package", "--wasm-dir", "w", "--out", "o", "--mid-chain"], "unexpected argument '--mid-chain'"),
            (&["package", "--wasm-dir", "w", "--out", "o", "extra"], "unexpected argument 'extra'"),
            (&["check"], "required arguments were not provided"),
            (&["check", "waf", "x.json"], "unknown FILTER \"waf\""),
            (&["check", "authz"], "needs at least one FILE"),
            (&["token"], "token"),
            (&["token", "forge"], "unrecognized subcommand 'forge'"),
            (&["token", "mint", "--alg", "ES256", "--issuer", "i"], "--key <KEYFILE>"),
            (&["token", "mint", "--key", "k", "--alg", "ES256", "--issuer", "i", "t"], "unexpected argument 't'"),
            (&["token", "mint", "--key", "k", "--key", "k2"], "cannot be used multiple times"),
            (&["token", "mint", "--key", "k", "--alg", "ES256", "--issuer", "i", "--lifetime", "5m"], "'--lifetime"),
            (&["token", "verify", "--issuer", "i", "--subject", "s", "-"], "unexpected argument '--subject'"),
            (&["token", "verify", "--claim", "a=b", "-"], "unexpected argument '--claim'"),
            (&["token", "verify", "--jwks", "j"], "<TOKEN|->"),
            (&["token", "verify", "--config", "c", "--issuer", "i", "--jwks", "j", "-"], "cannot be used with"),
            (&["token", "inspect", "a", "b"], "unexpected argument 'b'"),
            (&["token", "inspect", "--at"], "unexpected argument '--at'"),
            (&["completions", "tcsh"], "invalid value 'tcsh'"),
        ];
        for (args, want) in cases {
            match parsed(args) {
                Err(CliError::Usage(message)) => assert!(message.contains(want), "{args:?}: {message}"),
                other => panic!("{args:?}: {other:?}"),
            }
        }
    }
}
