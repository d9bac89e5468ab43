//! The subcommands: read the inputs, call the module that decides, print. Standard output carries
//! the result (the verdict, the table); standard error the warnings and notes.

use std::io::Write;
use std::process::ExitCode;

use std::path::Path;

use crate::args::{Inputs, Package, check_tag};
use crate::caller::printable;
use crate::chain::{Verdict, Verifier};
use crate::check::Filter;
use crate::draft;
use crate::error::CliError;
use crate::inventory::Inventory;
use crate::manifest::PluginConfig;
use crate::oci::{self, FILTERS, Source, Variant, archive, layout};
use crate::scan::{Kind, scan_path};
use zt_core::audit::ChainKey;

/// `ztctl verify`: exit 0 when every chain holds, 1 at the first break, 3 when keyed records
/// could not be checked for want of the key.
pub fn verify(inputs: &Inputs, out: &mut dyn Write, err: &mut dyn Write) -> Result<ExitCode, CliError> {
    let mut verifier = Verifier::new(inputs.mid_chain, read_key(inputs.key.as_deref())?);
    // The collector's checkpoints first, so that each is matched as its record goes by.
    for path in &inputs.checkpoints {
        scan_path(path, &mut |found| {
            if found.kind == Kind::Checkpoint {
                verifier.feed(&found);
            }
        })?;
    }
    for path in &inputs.files {
        scan_path(path, &mut |found| verifier.feed(&found))?;
    }
    match verifier.finish() {
        Verdict::Intact(summary) => {
            line(out, &summary.to_string())?;
            if summary.records == 0 {
                line(err, "warning: no zt.audit.v1 records found in the input")?;
            }
            if summary.checkpoints_unchecked > 0 {
                let n = summary.checkpoints_unchecked;
                line(err, &format!("note: {n} checkpoint(s) name records before the input's start: not checked"))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Verdict::Broken(first_break) => {
            line(out, &format!("broken: {first_break}"))?;
            Ok(ExitCode::from(1))
        }
        Verdict::KeyRequired(first) => {
            line(out, &format!("not verified: {first}"))?;
            Ok(ExitCode::from(3))
        }
    }
}

/// The chain key from `--key FILE`. A bad key is an error (exit 2), never a silent unkeyed check.
fn read_key(path: Option<&str>) -> Result<Option<ChainKey>, CliError> {
    let Some(path) = path else { return Ok(None) };
    let secret = if path == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
            .map_err(|source| CliError::Unreadable { path: "standard input".to_owned(), source })?;
        bytes
    } else {
        std::fs::read(path).map_err(|source| CliError::Unreadable { path: path.to_owned(), source })?
    };
    ChainKey::from_secret(&secret).map(Some).map_err(|why| CliError::Usage(format!("--key {path}: {why}")))
}

/// `ztctl inventory`: the table, and the draft policy when asked for. Broken chains are a warning
/// here, not a failure: an inventory of a partial log is still worth having.
pub fn inventory(
    inputs: &Inputs,
    draft_policy: Option<&str>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitCode, CliError> {
    let mut verifier = Verifier::new(inputs.mid_chain, read_key(inputs.key.as_deref())?);
    let mut inventory = Inventory::default();
    for path in &inputs.files {
        scan_path(path, &mut |found| {
            verifier.feed(&found);
            inventory.add(&found);
        })?;
    }
    if let Some(first_break) = verifier.broken() {
        line(
            err,
            &format!(
                "warning: the audit chain is broken (see `ztctl verify`), counts may be incomplete: {first_break}"
            ),
        )?;
    }
    if inventory.unreadable > 0 {
        line(err, &format!("warning: {} malformed record(s) not counted", inventory.unreadable))?;
    }
    if inventory.other_outcomes > 0 {
        let n = inventory.other_outcomes;
        line(err, &format!("warning: {n} record(s) without a known outcome: in COUNT only"))?;
    }
    write(out, &inventory.table())?;
    let Some(path) = draft_policy else { return Ok(ExitCode::SUCCESS) };
    let draft = draft::build(inventory.rows())?;
    for note in &draft.notes {
        line(err, &format!("note: {note}"))?;
    }
    std::fs::write(path, draft.to_bytes()).map_err(|source| CliError::Unwritable { path: path.to_owned(), source })?;
    line(
        err,
        &format!(
            "wrote {path}: a draft zt-authz configuration, {} route rule(s), default deny, advisory (dry-run) mode; \
             review it, roll it out, then set \"advisory\": false",
            draft.route_rules
        ),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `ztctl package`: both variants of every filter module found, one line each on standard output;
/// what to give Istio and Envoy on standard error. A missing module is a warning (a partial
/// build), none at all an error.
pub fn package(
    package: &Package,
    source_date_epoch: Option<&str>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitCode, CliError> {
    let version = package.version.as_deref().unwrap_or(env!("CARGO_PKG_VERSION"));
    check_tag(version)?;
    let created = archive::created(source_date_epoch)?;
    let mut modules = Vec::new();
    for filter in FILTERS {
        let path = Path::new(&package.wasm_dir).join(filter.file);
        match std::fs::read(&path) {
            Ok(module) => modules.push((filter, module)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                line(err, &format!("warning: {} not found: no image for {}", path.display(), filter.name))?;
            }
            Err(source) => return Err(CliError::Unreadable { path: path.display().to_string(), source }),
        }
    }
    if modules.is_empty() {
        return Err(CliError::NoModules { dir: package.wasm_dir.clone() });
    }
    line(
        out,
        &format!("{:<22} {:<7} {:<71} {:>11}  MODULE SHA-256", "IMAGE", "VARIANT", "MANIFEST DIGEST", "LAYER BYTES"),
    )?;
    for (filter, module) in &modules {
        let source = Source { filter: *filter, module, version, created: &created };
        for variant in Variant::ALL {
            let image = oci::build(variant, &source)?;
            let dir = Path::new(&package.out).join(format!("{}-{}", filter.name, variant.as_str()));
            layout::write(&dir, &image)?;
            line(
                out,
                &format!(
                    "{:<22} {:<7} {:<71} {:>11}  {}",
                    format!("{}:{version}", filter.name),
                    variant.as_str(),
                    image.manifest.digest,
                    image.module_layer_size,
                    image.module_sha256
                ),
            )?;
        }
    }
    line(
        err,
        &format!(
            "wrote {} image layout(s) under {} (skopeo: oci:{}/<filter>-<variant>:{version}). \
             Istio WasmPlugin `sha256` with an oci:// url: the MANIFEST DIGEST's hex (the registry must keep it: \
             push with `skopeo copy --preserve-digests`); with an http(s):// url, and Envoy's `vm_config.code.remote`: \
             the MODULE SHA-256",
            modules.len() * Variant::ALL.len(),
            package.out,
            package.out
        ),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `ztctl check`: exit 0 when every configuration is valid, 1 when one is not (each reported).
pub fn check(filter: Option<&str>, files: &[String], out: &mut dyn Write) -> Result<ExitCode, CliError> {
    let filter = filter
        .map(|name| {
            Filter::parse(name).ok_or_else(|| {
                CliError::Usage(format!("unknown FILTER {name:?}: jwt, authz, ratelimit, audit or suite"))
            })
        })
        .transpose()?;
    let (mut all_valid, mut checked) = (true, 0);
    // The files given, then the policy files their Envoy configurations load by
    // `config_discovery`, each once.
    let mut queue: std::collections::VecDeque<(String, Option<String>)> =
        files.iter().map(|file| (file.clone(), None)).collect();
    let mut seen: Vec<String> = Vec::new();
    while let Some((file, loaded_by)) = queue.pop_front() {
        if seen.contains(&file) {
            continue;
        }
        seen.push(file.clone());
        let file = &file;
        let bytes = if file == "-" {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
                .map_err(|source| CliError::Unreadable { path: "standard input".to_owned(), source })?;
            bytes
        } else if let Some(loader) = &loaded_by {
            match std::fs::read(file) {
                Ok(bytes) => bytes,
                Err(error) => {
                    all_valid = false;
                    line(
                        out,
                        &format!(
                            "invalid: {loader} loads {file}, which cannot be read here ({error}); its path is \
                             relative to the directory Envoy starts in: run ztctl check from there"
                        ),
                    )?;
                    continue;
                }
            }
        } else {
            std::fs::read(file).map_err(|source| CliError::Unreadable { path: file.clone(), source })?
        };
        let configs = match filter {
            Some(filter) => vec![PluginConfig { place: String::new(), filter, json: bytes }],
            None => match deployment_configs(file, &bytes, out)? {
                Some((configs, discovered)) => {
                    queue.extend(discovered.into_iter().map(|path| (path, Some(file.clone()))));
                    configs
                }
                None => {
                    all_valid = false;
                    continue;
                }
            },
        };
        for PluginConfig { place, filter, json } in configs {
            checked += 1;
            let place = if place.is_empty() { String::new() } else { format!(" {place}") };
            match filter.check(&json) {
                Ok(unset) if unset.is_empty() => line(out, &format!("valid: {file}{place} ({})", filter.name()))?,
                Ok(unset) => line(
                    out,
                    &format!(
                        "valid: {file}{place} ({}); the secrets from {} are not set here: checked in form only",
                        filter.name(),
                        unset.join(", ")
                    ),
                )?,
                Err(error) => {
                    all_valid = false;
                    line(out, &format!("invalid: {file}{place} ({}): {error}", filter.name()))?;
                }
            }
        }
    }
    if checked == 0 && all_valid {
        // Deployment files without one plugin configuration of the suite: nothing was checked,
        // which must not read as a pass.
        all_valid = false;
        line(out, "invalid: no plugin configuration of the suite in the files given")?;
    }
    Ok(if all_valid { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The suite's plugin configurations in a deployment file (other Wasm plugins, and a file with
/// none, reported as skipped), and the files it loads filter configurations from
/// (`config_discovery` from a path, relative to the directory Envoy starts in, as here); `None`
/// (reported) when the file is not YAML or JSON.
type Deployment = (Vec<PluginConfig>, Vec<String>);

fn deployment_configs(file: &str, bytes: &[u8], out: &mut dyn Write) -> Result<Option<Deployment>, CliError> {
    let contents = std::str::from_utf8(bytes).map_err(|e| e.to_string()).and_then(crate::manifest::read);
    let contents = match contents {
        Ok(contents) => contents,
        Err(why) => {
            line(out, &format!("invalid: {file}: {why}"))?;
            return Ok(None);
        }
    };
    for other in &contents.others {
        line(out, &format!("skipped: {file} {other}: not one of the suite's filters"))?;
    }
    for discovered in &contents.discovered {
        line(out, &format!("following: {file} loads {discovered} (config_discovery)"))?;
    }
    if contents.configs.is_empty() && contents.discovered.is_empty() {
        line(out, &format!("skipped: {file}: no WasmPlugin or Envoy Wasm filter of the suite in it"))?;
    }
    Ok(Some((contents.configs, contents.discovered)))
}

/// One line; text from the log in it is shown with control characters escaped.
fn line(to: &mut dyn Write, text: &str) -> Result<(), CliError> {
    write(to, &format!("{}\n", printable(text)))
}

fn write(to: &mut dyn Write, text: &str) -> Result<(), CliError> {
    to.write_all(text.as_bytes())
        .and_then(|()| to.flush())
        .map_err(|source| CliError::Unwritable { path: "standard output or error".to_owned(), source })
}

/// `token mint|inspect|verify`: the token read from standard input for `-`.
pub fn token(command: &crate::args::Token, out: &mut dyn Write) -> Result<ExitCode, CliError> {
    use crate::args::Token;
    use crate::token::{Verdict, describe, inspect, mint, now, verify};
    let read = |token: &str| -> Result<String, CliError> {
        if token != "-" {
            return Ok(token.to_owned());
        }
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|source| CliError::Unreadable { path: "<stdin>".to_owned(), source })?;
        Ok(text.trim().to_owned())
    };
    let (text, code) = match command {
        Token::Mint(spec) => (format!("{}\n", mint(spec)?), ExitCode::SUCCESS),
        Token::Inspect(token) => (inspect(&read(token)?, now())?, ExitCode::SUCCESS),
        Token::Verify(spec) => {
            let verdict = verify(spec, &read(&spec.token)?, now())?;
            let code = if matches!(verdict, Verdict::Valid(_)) { ExitCode::SUCCESS } else { ExitCode::from(1) };
            (describe(&verdict, spec.at.unwrap_or_else(now)), code)
        }
    };
    line(out, text.trim_end())?;
    Ok(code)
}
