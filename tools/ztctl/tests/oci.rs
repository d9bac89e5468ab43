//! `ztctl package` as `make oci` runs it: the built binary on small fake modules, the image
//! layouts it writes read back byte by byte (solo-io `spec-compat.md` and `spec.md`, as Istio's
//! `pkg/wasm/imagefetcher.go` reads them), two builds compared, and every image pushed to a real
//! registry (Debian's `docker-registry`) with skopeo and pulled back.

// Test code: a panic is a failed test (the workspace denies these in shipped code only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::registry::{Registry, skopeo};
use common::{Run, scratch};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const FILTERS: [(&str, &str); 5] = [
    ("zt-jwt", "zt_jwt.wasm"),
    ("zt-authz", "zt_authz.wasm"),
    ("zt-ratelimit", "zt_ratelimit.wasm"),
    ("zt-audit", "zt_audit.wasm"),
    ("zt-suite", "zt_suite.wasm"),
];
const VERSION: &str = "1.2.3";

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A fake module: the Wasm header, then `size` bytes of a pattern (some repetition, like code).
fn fake_module(seed: u32, size: usize) -> Vec<u8> {
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    for i in 0..size {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        module.push(if i % 3 == 0 { (state >> 16) as u8 } else { (i % 61) as u8 });
    }
    module
}

/// Writes the five fake modules into `dir`; returns them by filter name.
fn fake_wasm_dir(dir: &Path) -> BTreeMap<&'static str, Vec<u8>> {
    std::fs::create_dir_all(dir).unwrap();
    FILTERS
        .iter()
        .enumerate()
        .map(|(i, (name, file))| {
            let module = fake_module(i as u32, 5_000 + 20_000 * i);
            std::fs::write(dir.join(file), &module).unwrap();
            (*name, module)
        })
        .collect()
}

/// Runs `ztctl package` with `SOURCE_DATE_EPOCH` set to `epoch` (or unset).
fn package(wasm_dir: &Path, out: &Path, extra: &[&str], epoch: Option<&str>) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ztctl"));
    command.args(["package", "--wasm-dir", wasm_dir.to_str().unwrap(), "--out", out.to_str().unwrap()]).args(extra);
    match epoch {
        Some(epoch) => command.env("SOURCE_DATE_EPOCH", epoch),
        None => command.env_remove("SOURCE_DATE_EPOCH"),
    };
    let output = command.output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn package_ok(wasm_dir: &Path, out: &Path, epoch: Option<&str>) -> Run {
    let run = package(wasm_dir, out, &["--version", VERSION], epoch);
    assert_eq!(run.code, 0, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    run
}

/// An image layout read back: its index, manifest, config and blobs, every blob checked
/// against its digest and every descriptor's size against its blob.
struct Layout {
    dir: PathBuf,
    index: Value,
    manifest_bytes: Vec<u8>,
    manifest: Value,
    config_bytes: Vec<u8>,
    layers: Vec<(Value, Vec<u8>)>,
}

impl Layout {
    fn read(dir: &Path, tag: &str) -> Layout {
        let oci_layout: Value = serde_json::from_slice(&std::fs::read(dir.join("oci-layout")).unwrap()).unwrap();
        assert_eq!(oci_layout, json!({"imageLayoutVersion": "1.0.0"}));
        let index: Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        assert_eq!(index["schemaVersion"], 2);
        let manifests = index["manifests"].as_array().unwrap();
        let entry = manifests
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .unwrap_or_else(|| panic!("no manifest tagged {tag} in {index}"));
        assert_eq!(entry["mediaType"], "application/vnd.oci.image.manifest.v1+json");
        let manifest_bytes = blob(dir, entry);
        let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
        let config_bytes = blob(dir, &manifest["config"]);
        let layers = manifest["layers"].as_array().unwrap().iter().map(|d| (d.clone(), blob(dir, d))).collect();
        Layout { dir: dir.to_owned(), index, manifest_bytes, manifest, config_bytes, layers }
    }

    fn manifest_digest(&self) -> String {
        format!("sha256:{}", sha256(&self.manifest_bytes))
    }
}

/// The blob a descriptor names, checked against its digest and size.
fn blob(dir: &Path, descriptor: &Value) -> Vec<u8> {
    let digest = descriptor["digest"].as_str().unwrap();
    let hex = digest.strip_prefix("sha256:").unwrap();
    let bytes = std::fs::read(dir.join("blobs/sha256").join(hex)).unwrap();
    assert_eq!(sha256(&bytes), hex, "blob {digest} does not hash to its name");
    assert_eq!(descriptor["size"].as_u64().unwrap(), bytes.len() as u64, "size of {digest}");
    bytes
}

/// The files of a tar+gzip layer, by path.
fn untar_gz(layer: &[u8]) -> (Vec<u8>, BTreeMap<String, Vec<u8>>) {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(layer).read_to_end(&mut tar).unwrap();
    let mut files = BTreeMap::new();
    let mut archive = tar::Archive::new(tar.as_slice());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_str().unwrap().to_owned();
        let header = entry.header();
        assert_eq!(header.entry_type(), tar::EntryType::Regular, "{path}");
        assert_eq!(
            (header.mode().unwrap(), header.uid().unwrap(), header.gid().unwrap(), header.mtime().unwrap()),
            (0o644, 0, 0, 0)
        );
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        files.insert(path, content);
    }
    (tar, files)
}

