//! `ztctl package`: a filter module as the two kinds of OCI image that Istio's `WasmPlugin`
//! (`pkg/wasm/imagefetcher.go`) and the solo-io Wasm image spec (`spec/spec.md`, `spec-compat.md`)
//! define, built in memory from the module's bytes alone (`layout` writes them out). Never reads
//! the clock or the machine: the same module and version give the same digests.
//!
//! - **compat** (the default): a plain OCI image. One `application/vnd.oci.image.layer.v1.tar+gzip`
//!   layer whose tar holds `plugin.wasm` only; an `application/vnd.oci.image.config.v1+json`
//!   config (`wasip1`/`wasm`, `rootfs.diff_ids` the SHA-256 of the uncompressed tar); the
//!   manifest annotation `module.wasm.image/variant=compat`. Any registry and tool takes it.
//! - **oci**: the spec's artifact media types. The config is the runtime config
//!   (`application/vnd.module.wasm.config.v1+json`); the layers are that same config and the raw
//!   module (`application/vnd.module.wasm.content.layer.v1+wasm`). Two layers, as `wasme push`
//!   writes them, because Istio refuses any other count ("number of layers must be 2").

pub mod archive;
pub mod layout;

use std::collections::HashMap;

use oci_spec::image::{
    Arch, Descriptor, DescriptorBuilder, ImageConfigurationBuilder, ImageIndexBuilder, ImageManifestBuilder, MediaType,
    Os, RootFsBuilder,
};
use serde::Serialize;

use crate::error::CliError;
use archive::{canonical_json, digest_of, gzip, plugin_tar, sha256_hex};

/// The shipped filters: image name, the module `make build` leaves in `target/wasm`, and the root
/// id the shipped Envoy configurations give it (`envoy/configs/zero-trust.yaml`,
/// `envoy/configs/zero-trust-suite.yaml`).
pub const FILTERS: [Filter; 5] = [
    Filter { name: "zt-jwt", file: "zt_jwt.wasm" },
    Filter { name: "zt-authz", file: "zt_authz.wasm" },
    Filter { name: "zt-ratelimit", file: "zt_ratelimit.wasm" },
    Filter { name: "zt-audit", file: "zt_audit.wasm" },
    Filter { name: "zt-suite", file: "zt_suite.wasm" },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filter {
    /// The image (repository) name, also the filter's `root_id`.
    pub name: &'static str,
    pub file: &'static str,
}

/// The Wasm binary header: magic `\0asm`, version 1 (Wasm core spec §5.5.16). Istio checks the
/// same before it hands a module to Envoy (`isValidWasmBinary`).
pub const WASM_HEADER: &[u8] = b"\0asm\x01\0\0\0";

/// The proxy-wasm ABI every module exports (`proxy_abi_version_0_2_1`), for the runtime config.
pub const ABI_VERSION: &str = "proxy_abi_version_0_2_1";

pub const WASM_CONFIG: &str = "application/vnd.module.wasm.config.v1+json";
pub const WASM_LAYER: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
/// spec-compat.md "Annotation": tells a compat image from an oci one at a glance.
pub const VARIANT_ANNOTATION: &str = "module.wasm.image/variant";
/// The tag of a manifest in an image layout's `index.json` (image-spec annotations.md).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
const TITLE: &str = "org.opencontainers.image.title";
const VERSION: &str = "org.opencontainers.image.version";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Compat,
    Oci,
}

impl Variant {
    pub const ALL: [Variant; 2] = [Variant::Compat, Variant::Oci];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Compat => "compat",
            Self::Oci => "oci",
        }
    }
}

/// What goes into an image.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub filter: Filter,
    pub module: &'a [u8],
    /// The tag (`org.opencontainers.image.ref.name` in `index.json`).
    pub version: &'a str,
    /// RFC 3339, from `archive::created`.
    pub created: &'a str,
}

/// A content-addressed blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// `sha256:<hex>`
    pub digest: String,
    pub bytes: Vec<u8>,
}

impl Blob {
    fn new(bytes: Vec<u8>) -> Self {
        Self { digest: digest_of(&bytes), bytes }
    }
}

