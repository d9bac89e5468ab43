//! The per-worker queue between the request path and the collector. The request path only
//! appends (never waits on the network); a timer takes batches out, one export in flight at a
//! time. A slow or absent collector makes records wait; past the queue's bounds (records, and
//! bytes of records waiting and in flight) or the age limit the oldest are dropped, and the
//! caller counts and logs every drop. Memory per worker is therefore bounded whatever the
//! collector does and however large the records are.

use std::collections::VecDeque;

use super::chain::{Chain, Sealed};
use super::compile::{Collector, Format};
use super::export::{batch_body, checkpoint_fragment, fragment};
use super::record::Draft;

#[derive(Debug)]
pub struct Outbox {
    format: Format,
    service_name: String,
    batch_records: usize,
    batch_age_ms: u64,
    queue_records: usize,
    queue_bytes: usize,
    drop_after_ms: u64,
    waiting: VecDeque<Entry>,
    /// Bytes of the fragments in `waiting` and `in_flight`, kept as they change.
    bytes: usize,
    in_flight: Option<Vec<Entry>>,
    /// After a failed export, nothing is sent before this time (one batch age of back-off).
    retry_at_ms: u64,
    checkpoint_records: u64,
    checkpoint_interval_ms: u64,
    /// Records queued since the last checkpoint, and when the first of them was.
    unchecked: u64,
    unchecked_since_ms: u64,
}

#[derive(Debug)]
struct Entry {
    queued_ms: u64,
    seq: u64,
    fragment: String,
    /// A checkpoint rather than a record: not counted as a dropped or exported record.
    checkpoint: bool,
}

impl Entry {
    fn size(&self) -> usize {
        self.fragment.len()
    }
}

/// Records given up on: how many, and which part of the chain (`seq` range) they were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    pub count: u64,
    pub first_seq: u64,
    pub last_seq: u64,
}

impl Dropped {
    fn add(this: Option<Dropped>, seq: u64) -> Option<Dropped> {
        Some(match this {
            None => Dropped { count: 1, first_seq: seq, last_seq: seq },
            Some(d) => Dropped { count: d.count + 1, first_seq: d.first_seq.min(seq), last_seq: d.last_seq.max(seq) },
        })
    }
}

/// An export request body and how many records it holds.
#[derive(Debug)]
pub struct Batch {
    pub body: Vec<u8>,
    pub records: usize,
}

impl Outbox {
    pub fn new(collector: &Collector) -> Self {
        Self {
            format: collector.format,
            service_name: collector.service_name.clone(),
            batch_records: collector.batch_records,
            batch_age_ms: collector.batch_age_ms,
            queue_records: collector.queue_records,
            queue_bytes: collector.queue_bytes,
            drop_after_ms: collector.drop_after_ms,
            waiting: VecDeque::new(),
            bytes: 0,
            in_flight: None,
            retry_at_ms: 0,
            checkpoint_records: collector.checkpoint_records,
            checkpoint_interval_ms: collector.checkpoint_interval_ms,
            unchecked: 0,
            unchecked_since_ms: 0,
        }
    }

    /// Queues a sealed record; when the queue is full (in records or bytes), the oldest waiting
    /// records make room. A record larger than the whole byte bound is dropped itself: making
    /// room for it would empty the queue and still exceed the bound.
    ///
    /// `chain` is the chain the record was just sealed in: every `checkpoint_records` records a
    /// checkpoint of its head follows the record.
    pub fn push(&mut self, sealed: &Sealed, draft: &Draft, chain: &Chain, now_ns: u64) -> Option<Dropped> {
        let fragment = fragment(self.format, sealed, draft, chain.id(), now_ns);
        let now_ms = now_ns / 1_000_000;
        if self.unchecked == 0 {
            self.unchecked_since_ms = now_ms;
        }
        self.unchecked += 1;
        let dropped = if fragment.len() > self.queue_bytes {
            Dropped::add(None, sealed.seq)
        } else {
            self.queue(Entry { queued_ms: now_ms, seq: sealed.seq, fragment, checkpoint: false })
        };
        if self.unchecked >= self.checkpoint_records {
            return merge(dropped, self.checkpoint(chain, now_ns));
        }
        dropped
    }