/// Checks a compat image against spec-compat.md and the module it must carry.
fn assert_compat(layout: &Layout, module: &[u8], created: &str) {
    let m = &layout.manifest;
    assert_eq!(m["schemaVersion"], 2);
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(m["annotations"]["module.wasm.image/variant"], "compat", "{m}");
    assert_eq!(m["config"]["mediaType"], "application/vnd.oci.image.config.v1+json");
    assert_eq!(layout.layers.len(), 1, "exactly one layer: {m}");
    let (descriptor, layer) = &layout.layers[0];
    assert_eq!(descriptor["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
    let (tar, files) = untar_gz(layer);
    assert_eq!(files.keys().collect::<Vec<_>>(), ["plugin.wasm"], "the layer holds plugin.wasm only");
    assert!(files["plugin.wasm"] == module, "plugin.wasm is not the module's exact bytes");
    let config: Value = serde_json::from_slice(&layout.config_bytes).unwrap();
    assert_eq!(
        config,
        json!({"created": created, "architecture": "wasm", "os": "wasip1",
               "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", sha256(&tar))]}})
    );
}

/// Checks an oci image against spec.md and Istio's `extractOCIArtifactImage` (two layers, one
/// of them the raw module).
fn assert_oci(layout: &Layout, name: &str, module: &[u8]) {
    let m = &layout.manifest;
    assert_eq!(m["schemaVersion"], 2);
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert!(m["annotations"].get("module.wasm.image/variant").is_none(), "{m}");
    assert_eq!(m["annotations"]["module.wasm.runtime/type"], "envoy_proxy");
    assert_eq!(m["annotations"]["module.wasm.runtime/abi_version"], "proxy_abi_version_0_2_1");
    assert_eq!(m["config"]["mediaType"], "application/vnd.module.wasm.config.v1+json");
    let config: Value = serde_json::from_slice(&layout.config_bytes).unwrap();
    assert_eq!(
        config,
        json!({"type": "envoy_proxy", "abiVersions": ["proxy_abi_version_0_2_1"], "config": {"rootIds": [name]}})
    );
    let media: Vec<&str> = layout.layers.iter().map(|(d, _)| d["mediaType"].as_str().unwrap()).collect();
    assert_eq!(
        media,
        ["application/vnd.module.wasm.config.v1+json", "application/vnd.module.wasm.content.layer.v1+wasm"]
    );
    assert_eq!(layout.layers[0].0["digest"], m["config"]["digest"], "the first layer is the runtime config");
    assert_eq!(layout.layers[0].0["annotations"]["org.opencontainers.image.title"], "runtime-config.json");
    assert_eq!(layout.layers[1].0["annotations"]["org.opencontainers.image.title"], "filter.wasm");
    assert!(layout.layers[1].1 == module, "the wasm layer is not the module's raw bytes");
    assert_eq!(layout.layers[1].0["digest"], format!("sha256:{}", sha256(module)));
}

/// Every file under `dir`, by relative path.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(path.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// The printed table: image, variant → (manifest digest, layer bytes, module SHA-256).
fn printed(stdout: &str) -> BTreeMap<(String, String), (String, u64, String)> {
    let mut lines = stdout.lines();
    assert!(lines.next().unwrap().starts_with("IMAGE"), "{stdout}");
    lines
        .map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(cols.len(), 5, "{line}");
            (
                (cols[0].to_owned(), cols[1].to_owned()),
                (cols[2].to_owned(), cols[3].parse().unwrap(), cols[4].to_owned()),
            )
        })
        .collect()
}

