//! Finding and compiling the filter modules. Compilation is the slow part (Cranelift on a
//! module of about a megabyte), so each file is compiled once per test process and shared;
//! everything a test can observe (instances, host state) is per test.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use proxy_wasm_host::abi::v0_2_1::Host;
use proxy_wasm_host::{Engine, Module};

use crate::HarnessError;

/// The directory `make build` leaves the modules in (after wasm-opt): `ZT_WASM_DIR`, else the
/// workspace's `target/wasm`.
pub fn wasm_dir() -> PathBuf {
    std::env::var_os("ZT_WASM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target").join("wasm"))
}

/// The path of a module by its file stem (`zt_jwt`, `fixture_abi_probe`).
pub fn module_path(stem: &str) -> PathBuf {
    wasm_dir().join(format!("{stem}.wasm"))
}

struct Compiled {
    engine: Engine,
    host: Host,
    modules: Mutex<HashMap<PathBuf, Module>>,
}

fn compiled() -> Result<&'static Compiled, HarnessError> {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    if let Some(compiled) = COMPILED.get() {
        return Ok(compiled);
    }
    let engine = Engine::new().map_err(|e| HarnessError::Runtime(e.to_string()))?;
    let host = Host::new(&engine).map_err(|e| HarnessError::Runtime(e.to_string()))?;
    Ok(COMPILED.get_or_init(|| Compiled { engine, host, modules: Mutex::new(HashMap::new()) }))
}

/// The linked host and the compiled module for `stem`.
pub fn load(stem: &str) -> Result<(Host, Module), HarnessError> {
    let compiled = compiled()?;
    let path = module_path(stem);
    let mut modules = compiled.modules.lock().map_err(|_| HarnessError::Runtime("module cache poisoned".into()))?;
    if let Some(module) = modules.get(&path) {
        return Ok((compiled.host.clone(), module.clone()));
    }
    let bytes = std::fs::read(&path).map_err(|_| HarnessError::ModuleMissing(path.clone()))?;
    let module = Module::new(&compiled.engine, &bytes).map_err(|e| HarnessError::Runtime(e.to_string()))?;
    modules.insert(path, module.clone());
    Ok((compiled.host.clone(), module))
}