    /// Queues a checkpoint of the chain's head when records came since the last one and the
    /// first of them is `checkpoint_interval_ms` old; called on the timer, so that a quiet
    /// worker's last records are vouched for too.
    pub fn checkpoint_due(&mut self, chain: &Chain, now_ns: u64) -> Option<Dropped> {
        let now_ms = now_ns / 1_000_000;
        if self.unchecked == 0 || now_ms.saturating_sub(self.unchecked_since_ms) < self.checkpoint_interval_ms {
            return None;
        }
        self.checkpoint(chain, now_ns)
    }

    fn checkpoint(&mut self, chain: &Chain, now_ns: u64) -> Option<Dropped> {
        let head = chain.head()?;
        self.unchecked = 0;
        let fragment = checkpoint_fragment(self.format, &head, now_ns);
        self.queue(Entry { queued_ms: now_ns / 1_000_000, seq: head.seq, fragment, checkpoint: true })
    }

    fn queue(&mut self, entry: Entry) -> Option<Dropped> {
        self.bytes = self.bytes.saturating_add(entry.size());
        self.waiting.push_back(entry);
        self.trim()
    }

    /// The next batch to export, if one is due: none in flight, not backing off, and enough
    /// records or an old enough one.
    pub fn take_batch(&mut self, now_ms: u64) -> Option<Batch> {
        let oldest = self.waiting.front()?.queued_ms;
        let due = self.waiting.len() >= self.batch_records || now_ms.saturating_sub(oldest) >= self.batch_age_ms;
        if self.in_flight.is_some() || now_ms < self.retry_at_ms || !due {
            return None;
        }
        let take = self.batch_records.min(self.waiting.len());
        let entries: Vec<Entry> = self.waiting.drain(..take).collect();
        let fragments: Vec<&str> = entries.iter().map(|e| e.fragment.as_str()).collect();
        let body = batch_body(self.format, &self.service_name, &fragments);
        let records = entries.iter().filter(|e| !e.checkpoint).count();
        self.in_flight = Some(entries);
        Some(Batch { body, records })
    }

    /// The collector took the batch in flight; answers how many records it held.
    pub fn delivered(&mut self) -> usize {
        let entries = self.in_flight.take().unwrap_or_default();
        self.bytes = self.bytes.saturating_sub(entries.iter().map(Entry::size).sum());
        entries.iter().filter(|e| !e.checkpoint).count()
    }

    /// The export failed (error status, refused connection, timeout): its records go back to
    /// the head of the queue, in order, to be retried after a back-off, unless they are too
    /// old or the queue has no room for them.
    pub fn failed(&mut self, now_ms: u64) -> Option<Dropped> {
        if let Some(entries) = self.in_flight.take() {
            for entry in entries.into_iter().rev() {
                self.waiting.push_front(entry);
            }
        }
        self.retry_at_ms = now_ms.saturating_add(self.batch_age_ms);
        let expired = self.expire(now_ms);
        let trimmed = self.trim();
        merge(expired, trimmed)
    }

    /// Drops waiting records older than the age limit.
    pub fn expire(&mut self, now_ms: u64) -> Option<Dropped> {
        let mut dropped = None;
        while let Some(front) = self.waiting.front() {
            if now_ms.saturating_sub(front.queued_ms) < self.drop_after_ms {
                break;
            }
            if !front.checkpoint {
                dropped = Dropped::add(dropped, front.seq);
            }
            self.pop_front();
        }
        dropped
    }

    /// Records and checkpoints waiting, not counting a batch in flight.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    pub fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Bytes of the records waiting and in flight.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Drops the oldest waiting records while either bound is exceeded. A batch in flight is
    /// counted in bytes but never dropped from here: its export is under way.
    fn trim(&mut self) -> Option<Dropped> {
        let mut dropped = None;
        while self.waiting.len() > self.queue_records || self.bytes > self.queue_bytes {
            let Some(entry) = self.pop_front() else { break };
            if !entry.checkpoint {
                dropped = Dropped::add(dropped, entry.seq);
            }
        }
        dropped
    }

    fn pop_front(&mut self) -> Option<Entry> {
        let entry = self.waiting.pop_front()?;
        self.bytes = self.bytes.saturating_sub(entry.size());
        Some(entry)
    }
}

fn merge(a: Option<Dropped>, b: Option<Dropped>) -> Option<Dropped> {
    match (a, b) {
        (Some(a), Some(b)) => Some(Dropped {
            count: a.count + b.count,
            first_seq: a.first_seq.min(b.first_seq),
            last_seq: a.last_seq.max(b.last_seq),
        }),
        (a, b) => a.or(b),
    }
}
