//! The chain rules of the audit spec (filters/zt-audit/README.md, "Tamper evidence"): per chain id, in
//! input order, `seq` runs 0, 1, 2, … without a gap, and each `prev` is the digest of the exact
//! text of the chain's previous record: SHA-256 (`prev_alg` `sha256`, or none), or HMAC-SHA-256
//! under the chain key (`hmac-sha256`). Chains interleave freely. The first break is kept; the
//! input after it is still read, only to tell a reordering from a deletion.
//!
//! Given the key, every record must be keyed: an unkeyed chain can be recomputed by whoever
//! edits the log, so accepting one would let an edit pass for intact. Keyed records without the
//! key cannot be checked at all, which is reported as such, never as intact.
//!
//! Checkpoints (from the collector's copy) say "chain C had reached seq S and record S's digest
//! was H": a log ending before S has lost its tail, and a record S with another digest was
//! edited. Without checkpoints (stated in the README) an edit of the LAST record of a chain, or a
//! cut tail, cannot be seen, since no later record vouches for them.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use zt_core::audit::ChainKey;

use crate::record::{self, Checkpoint, GENESIS_PREV, PrevAlg, RecordError};
use crate::scan::{Found, Kind, Location};

/// The first break found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub at: Location,
    /// `None` when the record was too malformed to name them.
    pub chain: Option<String>,
    pub seq: Option<u64>,
    pub reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The text has the marker or reads like a record, and is not a valid one.
    Malformed(RecordError),
    /// A checkpoint that is not a valid one.
    MalformedCheckpoint(RecordError),
    /// The chain's first record has `seq` > 0 (and `--mid-chain` was not given).
    StartMissing,
    /// `seq` 0 whose `prev` is not 64 zeros.
    GenesisPrevNotZero,
    /// `seq` jumped ahead: the records `expected..found` are not there (deleted, or dropped).
    Missing { expected: u64 },
    /// `seq` jumped ahead, and a missing record turned up later in the input.
    Reordered { expected: u64, later_seq: u64, later: Location },
    /// The exact text of the chain's previous record, again.
    Duplicate { of: Location },
    /// `seq` went back, or repeated with another text.
    Backwards { expected: u64 },
    /// `prev` is not the digest of the chain's previous record.
    PrevMismatch { previous_seq: u64, previous: Location, alg: PrevAlg },
    /// `--key` was given and the record is unkeyed (`prev_alg` `sha256` or none).
    Unkeyed,
    /// The record is keyed and no `--key` was given: not a break, but nothing can be checked.
    KeyRequired,
    /// A checkpoint says the chain reached `seq` (the break's), and the input's records of the
    /// chain end at `last` (`None`: none at all).
    TailMissing { last: Option<u64> },
    /// A checkpoint's digest of record `seq` (or its `prev_alg`) is not that record's.
    CheckpointMismatch { record: Location },
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.at)?;
        match (&self.chain, self.seq) {
            (Some(chain), Some(seq)) => write!(f, "chain {chain} seq {seq}: ")?,
            (Some(chain), None) => write!(f, "chain {chain}: ")?,
            _ => {}
        }
        let found = self.seq.unwrap_or_default();
        match &self.reason {
            Reason::Malformed(error) => write!(f, "malformed record: {error}"),
            Reason::MalformedCheckpoint(error) => write!(f, "malformed checkpoint: {error}"),
            Reason::StartMissing => write!(
                f,
                "chain first seen at seq {found}: its start ({}) is missing; pass --mid-chain if the log \
                 starts in the middle of the chain",
                seqs(0, found)
            ),
            Reason::GenesisPrevNotZero => write!(f, "seq 0 must have a prev of 64 zeros: the record was edited"),
            Reason::Missing { expected } => write!(
                f,
                "seq gap: expected seq {expected}, found {found}: {} missing (deleted, or dropped before they \
                 were logged)",
                seqs(*expected, found)
            ),
            Reason::Reordered { expected, later_seq, later } => write!(
                f,
                "out of order: expected seq {expected}, found {found}; seq {later_seq} comes later, at {later}: \
                 records reordered"
            ),
            Reason::Duplicate { of } => write!(f, "repeated: an exact copy of the record at {of}: records duplicated"),
            Reason::Backwards { expected } => {
                write!(f, "seq went backwards: expected seq {expected}, found {found}: records reordered or duplicated")
            }
            Reason::PrevMismatch { previous_seq, previous, alg } => {
                let digest = match alg {
                    PrevAlg::Sha256 => "the SHA-256",
                    PrevAlg::HmacSha256 => "the HMAC-SHA-256 under the key",
                };
                write!(
                    f,
                    "prev does not match {digest} of the chain's previous record (seq {previous_seq}, at \
                     {previous}): that record was edited, or records were removed and the rest renumbered"
                )?;
                if *alg == PrevAlg::HmacSha256 {
                    write!(f, " (or the key is not this chain's)")?;
                }
                Ok(())
            }
            Reason::Unkeyed => write!(
                f,
                "unkeyed record (prev_alg sha256) while --key was given: anyone who can edit the log can \
                 recompute an unkeyed chain, so it cannot vouch for the records"
            ),
            Reason::KeyRequired => write!(
                f,
                "keyed record (prev_alg hmac-sha256): the chain can only be checked with its key; pass --key FILE"
            ),
            Reason::TailMissing { last: Some(last) } => write!(
                f,
                "a checkpoint says the chain reached seq {found}, but its records end at seq {last}: {} missing \
                 (the log's tail was cut, or these files do not reach that far)",
                seqs(last.saturating_add(1), found.saturating_add(1))
            ),
            Reason::TailMissing { last: None } => write!(
                f,
                "a checkpoint says the chain reached seq {found}, but none of its records is in the input: {} missing",
                seqs(0, found.saturating_add(1))
            ),
            Reason::CheckpointMismatch { record } => write!(
                f,
                "the checkpoint's head is not the digest of the record at {record}: that record was edited after \
                 the checkpoint was sent (or the checkpoint was)"
            ),
        }
    }
}

