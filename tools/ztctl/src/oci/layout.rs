//! Writes an `Image` as an OCI image layout (image-spec image-layout.md): `oci-layout`,
//! `index.json` and `blobs/sha256/<hex>`, what `skopeo copy oci:DIR:TAG` reads. Touches only the
//! directory it is given, and replaces it only when it already is an image layout.

use std::fs;
use std::path::Path;

use super::Image;
use crate::error::CliError;

/// image-layout.md "oci-layout file".
pub const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Writes `image` into `dir`, which must be absent, empty, or an earlier image layout (then
/// replaced whole, so that no blob of an older build stays behind).
pub fn write(dir: &Path, image: &Image) -> Result<(), CliError> {
    clear(dir)?;
    let blobs = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).map_err(|source| unwritable(&blobs, source))?;
    for blob in image.blobs.iter().chain(std::iter::once(&image.manifest)) {
        let hex = blob.digest.strip_prefix("sha256:").unwrap_or(&blob.digest);
        let path = blobs.join(hex);
        fs::write(&path, &blob.bytes).map_err(|source| unwritable(&path, source))?;
    }
    for (name, bytes) in [("index.json", image.index.as_slice()), ("oci-layout", OCI_LAYOUT)] {
        let path = dir.join(name);
        fs::write(&path, bytes).map_err(|source| unwritable(&path, source))?;
    }
    Ok(())
}

fn clear(dir: &Path) -> Result<(), CliError> {
    let mut entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(unwritable(dir, source)),
    };
    if entries.next().is_none() {
        return Ok(());
    }
    if !dir.join("oci-layout").is_file() {
        return Err(CliError::Usage(format!(
            "{} exists and is not an OCI image layout: not overwriting it",
            dir.display()
        )));
    }
    fs::remove_dir_all(dir).map_err(|source| unwritable(dir, source))
}

fn unwritable(path: &Path, source: std::io::Error) -> CliError {
    CliError::Unwritable { path: path.display().to_string(), source }
}
