//! The per-worker queue between the request path and the collector. The request path only
//! appends (never waits on the network); a timer takes batches out, one export in flight at a
//! time. A slow or absent collector makes records wait; past the queue's bound or the age
//! limit the oldest are dropped, and the caller counts and logs every drop.

use std::collections::VecDeque;

use super::chain::Sealed;
use super::compile::{Collector, Format};
use super::export::{batch_body, fragment};
use super::record::Draft;

#[derive(Debug)]
pub struct Outbox {
    format: Format,
    service_name: String,
    batch_records: usize,
    batch_age_ms: u64,
    queue_records: usize,
    drop_after_ms: u64,
    waiting: VecDeque<Entry>,
    in_flight: Option<Vec<Entry>>,
    /// After a failed export, nothing is sent before this time (one batch age of back-off).
    retry_at_ms: u64,
}

#[derive(Debug)]
struct Entry {
    queued_ms: u64,
    seq: u64,
    fragment: String,
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
            drop_after_ms: collector.drop_after_ms,
            waiting: VecDeque::new(),
            in_flight: None,
            retry_at_ms: 0,
        }
    }

    /// Queues a sealed record; when the queue is full, the oldest waiting record makes room.
    pub fn push(&mut self, sealed: &Sealed, draft: &Draft, chain: &str, now_ns: u64) -> Option<Dropped> {
        let fragment = fragment(self.format, sealed, draft, chain, now_ns);
        self.waiting.push_back(Entry { queued_ms: now_ns / 1_000_000, seq: sealed.seq, fragment });
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
        let records = entries.len();
        self.in_flight = Some(entries);
        Some(Batch { body, records })
    }

    /// The collector took the batch in flight; answers how many records it held.
    pub fn delivered(&mut self) -> usize {
        self.in_flight.take().map_or(0, |entries| entries.len())
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
            dropped = Dropped::add(dropped, front.seq);
            self.waiting.pop_front();
        }
        dropped
    }

    /// Records waiting, not counting a batch in flight.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    pub fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    fn trim(&mut self) -> Option<Dropped> {
        let mut dropped = None;
        while self.waiting.len() > self.queue_records {
            if let Some(entry) = self.waiting.pop_front() {
                dropped = Dropped::add(dropped, entry.seq);
            }
        }
        dropped
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