/// `seq 4` or `seqs 4-6`, for the half-open range `from..to`.
fn seqs(from: u64, to: u64) -> String {
    match to.saturating_sub(from) {
        0 | 1 => format!("seq {from}"),
        _ => format!("seqs {from}-{}", to.saturating_sub(1)),
    }
}

/// What is known of one chain so far.
#[derive(Debug, Clone)]
struct Chain {
    id: String,
    first_seq: u64,
    last_seq: u64,
    last_digest: [u8; 32],
    last_alg: PrevAlg,
    last_at: Location,
}

/// A checkpoint waiting for its record, and where it was found.
#[derive(Debug, Clone)]
struct Pending {
    checkpoint: Checkpoint,
    at: Location,
}

/// The chains' state over the whole input, fed record by record in input order.
#[derive(Debug)]
pub struct Verifier {
    mid_chain: bool,
    key: Option<ChainKey>,
    /// In order of first appearance, for the summary.
    chains: Vec<Chain>,
    index: HashMap<String, usize>,
    records: u64,
    /// Checkpoints not yet matched with their record, by chain id and seq.
    pending: HashMap<String, BTreeMap<u64, Vec<Pending>>>,
    checkpoints_matched: u64,
    /// Checkpoints whose record was before the input's start (`--mid-chain`) or had passed when
    /// they came: nothing to check them against.
    checkpoints_unchecked: u64,
    first_break: Option<Break>,
}

/// The verdict on the whole input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Intact(Summary),
    Broken(Break),
    /// Keyed records and no key: nothing after this point could be checked.
    KeyRequired(Break),
}

/// What an intact input held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub records: u64,
    /// Chain id, first and last seq, in order of first appearance.
    pub chains: Vec<(String, u64, u64)>,
    /// Whether the chains were keyed (checked under `--key`).
    pub keyed: bool,
    /// Checkpoints whose record was found and matched.
    pub checkpoints: u64,
    /// Checkpoints with nothing to check them against.
    pub checkpoints_unchecked: u64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: u64, word: &str| if n == 1 { format!("{n} {word}") } else { format!("{n} {word}s") };
        let chains = u64::try_from(self.chains.len()).unwrap_or(u64::MAX);
        write!(f, "intact: {} in {}", plural(self.records, "record"), plural(chains, "chain"))?;
        if self.keyed {
            write!(f, ", keyed")?;
        }
        if !self.chains.is_empty() {
            let list: Vec<String> = self
                .chains
                .iter()
                .map(|(id, first, last)| match first == last {
                    true => format!("chain {id}: seq {first}"),
                    false => format!("chain {id}: seq {first}-{last}"),
                })
                .collect();
            write!(f, " ({})", list.join(", "))?;
        }
        if self.checkpoints > 0 {
            write!(f, "; {} match", plural(self.checkpoints, "checkpoint"))?;
        }
        Ok(())
    }
}

