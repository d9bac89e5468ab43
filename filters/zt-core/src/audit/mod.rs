//! Audit records: one structured, redacted, chained record for every request and decision.
//!
//! The adapter reads what Envoy knows when a stream ends ([`StreamFacts`], including the other
//! filters' decisions from filter state), then [`AuditConfig::draft`] builds the record,
//! [`Draft::sampled`] says whether to keep it, [`Chain::seal`] gives it its place in the
//! worker's chain, and the [`Outbox`] batches it for the collector. What may appear in a
//! record (and what is redacted) is decided in `record` and `identity` only; a token never
//! reaches this module.

mod chain;
mod compile;
mod config;
mod export;
mod facts;
mod flags;
mod identity;
mod log_batch;
mod outbox;
mod record;
mod time;

pub use chain::{Chain, ChainKey, ChainKeyError, GENESIS, Head, MIN_CHAIN_KEY, PrevAlg, Sealed, VERSION};
pub use compile::{AuditConfig, Collector, Format, RecordLogLevel};
pub use facts::{Handed, HandedIdentity, StageRecord, StreamFacts};
pub use log_batch::LogBatch;
pub use outbox::{Batch, Dropped, Outbox};
pub use record::{Draft, Outcome, REDACTED};
pub use time::rfc3339_millis;

/// The marker before every record in Envoy's log, so that a log shipper (and `ztctl verify`)
/// can pick the records out of everything else Envoy logs.
pub const LOG_MARKER: &str = "zt.audit.v1 ";

#[cfg(test)]
mod tests;
