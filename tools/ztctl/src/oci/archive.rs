//! The byte-level pieces of an image, each a pure function of its input so that two builds of the
//! same module give the same digests: the compat layer's tar and gzip with every varying header
//! field fixed, SHA-256 digests, the `created` time, and JSON with sorted keys. Never touches
//! the file system.

use std::io::Write;

use flate2::{Compression, GzBuilder};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::error::CliError;

/// The one file of the compat layer, at the archive's root: the name Istio's image fetcher looks
/// for (`pkg/wasm/imagefetcher.go`, `wasmPluginFileName = "plugin.wasm"`, spec-compat.md "Layer").
pub const PLUGIN_FILE: &str = "plugin.wasm";

/// A tar holding `plugin.wasm` only. The header is POSIX ustar with mode 0644, uid and gid 0,
/// mtime 0 and no user or group name, so that nothing of the build machine or the time leaks in.
pub fn plugin_tar(module: &[u8]) -> Result<Vec<u8>, CliError> {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_path(PLUGIN_FILE).map_err(|e| invalid(format!("tar header: {e}")))?;
    header.set_size(module.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, module).map_err(|e| invalid(format!("tar: {e}")))?;
    // Writes the two zero blocks that end the archive.
    builder.into_inner().map_err(|e| invalid(format!("tar: {e}")))
}

/// Gzip (RFC 1952) with a fixed header: MTIME 0 ("no time stamp", §2.3.1), no FNAME, OS 255
/// ("unknown"), and a fixed level, so the compressed bytes depend on the input alone (and on
/// the miniz_oxide version Cargo.lock pins).
pub fn gzip(data: &[u8]) -> Result<Vec<u8>, CliError> {
    let mut encoder = GzBuilder::new().mtime(0).operating_system(255).write(Vec::new(), Compression::new(9));
    encoder.write_all(data).map_err(|e| invalid(format!("gzip: {e}")))?;
    encoder.finish().map_err(|e| invalid(format!("gzip: {e}")))
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// An OCI digest (`sha256:<hex>`, image-spec descriptor.md "Digests").
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// JSON with the keys of every object sorted and no white space: oci-spec keeps annotations in
/// a `HashMap`, whose order changes from run to run, and a digest covers the exact bytes.
pub fn canonical_json(value: &impl Serialize) -> Result<Vec<u8>, CliError> {
    let value = serde_json::to_value(value).map_err(|e| invalid(format!("JSON: {e}")))?;
    serde_json::to_vec(&sorted(value)).map_err(|e| invalid(format!("JSON: {e}")))
}

/// Rebuilds every object in key order (also right when serde_json keeps insertion order).
fn sorted(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<(String, serde_json::Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(items) => serde_json::Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// The image's creation time: `SOURCE_DATE_EPOCH` (reproducible-builds.org) when given, else the
/// Unix epoch, as RFC 3339 UTC (image-spec config.md `created`).
pub fn created(source_date_epoch: Option<&str>) -> Result<String, CliError> {
    let seconds = match source_date_epoch.map(str::trim) {
        None | Some("") => 0,
        Some(text) => text.parse::<i64>().ok().filter(|s| (0..=253_402_300_799).contains(s)).ok_or_else(|| {
            CliError::Usage(format!("SOURCE_DATE_EPOCH must be seconds since 1970 (up to year 9999), not {text:?}"))
        })?,
    };
    Ok(rfc3339(seconds))
}

/// Seconds since the epoch as `YYYY-MM-DDThh:mm:ssZ` (days to civil date: H. Hinnant's
/// `civil_from_days`).
fn rfc3339(seconds: i64) -> String {
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3_600, rest % 3_600 / 60, rest % 60)
}

fn invalid(message: String) -> CliError {
    CliError::ImageInvalid(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn created_times() {
        let cases: &[(Option<&str>, &str)] = &[
            (None, "1970-01-01T00:00:00Z"),
            (Some(""), "1970-01-01T00:00:00Z"),
            (Some("0"), "1970-01-01T00:00:00Z"),
            (Some("951782400"), "2000-02-29T00:00:00Z"),
            (Some("1795470991"), "2026-11-23T21:56:31Z"),
            (Some("253402300799"), "9999-12-31T23:59:59Z"),
        ];
        for (epoch, want) in cases {
            assert_eq!(created(*epoch).unwrap(), *want, "{epoch:?}");
        }
        for bad in ["-1", "soon", "1.5", "253402300800"] {
            assert!(matches!(created(Some(bad)), Err(CliError::Usage(_))), "{bad}");
        }
    }

    #[test]
    fn the_layer_is_the_same_bytes_every_time_and_holds_only_the_module() {
        let module = b"\0asm\x01\0\0\0 some module".to_vec();
        let first = gzip(&plugin_tar(&module).unwrap()).unwrap();
        assert_eq!(first, gzip(&plugin_tar(&module).unwrap()).unwrap());
        // Gzip header: magic, CM 8, FLG 0 (no name, no comment), MTIME 0, XFL, OS 255.
        assert_eq!(&first[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 255]);
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(first.as_slice()));
        let mut entries = archive.entries().unwrap();
        let mut entry = entries.next().unwrap().unwrap();
        let header = entry.header();
        assert_eq!(entry.path().unwrap().to_str(), Some(PLUGIN_FILE));
        assert_eq!((header.mode().unwrap(), header.uid().unwrap(), header.gid().unwrap()), (0o644, 0, 0));
        assert_eq!(
            (header.mtime().unwrap(), header.username().unwrap(), header.groupname().unwrap()),
            (0, Some(""), Some(""))
        );
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        assert_eq!(content, module);
        assert!(entries.next().is_none());
    }

    #[test]
    fn json_keys_are_sorted_at_every_depth() {
        let value = serde_json::json!({"b": 1, "a": {"z": [{"y": 1, "x": 2}], "c": 3}});
        assert_eq!(canonical_json(&value).unwrap(), br#"{"a":{"c":3,"z":[{"x":2,"y":1}]},"b":1}"#.to_vec());
    }
}