#[test]
fn both_variants_of_every_module_follow_the_specs() {
    let dir = scratch("oci-both-variants");
    let modules = fake_wasm_dir(&dir.join("wasm"));
    let out = dir.join("out");
    let run = package_ok(&dir.join("wasm"), &out, None);
    let table = printed(&run.stdout);
    assert_eq!(table.len(), 10, "{}", run.stdout);
    assert!(run.stderr.contains("wrote 10 image layout(s)"), "{}", run.stderr);
    for (name, module) in &modules {
        let compat = Layout::read(&out.join(format!("{name}-compat")), VERSION);
        assert_compat(&compat, module, "1970-01-01T00:00:00Z");
        let oci = Layout::read(&out.join(format!("{name}-oci")), VERSION);
        assert_oci(&oci, name, module);
        for (variant, layout) in [("compat", &compat), ("oci", &oci)] {
            let (digest, layer_bytes, module_sha) = &table[&(format!("{name}:{VERSION}"), variant.to_owned())];
            assert_eq!(*digest, layout.manifest_digest(), "{name} {variant}: printed manifest digest");
            let module_layer = layout.layers.last().unwrap();
            assert_eq!(*layer_bytes, module_layer.1.len() as u64, "{name} {variant}: printed layer size");
            assert_eq!(*module_sha, sha256(module), "{name} {variant}: printed module SHA-256");
            // One manifest in the index, and no blob that nothing names.
            assert_eq!(layout.index["manifests"].as_array().unwrap().len(), 1);
            let mut named: Vec<String> =
                layout.layers.iter().map(|(d, _)| d["digest"].as_str().unwrap().to_owned()).collect();
            named.push(layout.manifest["config"]["digest"].as_str().unwrap().to_owned());
            named.push(layout.manifest_digest());
            named.sort();
            named.dedup();
            let mut stored: Vec<String> = std::fs::read_dir(layout.dir.join("blobs/sha256"))
                .unwrap()
                .map(|e| format!("sha256:{}", e.unwrap().file_name().to_str().unwrap()))
                .collect();
            stored.sort();
            assert_eq!(stored, named, "{name} {variant}");
        }
    }
}

#[test]
fn two_builds_give_the_same_bytes_and_the_epoch_only_changes_the_compat_config() {
    let dir = scratch("oci-reproducible");
    fake_wasm_dir(&dir.join("wasm"));
    let (first, second, third) = (dir.join("first"), dir.join("second"), dir.join("epoch"));
    let runs = [package_ok(&dir.join("wasm"), &first, None), package_ok(&dir.join("wasm"), &second, None)];
    assert_eq!(runs[0].stdout, runs[1].stdout);
    assert_eq!(tree(&first), tree(&second), "two builds differ");
    // A rebuild into the same directory replaces the layouts and gives the same bytes again.
    package_ok(&dir.join("wasm"), &first, None);
    assert_eq!(tree(&first), tree(&second));

    let epoch = package_ok(&dir.join("wasm"), &third, Some("1795470991"));
    let (before, after) = (printed(&runs[0].stdout), printed(&epoch.stdout));
    for ((image, variant), (digest, size, module_sha)) in &before {
        let (digest2, size2, module_sha2) = &after[&(image.clone(), variant.clone())];
        assert_eq!((size, module_sha), (size2, module_sha2));
        assert_eq!(variant == "oci", digest == digest2, "{image} {variant}: only the compat config has a time");
    }
    let layout = Layout::read(&third.join("zt-jwt-compat"), VERSION);
    let config: Value = serde_json::from_slice(&layout.config_bytes).unwrap();
    assert_eq!(config["created"], "2026-11-23T21:56:31Z");
}