impl Verifier {
    /// `mid_chain`: a chain first seen at `seq` > 0 is checked from there on instead of breaking.
    /// `key`: the chain key; every record must then be keyed.
    pub fn new(mid_chain: bool, key: Option<ChainKey>) -> Self {
        Self {
            mid_chain,
            key,
            chains: Vec::new(),
            index: HashMap::new(),
            records: 0,
            pending: HashMap::new(),
            checkpoints_matched: 0,
            checkpoints_unchecked: 0,
            first_break: None,
        }
    }

    /// Whether a break was found so far.
    pub fn broken(&self) -> Option<&Break> {
        self.first_break.as_ref()
    }

    pub fn feed(&mut self, found: &Found) {
        if found.kind == Kind::Checkpoint {
            self.feed_checkpoint(found);
            return;
        }
        let parsed = found.text.as_ref().map_err(Clone::clone).and_then(|text| Ok((record::header(text)?, text)));
        if let Some(first_break) = &mut self.first_break {
            if let Ok((header, _)) = &parsed {
                refine(first_break, header, &found.at);
            }
            return;
        }
        let (header, text) = match parsed {
            Ok(parsed) => parsed,
            Err(error) => {
                let reason = Reason::Malformed(error);
                self.first_break = Some(Break { at: found.at.clone(), chain: None, seq: None, reason });
                return;
            }
        };
        let checked = self.digest(&header, text).and_then(|digest| self.check(&header, &digest).map(|()| digest));
        let digest = match checked {
            Ok(digest) => digest,
            Err(reason) => {
                let (chain, seq) = (Some(header.chain), Some(header.seq));
                self.first_break = Some(Break { at: found.at.clone(), chain, seq, reason });
                return;
            }
        };
        self.records += 1;
        let at = found.at.clone();
        self.match_pending(&header.chain, header.seq, &digest, header.alg, &at);
        match self.index.get(&header.chain).and_then(|&i| self.chains.get_mut(i)) {
            Some(chain) => {
                chain.last_seq = header.seq;
                chain.last_digest = digest;
                chain.last_alg = header.alg;
                chain.last_at = at;
            }
            None => {
                self.index.insert(header.chain.clone(), self.chains.len());
                let (first_seq, last_seq, last_alg) = (header.seq, header.seq, header.alg);
                let id = header.chain;
                self.chains.push(Chain { id, first_seq, last_seq, last_digest: digest, last_alg, last_at: at });
            }
        }
    }

    /// The digest of a record's text as the next record's `prev` must hold it, by its own
    /// `prev_alg`; a record of the other form than the key calls for is refused first.
    fn digest(&self, header: &record::Header, text: &str) -> Result<[u8; 32], Reason> {
        match (header.alg, &self.key) {
            (PrevAlg::HmacSha256, Some(key)) => Ok(key.mac(text.as_bytes())),
            (PrevAlg::HmacSha256, None) => Err(Reason::KeyRequired),
            (PrevAlg::Sha256, Some(_)) => Err(Reason::Unkeyed),
            (PrevAlg::Sha256, None) => Ok(record::digest(text)),
        }
    }

