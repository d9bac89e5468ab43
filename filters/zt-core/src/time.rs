//! Time as the filters see it: whole seconds since the Unix epoch, handed in by the caller.

/// Seconds since 1970-01-01T00:00:00Z. Filters read it from the host clock (which the test
/// harness controls), so tests and Envoy agree on "now".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixSeconds(pub u64);

impl UnixSeconds {
    pub fn as_u64(self) -> u64 {
        self.0
    }
}