#[test]
fn the_version_flag_sets_the_tag_and_a_partial_build_packages_what_is_there() {
    let dir = scratch("oci-partial");
    let wasm = dir.join("wasm");
    let modules = fake_wasm_dir(&wasm);
    std::fs::remove_file(wasm.join("zt_audit.wasm")).unwrap();
    std::fs::remove_file(wasm.join("zt_ratelimit.wasm")).unwrap();
    let run = package(&wasm, &dir.join("out"), &["--version=2.0.0-rc.1"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("zt_audit.wasm not found: no image for zt-audit"), "{}", run.stderr);
    assert_eq!(printed(&run.stdout).len(), 3 * 2, "zt-jwt, zt-authz and zt-suite, both variants");
    assert_oci(&Layout::read(&dir.join("out/zt-authz-oci"), "2.0.0-rc.1"), "zt-authz", &modules["zt-authz"]);
    assert!(!dir.join("out/zt-audit-compat").exists());

    // Without --version, the tag is the workspace version.
    let run = package(&wasm, &dir.join("default"), &[], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    Layout::read(&dir.join("default/zt-jwt-compat"), env!("CARGO_PKG_VERSION"));
}

#[test]
fn refusals() {
    let dir = scratch("oci-refusals");
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let run = package(&empty, &dir.join("out"), &[], None);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no filter module") && run.stderr.contains("make build"), "{}", run.stderr);

    let not_wasm = dir.join("not-wasm");
    fake_wasm_dir(&not_wasm);
    std::fs::write(not_wasm.join("zt_jwt.wasm"), b"#!/bin/sh\n").unwrap();
    let run = package(&not_wasm, &dir.join("out"), &[], None);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("zt_jwt.wasm is not a Wasm binary module"), "{}", run.stderr);

    // An output directory that is not an image layout is never removed.
    let wasm = dir.join("wasm");
    fake_wasm_dir(&wasm);
    let precious = dir.join("out2/zt-jwt-compat");
    std::fs::create_dir_all(&precious).unwrap();
    std::fs::write(precious.join("notes.txt"), "keep me").unwrap();
    let run = package(&wasm, &dir.join("out2"), &[], None);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("is not an OCI image layout: not overwriting it"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(precious.join("notes.txt")).unwrap(), "keep me");

    let run = package(&wasm, &dir.join("out3"), &["--version", "1.0.0+build.5"], None);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("not a valid image tag"), "{}", run.stderr);
    let run = package(&wasm, &dir.join("out3"), &[], Some("yesterday"));
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("SOURCE_DATE_EPOCH"), "{}", run.stderr);
}

/// Every image through a real registry: pushed with skopeo as `make publish` does, read back
/// raw (the registry keeps the exact manifest bytes, so the digest Istio compares is the one
/// `ztctl package` printed), pulled back into a layout and checked as built, and the oci
/// variant's module fetched as a plain blob URL, as Envoy's `code.remote` would.
#[test]
fn a_real_registry_serves_the_images_as_built() {
    let dir = scratch("oci-registry");
    let modules = fake_wasm_dir(&dir.join("wasm"));
    let out = dir.join("out");
    package_ok(&dir.join("wasm"), &out, None);
    let registry = Registry::start(&dir.join("registry"));

    for (name, module) in &modules {
        for variant in ["compat", "oci"] {
            let built = Layout::read(&out.join(format!("{name}-{variant}")), VERSION);
            let tag = if variant == "oci" { format!("{VERSION}-oci") } else { VERSION.to_owned() };
            let source = format!("oci:{}:{VERSION}", built.dir.display());
            let remote = registry.reference(name, &tag);
            skopeo(&["copy", "-q", "--preserve-digests", "--dest-tls-verify=false", &source, &remote]);

            let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &remote]).stdout;
            assert!(raw == built.manifest_bytes, "{name} {variant}: the registry changed the manifest");
            let (status, head, body) = registry.get(
                &format!("/v2/{name}/manifests/{tag}"),
                &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
            );
            assert_eq!(status, 200, "{head}");
            assert!(body == built.manifest_bytes);
            assert!(
                head.to_ascii_lowercase().contains(&format!("docker-content-digest: {}", built.manifest_digest())),
                "{head}"
            );

            let pulled_dir = dir.join(format!("pulled/{name}-{variant}"));
            std::fs::create_dir_all(dir.join("pulled")).unwrap();
            let pulled_ref = format!("oci:{}:{VERSION}", pulled_dir.display());
            skopeo(&["copy", "-q", "--preserve-digests", "--src-tls-verify=false", &remote, &pulled_ref]);
            let pulled = Layout::read(&pulled_dir, VERSION);
            assert_eq!(pulled.manifest_digest(), built.manifest_digest(), "{name} {variant}");
            assert!(pulled.config_bytes == built.config_bytes);
            assert_eq!(pulled.layers, built.layers);
            if variant == "compat" {
                assert_compat(&pulled, module, "1970-01-01T00:00:00Z");
            } else {
                assert_oci(&pulled, name, module);
                let digest = built.layers[1].0["digest"].as_str().unwrap();
                let url = registry.blob_url(name, digest);
                let path = url.strip_prefix(&format!("http://{}", registry.host())).unwrap();
                let (status, head, body) = registry.get(path, &[]);
                assert_eq!(status, 200, "{url}: {head}");
                assert!(body == *module, "{url} does not serve the module's bytes");
                assert_eq!(sha256(&body), sha256(module));
            }
        }
    }
}