    /// The rules for one well-formed record, against its chain's state.
    fn check(&self, header: &record::Header, digest: &[u8; 32]) -> Result<(), Reason> {
        let Some(chain) = self.index.get(&header.chain).and_then(|&i| self.chains.get(i)) else {
            if header.seq == 0 && header.prev != GENESIS_PREV {
                return Err(Reason::GenesisPrevNotZero);
            }
            // Mid-chain: the first record seen is taken on trust; its successor vouches for it.
            if header.seq > 0 && !self.mid_chain {
                return Err(Reason::StartMissing);
            }
            return Ok(());
        };
        let expected = chain.last_seq.checked_add(1);
        match expected {
            Some(expected) if header.seq == expected => {
                if header.prev != chain.last_digest {
                    let (previous_seq, previous) = (chain.last_seq, chain.last_at.clone());
                    return Err(Reason::PrevMismatch { previous_seq, previous, alg: chain.last_alg });
                }
                Ok(())
            }
            Some(expected) if header.seq > expected => Err(Reason::Missing { expected }),
            _ if header.seq == chain.last_seq && *digest == chain.last_digest => {
                Err(Reason::Duplicate { of: chain.last_at.clone() })
            }
            _ => Err(Reason::Backwards { expected: expected.unwrap_or(u64::MAX) }),
        }
    }

    /// A checkpoint: matched at once when its record is the chain's last so far, else kept
    /// until its record comes (or the input ends).
    fn feed_checkpoint(&mut self, found: &Found) {
        if self.first_break.is_some() {
            return;
        }
        let parsed = found.text.as_ref().map_err(Clone::clone).and_then(|text| record::checkpoint(text));
        let checkpoint = match parsed {
            Ok(checkpoint) => checkpoint,
            Err(error) => {
                let reason = Reason::MalformedCheckpoint(error);
                self.first_break = Some(Break { at: found.at.clone(), chain: None, seq: None, reason });
                return;
            }
        };
        let pending = Pending { checkpoint, at: found.at.clone() };
        let chain = self.index.get(&pending.checkpoint.chain).and_then(|&i| self.chains.get(i));
        match chain {
            Some(chain) if chain.last_seq == pending.checkpoint.seq => {
                let (digest, alg, record) = (chain.last_digest, chain.last_alg, chain.last_at.clone());
                self.check_checkpoint(&pending, &digest, alg, &record);
            }
            // Its record went by already (a checkpoint after later records of its chain, which
            // the filter never sends): nothing kept to check it against.
            Some(chain) if chain.last_seq > pending.checkpoint.seq => self.checkpoints_unchecked += 1,
            _ => {
                let by_seq = self.pending.entry(pending.checkpoint.chain.clone()).or_default();
                by_seq.entry(pending.checkpoint.seq).or_default().push(pending);
            }
        }
    }

    fn match_pending(&mut self, chain: &str, seq: u64, digest: &[u8; 32], alg: PrevAlg, record: &Location) {
        let Some(waiting) = self.pending.get_mut(chain).and_then(|by_seq| by_seq.remove(&seq)) else { return };
        for pending in waiting {
            self.check_checkpoint(&pending, digest, alg, record);
        }
    }

    fn check_checkpoint(&mut self, pending: &Pending, digest: &[u8; 32], alg: PrevAlg, record: &Location) {
        if self.first_break.is_some() {
            return;
        }
        if pending.checkpoint.head == *digest && pending.checkpoint.alg == alg {
            self.checkpoints_matched += 1;
            return;
        }
        self.first_break = Some(Break {
            at: pending.at.clone(),
            chain: Some(pending.checkpoint.chain.clone()),
            seq: Some(pending.checkpoint.seq),
            reason: Reason::CheckpointMismatch { record: record.clone() },
        });
    }

    pub fn finish(mut self) -> Verdict {
        if self.first_break.is_none() {
            self.first_break = self.unmatched_checkpoints();
        }
        match self.first_break {
            Some(first_break) if first_break.reason == Reason::KeyRequired => Verdict::KeyRequired(first_break),
            Some(first_break) => Verdict::Broken(first_break),
            None => Verdict::Intact(Summary {
                records: self.records,
                chains: self.chains.into_iter().map(|c| (c.id, c.first_seq, c.last_seq)).collect(),
                keyed: self.key.is_some(),
                checkpoints: self.checkpoints_matched,
                checkpoints_unchecked: self.checkpoints_unchecked,
            }),
        }
    }

