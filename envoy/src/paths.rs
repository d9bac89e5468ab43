//! Where the bed finds the workspace, the compiled modules, Envoy and the config templates.

use std::path::{Path, PathBuf};

use crate::BedError;

/// The workspace root (this crate lives in `<root>/envoy`).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Runs the operator tool (`cargo run -p ztctl`) from the workspace root: whether it exited 0,
/// and what it printed on both outputs. For the tests that check what the tool says of what
/// Envoy wrote or loaded.
pub fn ztctl(args: &[&str]) -> (bool, String) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = std::process::Command::new(cargo)
        .current_dir(workspace_root())
        .args(["run", "-q", "-p", "ztctl", "--"])
        .args(args)
        .output();
    match output {
        Ok(output) => (
            output.status.success(),
            format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)),
        ),
        Err(error) => (false, format!("cannot run cargo: {error}")),
    }
}

/// The directory of the compiled release modules: `ZT_WASM_DIR` if set (builds with another
/// `CARGO_TARGET_DIR`), else `<root>/target/wasm`, where `make build` leaves them after wasm-opt.
pub fn wasm_dir() -> PathBuf {
    match std::env::var_os("ZT_WASM_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join("target/wasm"),
    }
}

/// Envoy from the project's virtualenv (`ZT_ENVOY` overrides it).
pub fn envoy_binary() -> Result<PathBuf, BedError> {
    let path = match std::env::var_os("ZT_ENVOY") {
        Some(bin) if !bin.is_empty() => PathBuf::from(bin),
        _ => workspace_root().join(".venv/bin/envoy"),
    };
    if path.is_file() { Ok(path) } else { Err(BedError::Missing { path, hint: "install Envoy first: make envoy" }) }
}

/// `envoy/configs`, where every shipped Envoy configuration template lives.
pub fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("configs")
}

/// The file names of every template in `envoy/configs`, sorted.
pub fn shipped_configs() -> Result<Vec<String>, BedError> {
    let dir = configs_dir();
    let entries = std::fs::read_dir(&dir).map_err(BedError::io(format!("read {}", dir.display())))?;
    let mut names: Vec<String> = entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".yaml"))
        .collect();
    names.sort();
    Ok(names)
}
