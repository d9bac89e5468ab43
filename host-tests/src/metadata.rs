//! Route metadata as Envoy 1.40 answers a whole namespace (a `Struct`, a map to its attribute
//! layer): proxy-wasm's map encoding, as header maps are sent.

/// The map encoding of `pairs`: a `u32` count, each key's and value's length as `u32`s, then
/// each key and value followed by a NUL, all little-endian.
pub fn map_encoding<'a>(pairs: impl Iterator<Item = (&'a [u8], &'a [u8])> + Clone) -> Vec<u8> {
    // Test metadata is a few short strings: a length over u32 cannot occur.
    let length = |bytes: &[u8]| u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes();
    let count = u32::try_from(pairs.clone().count()).unwrap_or(u32::MAX);
    let mut out = count.to_le_bytes().to_vec();
    for (key, value) in pairs.clone() {
        out.extend(length(key));
        out.extend(length(value));
    }
    for (key, value) in pairs {
        out.extend_from_slice(key);
        out.push(0);
        out.extend_from_slice(value);
        out.push(0);
    }
    out
}