    /// Checkpoints whose record never came: beyond the chain's last record, a cut tail (the
    /// furthest one is reported, naming every missing seq); before its first (`--mid-chain`),
    /// nothing to check.
    fn unmatched_checkpoints(&mut self) -> Option<Break> {
        let mut worst: Option<(u64, Break)> = None;
        // In chain id order, so that the same input always reports the same break.
        let pending: BTreeMap<String, _> = std::mem::take(&mut self.pending).into_iter().collect();
        for (chain_id, by_seq) in pending {
            let chain = self.index.get(&chain_id).and_then(|&i| self.chains.get(i));
            for (seq, waiting) in by_seq {
                let last = match chain {
                    Some(chain) if seq < chain.first_seq => {
                        self.checkpoints_unchecked += u64::try_from(waiting.len()).unwrap_or(u64::MAX);
                        continue;
                    }
                    Some(chain) => Some(chain.last_seq),
                    None => None,
                };
                let Some(pending) = waiting.into_iter().next() else { continue };
                let missing = seq.saturating_sub(last.unwrap_or(0));
                if worst.as_ref().is_none_or(|(most, _)| missing > *most) {
                    let reason = Reason::TailMissing { last };
                    let found = Break { at: pending.at, chain: Some(chain_id.clone()), seq: Some(seq), reason };
                    worst = Some((missing, found));
                }
            }
        }
        worst.map(|(_, found)| found)
    }
}

