//! Envoy's response flags: the `response.flags` bitmask as the short names of Envoy's access
//! log (`%RESPONSE_FLAGS%`), so that a record reads like the access log operators know.

/// Bit i of `response.flags` is `NAMES[i]`: Envoy's `CoreResponseFlag` order
/// (`envoy/stream_info/stream_info.h`), names from `source/common/stream_info/utility.h`.
/// Observed on Envoy 1.40.0: UH = 2, UT = 4, UF = 32, NR = 256, DC = 16384; flags that
/// extensions add are not in this bitmask.
const NAMES: [&str; 30] = [
    "LH", "UH", "UT", "LR", "UR", "UF", "UC", "UO", "NR", "DI", "FI", "RL", "UAEX", "RLSE", "DC", "URX", "SI", "IH",
    "DPE", "UMSDR", "RFCF", "NFCF", "DT", "UPE", "NC", "OM", "DF", "DO", "DR", "UDO",
];

/// The names of the set bits, in bit order; a bit without a known name shows as `bit<N>`
/// rather than vanishing.
pub(crate) fn flag_names(flags: u64) -> Vec<String> {
    (0..64usize)
        .filter(|bit| flags & (1u64 << bit) != 0)
        .map(|bit| NAMES.get(bit).map_or_else(|| format!("bit{bit}"), |name| (*name).to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn names_set_bits_in_order() {
        assert!(flag_names(0).is_empty());
        assert_eq!(flag_names(0x2 | 0x4000), ["UH", "DC"]);
        assert_eq!(flag_names(32 | 256 | 4), ["UT", "UF", "NR"]);
        assert_eq!(flag_names(1 << 29), ["UDO"]);
        assert_eq!(flag_names(1 << 40), ["bit40"]);
    }
}