/// One image, ready to be written as an image layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub variant: Variant,
    pub manifest: Blob,
    /// The config and the layers, each once, in digest order.
    pub blobs: Vec<Blob>,
    /// The layout's `index.json`.
    pub index: Vec<u8>,
    /// The layer that carries the module (compat: the tar+gzip; oci: the raw module).
    pub module_layer: String,
    pub module_layer_size: u64,
    /// SHA-256 of the module's bytes (hex): the `sha256` of an `http(s)://` WasmPlugin URL or of
    /// Envoy's `vm_config.code.remote`.
    pub module_sha256: String,
}

/// Builds one variant of one module.
pub fn build(variant: Variant, source: &Source<'_>) -> Result<Image, CliError> {
    if !source.module.starts_with(WASM_HEADER) {
        return Err(CliError::ImageInvalid(format!(
            "{} is not a Wasm binary module (it does not start with \\0asm, version 1)",
            source.filter.file
        )));
    }
    let (config, layers, module_layer, annotations) = match variant {
        Variant::Compat => compat(source)?,
        Variant::Oci => oci(source)?,
    };
    let mut annotations = annotations;
    annotations.insert(TITLE.to_owned(), source.filter.name.to_owned());
    annotations.insert(VERSION.to_owned(), source.version.to_owned());
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config.0.clone())
        .layers(layers.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>())
        .annotations(annotations)
        .build()
        .map_err(spec_error)?;
    let manifest = Blob::new(canonical_json(&manifest)?);
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![descriptor(MediaType::ImageManifest, &manifest, &[(REF_NAME, source.version)])?])
        .build()
        .map_err(spec_error)?;
    let mut blobs: Vec<Blob> = std::iter::once(config.1).chain(layers.into_iter().map(|(_, b)| b)).collect();
    blobs.sort_by(|a, b| a.digest.cmp(&b.digest));
    blobs.dedup_by(|a, b| a.digest == b.digest);
    Ok(Image {
        variant,
        manifest,
        blobs,
        index: canonical_json(&index)?,
        module_layer: module_layer.digest,
        module_layer_size: module_layer.bytes.len() as u64,
        module_sha256: sha256_hex(source.module),
    })
}

type Parts = ((Descriptor, Blob), Vec<(Descriptor, Blob)>, Blob, HashMap<String, String>);

/// spec-compat.md: one tar+gzip layer holding `plugin.wasm`, a standard image config.
fn compat(source: &Source<'_>) -> Result<Parts, CliError> {
    let tar = plugin_tar(source.module)?;
    let layer = Blob::new(gzip(&tar)?);
    // image-spec config.md: `architecture` and `os` take GOARCH/GOOS values; Go names the
    // target the modules are built for (wasm32-wasip1) `wasip1`/`wasm`. The diff_id is the
    // digest of the layer *uncompressed* (config.md "Layer DiffID").
    let config = ImageConfigurationBuilder::default()
        .created(source.created.to_owned())
        .architecture(Arch::Wasm)
        .os(Os::Other("wasip1".to_owned()))
        .rootfs(
            RootFsBuilder::default()
                .typ("layers".to_owned())
                .diff_ids(vec![digest_of(&tar)])
                .build()
                .map_err(spec_error)?,
        )
        .build()
        .map_err(spec_error)?;
    let config = Blob::new(canonical_json(&config)?);
    let config_descriptor = descriptor(MediaType::ImageConfig, &config, &[])?;
    let layer_descriptor = descriptor(MediaType::ImageLayerGzip, &layer, &[])?;
    let annotations = HashMap::from([(VARIANT_ANNOTATION.to_owned(), Variant::Compat.as_str().to_owned())]);
    Ok(((config_descriptor, config), vec![(layer_descriptor, layer.clone())], layer, annotations))
}

