//! The chain rules of the audit spec (`/tmp/audit-spec.md`, "Chain rules"): per chain id, in
//! input order, `seq` runs 0, 1, 2, … without a gap, and each `prev` is the SHA-256 of the exact
//! text of the chain's previous record. Chains interleave freely. The first break is kept; the
//! input after it is still read, only to tell a reordering from a deletion.
//!
//! What this cannot see (stated in the README): an edit of the LAST record of a chain, or a cut
//! tail, since no later record vouches for them.

use std::collections::HashMap;
use std::fmt;

use crate::record::{self, GENESIS_PREV, RecordError};
use crate::scan::{Found, Location};

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
    /// `prev` is not the SHA-256 of the chain's previous record.
    PrevMismatch { previous_seq: u64, previous: Location },
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
            Reason::PrevMismatch { previous_seq, previous } => write!(
                f,
                "prev does not match the SHA-256 of the chain's previous record (seq {previous_seq}, at \
                 {previous}): that record was edited, or records were removed and the rest renumbered"
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
    last_at: Location,
}

/// The chains' state over the whole input, fed record by record in input order.
#[derive(Debug)]
pub struct Verifier {
    mid_chain: bool,
    /// In order of first appearance, for the summary.
    chains: Vec<Chain>,
    index: HashMap<String, usize>,
    records: u64,
    first_break: Option<Break>,
}

/// The verdict on the whole input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Intact(Summary),
    Broken(Break),
}

/// What an intact input held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub records: u64,
    /// Chain id, first and last seq, in order of first appearance.
    pub chains: Vec<(String, u64, u64)>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: u64, word: &str| if n == 1 { format!("{n} {word}") } else { format!("{n} {word}s") };
        let chains = u64::try_from(self.chains.len()).unwrap_or(u64::MAX);
        write!(f, "intact: {} in {}", plural(self.records, "record"), plural(chains, "chain"))?;
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
        Ok(())
    }
}

impl Verifier {
    /// `mid_chain`: a chain first seen at `seq` > 0 is checked from there on instead of breaking.
    pub fn new(mid_chain: bool) -> Self {
        Self { mid_chain, chains: Vec::new(), index: HashMap::new(), records: 0, first_break: None }
    }

    /// Whether a break was found so far.
    pub fn broken(&self) -> Option<&Break> {
        self.first_break.as_ref()
    }

    pub fn feed(&mut self, found: &Found) {
        let parsed = found.text.as_ref().map_err(Clone::clone).and_then(|text| {
            let header = record::header(text)?;
            Ok((header, record::digest(text)))
        });
        if let Some(first_break) = &mut self.first_break {
            if let Ok((header, _)) = &parsed {
                refine(first_break, header, &found.at);
            }
            return;
        }
        let (header, digest) = match parsed {
            Ok(parsed) => parsed,
            Err(error) => {
                let reason = Reason::Malformed(error);
                self.first_break = Some(Break { at: found.at.clone(), chain: None, seq: None, reason });
                return;
            }
        };
        match self.check(&header, &digest) {
            Ok(()) => self.records += 1,
            Err(reason) => {
                let (chain, seq) = (Some(header.chain), Some(header.seq));
                self.first_break = Some(Break { at: found.at.clone(), chain, seq, reason });
                return;
            }
        }
        let at = found.at.clone();
        match self.index.get(&header.chain).and_then(|&i| self.chains.get_mut(i)) {
            Some(chain) => {
                chain.last_seq = header.seq;
                chain.last_digest = digest;
                chain.last_at = at;
            }
            None => {
                self.index.insert(header.chain.clone(), self.chains.len());
                let (first_seq, last_seq) = (header.seq, header.seq);
                self.chains.push(Chain { id: header.chain, first_seq, last_seq, last_digest: digest, last_at: at });
            }
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
                    return Err(Reason::PrevMismatch { previous_seq: chain.last_seq, previous: chain.last_at.clone() });
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

    pub fn finish(self) -> Verdict {
        match self.first_break {
            Some(first_break) => Verdict::Broken(first_break),
            None => Verdict::Intact(Summary {
                records: self.records,
                chains: self.chains.into_iter().map(|c| (c.id, c.first_seq, c.last_seq)).collect(),
            }),
        }
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
    use crate::testutil::{ChainBuilder, found};

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    /// Two interleaved chains of `n` records each, A first: A0 B0 A1 B1 …
    fn interleaved(n: u64) -> Vec<String> {
        let (mut a, mut b) = (ChainBuilder::new(A), ChainBuilder::new(B));
        (0..n).flat_map(|_| [a.next("allow"), b.next("deny")]).collect()
    }

    fn verify(texts: &[String], mid_chain: bool) -> Verdict {
        let mut verifier = Verifier::new(mid_chain);
        for (i, text) in texts.iter().enumerate() {
            verifier.feed(&found(i + 1, text));
        }
        verifier.finish()
    }

    fn broken(texts: &[String], mid_chain: bool) -> Break {
        match verify(texts, mid_chain) {
            Verdict::Broken(b) => b,
            Verdict::Intact(s) => panic!("intact: {s}"),
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
                    reason: Reason::PrevMismatch { previous_seq: 1, previous: at(3) },
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
}