/// After a gap, a missing record of the same chain showing up later means the records were
/// reordered, not deleted: the more useful diagnosis.
fn refine(first_break: &mut Break, header: &record::Header, at: &Location) {
    let (Reason::Missing { expected }, Some(chain), Some(found)) =
        (&first_break.reason, &first_break.chain, first_break.seq)
    else {
        return;
    };
    if header.chain == *chain && (*expected..found).contains(&header.seq) {
        first_break.reason = Reason::Reordered { expected: *expected, later_seq: header.seq, later: at.clone() };
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;
    use crate::testutil::{ChainBuilder, KEY, found};

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    /// Two interleaved chains of `n` records each, A first: A0 B0 A1 B1 …
    fn interleaved(n: u64) -> Vec<String> {
        let (mut a, mut b) = (ChainBuilder::new(A), ChainBuilder::new(B));
        (0..n).flat_map(|_| [a.next("allow"), b.next("deny")]).collect()
    }

    fn verify(texts: &[String], mid_chain: bool) -> Verdict {
        let mut verifier = Verifier::new(mid_chain, None);
        for (i, text) in texts.iter().enumerate() {
            verifier.feed(&found(i + 1, text));
        }
        verifier.finish()
    }

    fn broken(texts: &[String], mid_chain: bool) -> Break {
        match verify(texts, mid_chain) {
            Verdict::Broken(b) => b,
            other => panic!("not broken: {other:?}"),
        }
    }

    fn at(line: usize) -> Location {
        Location { source: Rc::from("t"), line, otlp_record: None }
    }

    #[test]
    fn interleaved_chains_are_intact() {
        let Verdict::Intact(summary) = verify(&interleaved(3), false) else { panic!("broken") };
        assert_eq!(summary.records, 6);
        assert_eq!(summary.chains, vec![(A.to_owned(), 0, 2), (B.to_owned(), 0, 2)]);
        assert_eq!(
            summary.to_string(),
            format!("intact: 6 records in 2 chains (chain {A}: seq 0-2, chain {B}: seq 0-2)")
        );
    }

    #[test]
    fn breaks_are_found_at_the_right_record_with_the_right_reason() {
        let log = interleaved(4); // lines: A0 B0 A1 B1 A2 B2 A3 B3
        let edited = |i: usize| {
            let mut log = log.clone();
            log[i] = log[i].replace("\"status\":200", "\"status\":403");
            assert_ne!(log[i], interleaved(4)[i]);
            log
        };
        let without = |i: usize| {
            let mut log = log.clone();
            log.remove(i);
            log
        };
        let swapped = |i: usize, j: usize| {
            let mut log = log.clone();
            log.swap(i, j);
            log
        };
        let duplicated = |i: usize| {
            let mut log = log.clone();
            log.insert(i + 1, log[i].clone());
            log
        };
        let cases: Vec<(&str, Vec<String>, Break)> = vec![
            (
                "record A2 deleted",
                without(4),
                Break { at: at(6), chain: Some(A.into()), seq: Some(3), reason: Reason::Missing { expected: 2 } },
            ),
            (
                "record A1 edited",
                edited(2),
                Break {
                    at: at(5),
                    chain: Some(A.into()),
                    seq: Some(2),
                    reason: Reason::PrevMismatch { previous_seq: 1, previous: at(3), alg: PrevAlg::Sha256 },
                },
            ),
            (
                "records A1 and A2 swapped",
                swapped(2, 4),
                Break {
                    at: at(3),
                    chain: Some(A.into()),
                    seq: Some(2),
                    reason: Reason::Reordered { expected: 1, later_seq: 1, later: at(5) },
                },
            ),
            (
                "record B2 duplicated",
                duplicated(5),
                Break { at: at(7), chain: Some(B.into()), seq: Some(2), reason: Reason::Duplicate { of: at(6) } },
            ),
            (
                "chain start removed",
                without(0),
                Break { at: at(2), chain: Some(A.into()), seq: Some(1), reason: Reason::StartMissing },
            ),
        ];
        for (name, log, want) in cases {
            assert_eq!(broken(&log, false), want, "{name}");
        }
    }

    #[test]
    fn seq_going_back_with_other_text_is_a_break() {
        let mut log = interleaved(3);
        let mut other = ChainBuilder::new(A);
        log.push(other.next("allow")); // A0 again, another text
        assert_eq!(broken(&log, false).reason, Reason::Backwards { expected: 3 });
    }

    #[test]
    fn mid_chain_starts_each_chain_at_its_first_record() {
        let log: Vec<String> = interleaved(4).into_iter().skip(3).collect(); // B1 A2 B2 A3 B3
        let Verdict::Intact(summary) = verify(&log, true) else { panic!("broken") };
        assert_eq!(summary.chains, vec![(B.to_owned(), 1, 3), (A.to_owned(), 2, 3)]);
        // Still checked from there on.
        let mut log = log;
        log.remove(2);
        assert_eq!(broken(&log, true).reason, Reason::Missing { expected: 2 });
    }

    #[test]
    fn a_first_record_at_seq_0_needs_the_zero_prev() {
        let mut log = interleaved(1);
        log[0] = log[0].replace(&"0".repeat(64), &"1".repeat(64));
        assert_eq!(broken(&log, true).reason, Reason::GenesisPrevNotZero);
    }

    #[test]
    fn a_malformed_record_is_a_break() {
        let mut log = interleaved(2);
        log[2] = log[2].replace("\"v\":1", "\"v\":2");
        let b = broken(&log, false);
        assert_eq!((b.at.line, b.chain.clone(), b.seq), (3, None, None));
        assert_eq!(b.reason, Reason::Malformed(RecordError::UnsupportedVersion { found: "2".into() }));
        assert_eq!(b.to_string(), "t:3: malformed record: `v` is 2; this tool reads format version 1");
    }

    #[test]
    fn reasons_read_plainly() {
        let gap = Break { at: at(9), chain: Some(A.into()), seq: Some(7), reason: Reason::Missing { expected: 4 } };
        assert_eq!(
            gap.to_string(),
            format!(
                "t:9: chain {A} seq 7: seq gap: expected seq 4, found 7: seqs 4-6 missing (deleted, or dropped \
                 before they were logged)"
            )
        );
        let start = Break { at: at(1), chain: Some(A.into()), seq: Some(1), reason: Reason::StartMissing };
        assert!(start.to_string().contains("its start (seq 0) is missing; pass --mid-chain"), "{start}");
    }

    #[test]
    fn no_records_is_intact_and_says_so() {
        let Verdict::Intact(summary) = verify(&[], false) else { panic!("broken") };
        assert_eq!(summary.to_string(), "intact: 0 records in 0 chains");
    }

    fn verify_keyed(texts: &[String], key: Option<&[u8]>) -> Verdict {
        let mut verifier = Verifier::new(false, key.map(|k| ChainKey::from_secret(k).unwrap()));
        for (i, text) in texts.iter().enumerate() {
            verifier.feed(&found(i + 1, text));
        }
        verifier.finish()
    }

    fn keyed_log(n: u64) -> Vec<String> {
        let (mut a, mut b) = (ChainBuilder::keyed(A, KEY), ChainBuilder::keyed(B, KEY));
        (0..n).flat_map(|_| [a.next("allow"), b.next("deny")]).collect()
    }

    fn broken_keyed(texts: &[String], key: Option<&[u8]>) -> Break {
        match verify_keyed(texts, key) {
            Verdict::Broken(b) => b,
            other => panic!("not broken: {other:?}"),
        }
    }

    #[test]
    fn a_keyed_chain_is_intact_under_its_key() {
        let Verdict::Intact(summary) = verify_keyed(&keyed_log(3), Some(KEY)) else { panic!("not intact") };
        assert_eq!((summary.records, summary.keyed), (6, true));
        assert!(summary.to_string().starts_with("intact: 6 records in 2 chains, keyed ("), "{summary}");
        // The key file's trailing newline is not part of the key.
        let with_newline = [KEY, b"\n"].concat();
        assert!(matches!(verify_keyed(&keyed_log(3), Some(&with_newline)), Verdict::Intact(_)));
    }

    #[test]
    fn an_edited_keyed_record_breaks_the_next_prev_under_the_key() {
        let mut log = keyed_log(3); // A0 B0 A1 B1 A2 B2
        log[2] = log[2].replace("\"status\":200", "\"status\":403");
        let b = broken_keyed(&log, Some(KEY));
        assert_eq!((b.at.line, b.chain.as_deref(), b.seq), (5, Some(A), Some(2)));
        assert_eq!(b.reason, Reason::PrevMismatch { previous_seq: 1, previous: at(3), alg: PrevAlg::HmacSha256 });
        assert!(b.to_string().contains("HMAC-SHA-256 under the key"), "{b}");
    }

    #[test]
    fn a_chain_recomputed_without_the_key_fails() {
        // The attacker edits A1 and recomputes every `prev` after it. Without the key, the
        // recomputed values can only be plain SHA-256 (or HMAC under a guessed key).
        let original = keyed_log(3);
        let mut forged_unkeyed = ChainBuilder::unkeyed(A);
        let mut forged_guess = ChainBuilder::keyed(A, b"a-guessed-key-0123456789abcdef!!");
        let forge = |builder: &mut ChainBuilder| -> Vec<String> {
            (0..3).map(|i| builder.next(if i == 1 { "deny" } else { "allow" })).collect()
        };
        let unkeyed = forge(&mut forged_unkeyed);
        let b = broken_keyed(&unkeyed, Some(KEY));
        assert_eq!((b.at.line, b.reason.clone()), (1, Reason::Unkeyed));
        assert!(b.to_string().contains("unkeyed record (prev_alg sha256) while --key was given"), "{b}");
        // Claiming the keyed form does not help: the attacker's HMAC is not under the key.
        let guessed = forge(&mut forged_guess);
        assert_ne!(guessed[1], original[2]);
        let b = broken_keyed(&guessed, Some(KEY));
        assert_eq!((b.at.line, b.seq), (2, Some(1)));
        assert!(matches!(b.reason, Reason::PrevMismatch { alg: PrevAlg::HmacSha256, .. }), "{b:?}");
        // A record stripped of `prev_alg` reads as the legacy unkeyed form: refused too.
        let stripped: Vec<String> = original.iter().map(|t| t.replace(r#""prev_alg":"hmac-sha256","#, "")).collect();
        assert_eq!(broken_keyed(&stripped, Some(KEY)).reason, Reason::Unkeyed);
    }

    #[test]
    fn the_wrong_key_is_a_break_at_the_second_record() {
        let b = broken_keyed(&keyed_log(2), Some(b"not-the-chain-key-0123456789abcdef"));
        assert_eq!((b.at.line, b.chain.as_deref(), b.seq), (3, Some(A), Some(1)));
        assert!(b.to_string().contains("or the key is not this chain's"), "{b}");
    }

    #[test]
    fn keyed_records_without_a_key_are_not_verified() {
        let Verdict::KeyRequired(first) = verify_keyed(&keyed_log(2), None) else { panic!("not KeyRequired") };
        assert_eq!((first.at.line, first.reason.clone()), (1, Reason::KeyRequired));
        assert!(first.to_string().contains("pass --key FILE"), "{first}");
        // An unkeyed chain still verifies without a key, with or without `prev_alg`.
        let mut marked = ChainBuilder::unkeyed(A);
        let log: Vec<String> = (0..3).map(|_| marked.next("allow")).collect();
        assert!(matches!(verify_keyed(&log, None), Verdict::Intact(_)));
    }

    #[test]
    fn checkpoints_match_their_records_in_either_order() {
        let mut a = ChainBuilder::keyed(A, KEY);
        let mut log: Vec<String> = (0..3).map(|_| a.next("allow")).collect();
        let checkpoint = a.checkpoint();
        // Collector order: the checkpoint right after its record.
        log.push(checkpoint.clone());
        let Verdict::Intact(summary) = verify_keyed(&log, Some(KEY)) else { panic!("not intact") };
        assert_eq!(summary.checkpoints, 1);
        assert!(summary.to_string().ends_with("; 1 checkpoint match"), "{summary}");
        // `--checkpoints` order: the checkpoint before the log.
        log.pop();
        log.insert(0, checkpoint);
        let Verdict::Intact(summary) = verify_keyed(&log, Some(KEY)) else { panic!("not intact") };
        assert_eq!(summary.checkpoints, 1);
    }

    #[test]
    fn a_cut_tail_after_a_checkpoint_is_a_break() {
        let mut a = ChainBuilder::keyed(A, KEY);
        let full: Vec<String> = (0..5).map(|_| a.next("allow")).collect();
        let checkpoint = a.checkpoint(); // seq 4
        let mut log = vec![checkpoint.clone()];
        log.extend(full.iter().take(2).cloned()); // the log ends at seq 1
        let b = broken_keyed(&log, Some(KEY));
        assert_eq!((b.at.line, b.chain.as_deref(), b.seq), (1, Some(A), Some(4)));
        assert_eq!(b.reason, Reason::TailMissing { last: Some(1) });
        assert!(b.to_string().contains("its records end at seq 1: seqs 2-4 missing"), "{b}");
        // No record of the chain at all.
        let b = broken_keyed(&[checkpoint], Some(KEY));
        assert_eq!(b.reason, Reason::TailMissing { last: None });
        assert!(b.to_string().contains("seqs 0-4 missing"), "{b}");
    }

    #[test]
    fn an_edited_last_record_is_found_by_the_checkpoint() {
        let mut a = ChainBuilder::keyed(A, KEY);
        let mut log: Vec<String> = (0..3).map(|_| a.next("allow")).collect();
        log.insert(0, a.checkpoint());
        // The last record has no successor to vouch for it; the checkpoint does.
        log[3] = log[3].replace("\"status\":200", "\"status\":500");
        let b = broken_keyed(&log, Some(KEY));
        assert_eq!((b.at.line, b.seq), (1, Some(2)));
        assert_eq!(b.reason, Reason::CheckpointMismatch { record: at(4) });
        // A checkpoint claiming the other form is not that record's either.
        let mut u = ChainBuilder::unkeyed(A);
        let mut log: Vec<String> = (0..2).map(|_| u.next("allow")).collect();
        log.push(u.checkpoint().replace(r#""prev_alg":"sha256""#, r#""prev_alg":"hmac-sha256""#));
        assert!(matches!(broken_keyed(&log, None).reason, Reason::CheckpointMismatch { .. }));
    }

    #[test]
    fn checkpoints_before_a_mid_chain_start_are_not_checked_but_counted() {
        let mut a = ChainBuilder::unkeyed(A);
        let mut log = vec![a.next("allow")];
        let early = a.checkpoint(); // seq 0
        log.extend((0..3).map(|_| a.next("allow")));
        let mut input = vec![early];
        input.extend(log.into_iter().skip(2)); // the log starts at seq 2
        let mut verifier = Verifier::new(true, None);
        for (i, text) in input.iter().enumerate() {
            verifier.feed(&found(i + 1, text));
        }
        let Verdict::Intact(summary) = verifier.finish() else { panic!("not intact") };
        assert_eq!((summary.checkpoints, summary.checkpoints_unchecked), (0, 1));
    }

    #[test]
    fn a_malformed_checkpoint_is_a_break() {
        let b = broken(&[r#"{"checkpoint":{"v":1,"chain":"x"}}"#.to_owned()], false);
        assert!(matches!(b.reason, Reason::MalformedCheckpoint(_)), "{b:?}");
        assert!(b.to_string().starts_with("t:1: malformed checkpoint: "), "{b}");
    }
}