/// The runtime config of spec.md "Envoy WASM Filter Specification", with the JSON names of
/// wasme's `runtime.proto` (`abiVersions`, `rootIds`), which `wasme pull` parses strictly: no
/// other member (no `created`, no `author`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RuntimeConfig<'a> {
    r#type: &'a str,
    abi_versions: [&'a str; 1],
    config: EnvoyConfig<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EnvoyConfig<'a> {
    root_ids: [&'a str; 1],
}

/// spec.md: the runtime config as config and as first layer, the raw module as second, titled
/// as `wasme push` titles them; the manifest annotations `wasme push` adds.
fn oci(source: &Source<'_>) -> Result<Parts, CliError> {
    let runtime = RuntimeConfig {
        r#type: "envoy_proxy",
        abi_versions: [ABI_VERSION],
        config: EnvoyConfig { root_ids: [source.filter.name] },
    };
    let config = Blob::new(canonical_json(&runtime)?);
    let module = Blob::new(source.module.to_vec());
    let config_media = MediaType::Other(WASM_CONFIG.to_owned());
    let layers = vec![
        (descriptor(config_media.clone(), &config, &[(TITLE, "runtime-config.json")])?, config.clone()),
        (descriptor(MediaType::Other(WASM_LAYER.to_owned()), &module, &[(TITLE, "filter.wasm")])?, module.clone()),
    ];
    let config_descriptor = descriptor(config_media, &config, &[])?;
    let annotations = HashMap::from([
        ("module.wasm.runtime/type".to_owned(), "envoy_proxy".to_owned()),
        ("module.wasm.runtime/abi_version".to_owned(), ABI_VERSION.to_owned()),
    ]);
    Ok(((config_descriptor, config), layers, module, annotations))
}

fn descriptor(media_type: MediaType, blob: &Blob, annotations: &[(&str, &str)]) -> Result<Descriptor, CliError> {
    let digest: oci_spec::image::Digest = blob.digest.parse().map_err(spec_error)?;
    let builder = DescriptorBuilder::default().media_type(media_type).digest(digest).size(blob.bytes.len() as u64);
    let builder = if annotations.is_empty() {
        builder
    } else {
        builder
            .annotations(annotations.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<HashMap<_, _>>())
    };
    builder.build().map_err(spec_error)
}

fn spec_error(error: oci_spec::OciSpecError) -> CliError {
    CliError::ImageInvalid(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(module: &[u8]) -> Source<'_> {
        Source { filter: FILTERS[0], module, version: "0.1.0", created: "1970-01-01T00:00:00Z" }
    }

    #[test]
    fn oci_spec_names_the_media_types_the_wasm_image_spec_wants() {
        let cases = [
            (MediaType::ImageManifest, "application/vnd.oci.image.manifest.v1+json"),
            (MediaType::ImageIndex, "application/vnd.oci.image.index.v1+json"),
            (MediaType::ImageConfig, "application/vnd.oci.image.config.v1+json"),
            (MediaType::ImageLayerGzip, "application/vnd.oci.image.layer.v1.tar+gzip"),
        ];
        for (media_type, want) in cases {
            assert_eq!(media_type.to_string(), want);
        }
    }

    #[test]
    fn a_module_without_the_wasm_header_is_refused() {
        for module in [&b""[..], b"\0asm", b"\0asm\x02\0\0\0rest", b"MZ\x90\0"] {
            for variant in Variant::ALL {
                assert!(matches!(build(variant, &source(module)), Err(CliError::ImageInvalid(_))), "{module:?}");
            }
        }
    }

    #[test]
    fn each_variant_names_its_blobs_once_and_the_module_layer() {
        let module = b"\0asm\x01\0\0\0 module".to_vec();
        let compat = build(Variant::Compat, &source(&module)).unwrap();
        assert_eq!(compat.blobs.len(), 2, "config and layer");
        let oci = build(Variant::Oci, &source(&module)).unwrap();
        // The runtime config is both the config and the first layer: stored once.
        assert_eq!(oci.blobs.len(), 2, "runtime config and module");
        assert_eq!(oci.module_layer, format!("sha256:{}", oci.module_sha256));
        assert_eq!(oci.module_layer_size, module.len() as u64);
        assert_eq!(compat.module_sha256, oci.module_sha256);
        assert_ne!(compat.manifest.digest, oci.manifest.digest);
    }
}
