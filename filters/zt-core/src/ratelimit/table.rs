//! A limit's buckets in Envoy's shared data, so that every worker thread draws from the same
//! bucket: a fixed table of slots, each updated only by compare-and-swap.
//!
//! Why a fixed table rather than one shared-data key per client:
//! - Envoy creates a missing key whatever CAS token a write carries, so two workers creating the
//!   same key at once could both write and one update would be lost. Every slot is created
//!   before the filter serves (by [`Table::prepare`], at configuration), holding nothing, so
//!   every later write is a CAS on an existing entry and no update is ever lost.
//! - Envoy never removes a shared-data key: one key per client would grow without bound. The
//!   table is `slots` entries, whatever the traffic; that is the cap on keys.
//!
//! A client key hashes to a home slot and may live in any of the `WINDOW` slots from there (open
//! addressing). Taking a token for a key already in the table is one read and one CAS. Placing
//! a new key happens under a lock held in its home slot, so that two workers never place the
//! same key twice (two buckets would double its limit). A slot whose bucket has refilled
//! completely holds nothing a fresh bucket would not: it is free for another key, reclaimed
//! when a key needs room and by the periodic [`Table::sweep`].
//!
//! At the cap (all `WINDOW` slots of a new key's home hold buckets still in use) the key gets no
//! bucket: [`TableError::Full`], which the limit handles as a request it cannot key.

use super::bucket::{Bucket, Rate, Take};
use crate::shared_name::Definition;
use crate::shared_store::{SharedStore, StoreError};

/// How many slots from its home a key may occupy.
pub const WINDOW: u64 = 16;

/// Attempts before giving up on a CAS race; each is a read and a write, and the other worker
/// finishes its update in microseconds.
pub const MAX_ATTEMPTS: u32 = 64;

/// Reads of a held placement lock before giving up. The holder is placing one key (a few
/// microseconds), but its thread may be preempted meanwhile: waiting up to a few milliseconds
/// in that rare case beats refusing the request.
pub const LOCK_SPINS: u32 = 20_000;

/// How long a placement lock lasts if its holder never releases it (its VM failed).
const LOCK_MS: u64 = 1000;

/// A key's identity in the table: a digest of the limit and the key's values, so that shared
/// memory holds no claim or address in clear.
pub type KeyId = [u8; 16];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableError {
    /// No room for a new key among its slots.
    Full,
    /// CAS races or a held lock outlasted [`MAX_ATTEMPTS`].
    Contention,
    Store(StoreError),
}

impl From<StoreError> for TableError {
    fn from(error: StoreError) -> Self {
        TableError::Store(error)
    }
}

/// Bookkeeping of one operation, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Effort {
    /// CAS writes refused because another worker wrote first (each was retried).
    pub cas_retries: u32,
    /// Slots reclaimed from idle buckets of other keys.
    pub reclaimed: u32,
    /// Reads spent waiting for another worker's placement lock.
    pub lock_waits: u32,
}

/// What a slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    /// Placement lock of the keys whose home this slot is; 0 when free.
    lock_until_ms: u64,
    occupant: Option<Occupant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Occupant {
    key: KeyId,
    /// The rate the bucket was written under; another makes it stale. The table's name covers
    /// its rate, so only a writer that named the table otherwise (an older build) can differ.
    rate: (u64, u64, u64),
    bucket: Bucket,
}

const FORMAT: u8 = 1;

impl Slot {
    const EMPTY: Slot = Slot { lock_until_ms: 0, occupant: None };

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(66);
        out.push(FORMAT);
        out.extend_from_slice(&self.lock_until_ms.to_le_bytes());
        match &self.occupant {
            None => out.push(0),
            Some(o) => {
                out.push(1);
                out.extend_from_slice(&o.key);
                for value in [o.rate.0, o.rate.1, o.rate.2, o.bucket.units, o.bucket.at_ms] {
                    out.extend_from_slice(&value.to_le_bytes());
                }
            }
        }
        out
    }

    /// `None` for bytes this version did not write: the slot is then treated as empty.
    fn decode(bytes: &[u8]) -> Option<Slot> {
        let u64_at = |at: usize| bytes.get(at..at + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
        if bytes.first() != Some(&FORMAT) {
            return None;
        }
        let lock_until_ms = u64_at(1)?;
        let occupant = match bytes.get(9)? {
            0 if bytes.len() == 10 => None,
            1 if bytes.len() == 66 => Some(Occupant {
                key: bytes.get(10..26)?.try_into().ok()?,
                rate: (u64_at(26)?, u64_at(34)?, u64_at(42)?),
                bucket: Bucket { units: u64_at(50)?, at_ms: u64_at(58)? },
            }),
            _ => return None,
        };
        Some(Slot { lock_until_ms, occupant })
    }
}

/// One limit's table.
#[derive(Debug, Clone)]
pub struct Table {
    prefix: String,
    slots: u64,
    rate: Rate,
}

enum Found {
    Mine {
        index: u64,
        slot: Slot,
        cas: u32,
    },
    /// Not there; the first slot that could take it (empty, idle or stale), if any.
    Absent {
        room: Option<(u64, Slot, u32)>,
    },
}

impl Table {
    /// `limit` is the limit's name; `definition` holds what else makes its buckets what they
    /// are (key spec, mode), to which the table adds its slots and rate. The table's entries
    /// are named `zt.rl/<limit>.<digest>/...` ([`crate::shared_name`]): a configuration sharing
    /// the `vm_id` with a limit of the same name but another definition has its own table, so
    /// neither resets nor drains the other's buckets, and a slot count of its own (a key's home
    /// slot depends on it). The same definition shares one table, as the workers of one
    /// configuration do. `slots` at least 1.
    pub(crate) fn new(limit: &str, mut definition: Definition, slots: u64, rate: Rate) -> Self {
        let slots = slots.max(1);
        definition.number(slots).number(rate.quota()).number(rate.window_ms()).number(rate.burst());
        Self::named(&definition.name(limit), slots, rate)
    }

    /// A table under the shared name given as is.
    pub(super) fn named(shared_name: &str, slots: u64, rate: Rate) -> Self {
        Self { prefix: format!("zt.rl/{shared_name}/"), slots: slots.max(1), rate }
    }

    /// `zt.rl/<limit>.<digest>/`: every entry of the table starts with it (slots by index,
    /// `ready`, `sweep`), for operators reading shared data.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn slots(&self) -> u64 {
        self.slots
    }

    fn slot_key(&self, index: u64) -> String {
        format!("{}{index}", self.prefix)
    }

    fn ready_key(&self) -> String {
        format!("{}ready", self.prefix)
    }

    fn rate_id(&self) -> (u64, u64, u64) {
        (self.rate.quota(), self.rate.window_ms(), self.rate.burst())
    }

    /// Creates the slots that do not exist yet. Called at configuration, before any request:
    /// it only ever writes empty slots, and only where nothing is stored, so VMs configuring at
    /// the same time cannot overwrite a bucket. A marker makes later VMs skip the scan.
    pub fn prepare(&self, store: &dyn SharedStore) -> Result<(), StoreError> {
        let marker = self.slots.to_string();
        if store.get(&self.ready_key()).is_some_and(|(value, _)| value == marker.as_bytes()) {
            return Ok(());
        }
        let empty = Slot::EMPTY.encode();
        for index in 0..self.slots {
            let key = self.slot_key(index);
            if store.get(&key).is_none() {
                store.set(&key, &empty, None)?;
            }
        }
        store.set(&self.ready_key(), marker.as_bytes(), None)
    }

    fn home(&self, key: &KeyId) -> u64 {
        u64::from_le_bytes(key.first_chunk::<8>().copied().unwrap_or_default()) % self.slots
    }

    fn window(&self) -> u64 {
        WINDOW.min(self.slots)
    }

    fn read(&self, store: &dyn SharedStore, index: u64) -> Option<(Slot, u32)> {
        let (bytes, cas) = store.get(&self.slot_key(index))?;
        Some((Slot::decode(&bytes).unwrap_or(Slot::EMPTY), cas))
    }

    fn write(&self, store: &dyn SharedStore, index: u64, slot: &Slot, cas: u32) -> Result<bool, StoreError> {
        match store.set(&self.slot_key(index), &slot.encode(), Some(cas)) {
            Ok(()) => Ok(true),
            Err(StoreError::CasMismatch) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Whether another key's bucket in this slot may be dropped: full again, or stale.
    fn reclaimable(&self, occupant: &Occupant, now_ms: u64) -> bool {
        occupant.rate != self.rate_id() || self.rate.is_idle(occupant.bucket, now_ms)
    }

    fn find(&self, store: &dyn SharedStore, key: &KeyId, now_ms: u64) -> Found {
        let home = self.home(key);
        let mut room = None;
        for step in 0..self.window() {
            let index = (home + step) % self.slots;
            // A slot missing from the store (not prepared) is skipped: writing it blind could
            // race. `prepare` creates them all.
            let Some((slot, cas)) = self.read(store, index) else { continue };
            match &slot.occupant {
                Some(occupant) if occupant.key == *key => return Found::Mine { index, slot, cas },
                Some(occupant) if !self.reclaimable(occupant, now_ms) => {}
                _ => {
                    if room.is_none() {
                        room = Some((index, slot, cas));
                    }
                }
            }
        }
        Found::Absent { room }
    }

    /// Takes one token from `key`'s bucket, placing the key first if it has none.
    pub fn take(&self, store: &dyn SharedStore, key: &KeyId, now_ms: u64) -> (Result<Take, TableError>, Effort) {
        let mut effort = Effort::default();
        let result = self.update(store, key, now_ms, &mut effort, |rate, bucket| rate.take(bucket, now_ms));
        (result, effort)
    }

    /// Returns the token a refused request took. A key no longer in the table (its bucket was
    /// reclaimed) has nothing to return.
    pub fn give_back(&self, store: &dyn SharedStore, key: &KeyId, now_ms: u64) -> Effort {
        let mut effort = Effort::default();
        for _ in 0..MAX_ATTEMPTS {
            let Found::Mine { index, mut slot, cas } = self.find(store, key, now_ms) else { break };
            let Some(occupant) = slot.occupant.as_mut() else { break };
            occupant.bucket = self.rate.give_back(occupant.bucket, now_ms);
            match self.write(store, index, &slot, cas) {
                Ok(true) | Err(_) => break,
                Ok(false) => effort.cas_retries += 1,
            }
        }
        effort
    }

    fn update(
        &self,
        store: &dyn SharedStore,
        key: &KeyId,
        now_ms: u64,
        effort: &mut Effort,
        apply: impl Fn(Rate, Bucket) -> Take,
    ) -> Result<Take, TableError> {
        for _ in 0..MAX_ATTEMPTS {
            match self.find(store, key, now_ms) {
                Found::Mine { index, mut slot, cas } => {
                    let Some(occupant) = slot.occupant.as_mut() else { continue };
                    let bucket =
                        if occupant.rate == self.rate_id() { occupant.bucket } else { self.rate.fresh(now_ms) };
                    let take = apply(self.rate, bucket);
                    occupant.bucket = take.bucket;
                    occupant.rate = self.rate_id();
                    if self.write(store, index, &slot, cas)? {
                        return Ok(take);
                    }
                    effort.cas_retries += 1;
                }
                Found::Absent { .. } => match self.place(store, key, now_ms, effort, &apply)? {
                    Some(take) => return Ok(take),
                    None => effort.cas_retries += 1,
                },
            }
        }
        Err(TableError::Contention)
    }

    /// Under the home slot's lock: looks again (another worker may have placed the key), then
    /// places it in the first slot with room. `None` when the lock or a slot was taken by
    /// another worker meanwhile: the caller retries.
    fn place(
        &self,
        store: &dyn SharedStore,
        key: &KeyId,
        now_ms: u64,
        effort: &mut Effort,
        apply: &impl Fn(Rate, Bucket) -> Take,
    ) -> Result<Option<Take>, TableError> {
        let home = self.home(key);
        if !self.lock(store, home, now_ms, effort)? {
            return Err(TableError::Contention);
        }
        let placed = (|| {
            let Found::Absent { room } = self.find(store, key, now_ms) else { return Ok(None) };
            let Some((index, mut slot, cas)) = room else { return Err(TableError::Full) };
            if slot.occupant.is_some() {
                effort.reclaimed += 1;
            }
            let take = apply(self.rate, self.rate.fresh(now_ms));
            slot.occupant = Some(Occupant { key: *key, rate: self.rate_id(), bucket: take.bucket });
            Ok(self.write(store, index, &slot, cas)?.then_some(take))
        })();
        self.unlock(store, home);
        placed
    }

    /// Takes the placement lock of `home`, waiting (bounded) while another worker holds it.
    fn lock(&self, store: &dyn SharedStore, home: u64, now_ms: u64, effort: &mut Effort) -> Result<bool, StoreError> {
        for _ in 0..LOCK_SPINS {
            // Only an unprepared table lacks its slots: refuse rather than write blind.
            let Some((mut slot, cas)) = self.read(store, home) else { return Err(StoreError::Unavailable) };
            if slot.lock_until_ms > now_ms {
                effort.lock_waits += 1;
                continue;
            }
            slot.lock_until_ms = now_ms.saturating_add(LOCK_MS).max(1);
            if self.write(store, home, &slot, cas)? {
                return Ok(true);
            }
            // The home slot's own bucket was updated meanwhile: read again.
            effort.cas_retries += 1;
        }
        Ok(false)
    }

    /// Bounded; a lock that could not be cleared expires after `LOCK_MS`.
    fn unlock(&self, store: &dyn SharedStore, home: u64) {
        for _ in 0..LOCK_SPINS {
            let Some((mut slot, cas)) = self.read(store, home) else { return };
            slot.lock_until_ms = 0;
            if !matches!(self.write(store, home, &slot, cas), Ok(false)) {
                return;
            }
        }
    }

    /// Frees the idle or stale buckets among `count` slots from `start`; answers how many.
    /// Placement reclaims such slots on demand too; the sweep keeps room ready and bounds how
    /// long a departed client's bucket lingers.
    pub fn sweep(&self, store: &dyn SharedStore, start: u64, count: u64, now_ms: u64) -> u64 {
        let mut freed = 0;
        for step in 0..count.min(self.slots) {
            let index = (start + step) % self.slots;
            let Some((mut slot, cas)) = self.read(store, index) else { continue };
            if slot.occupant.is_some_and(|o| self.reclaimable(&o, now_ms)) {
                slot.occupant = None;
                // A refused CAS means the bucket was just used: it stays.
                if matches!(self.write(store, index, &slot, cas), Ok(true)) {
                    freed += 1;
                }
            }
        }
        freed
    }

    /// How many slots hold a bucket (for tests and the operator tool).
    pub fn occupied(&self, store: &dyn SharedStore) -> u64 {
        (0..self.slots).filter(|i| self.read(store, *i).is_some_and(|(slot, _)| slot.occupant.is_some())).count() as u64
    }
}

/// The shared sweep schedule of a limit: which worker sweeps which slots when. Every VM ticks;
/// the one whose CAS moves the cursor sweeps the next chunk, so work is not repeated.
pub struct SweepSchedule {
    key: String,
}

impl SweepSchedule {
    /// The schedule of `table`'s sweep, kept beside its slots.
    pub fn new(table: &Table) -> Self {
        Self { key: format!("{}sweep", table.prefix) }
    }

    /// The chunk this VM should sweep now, if it is due and this VM won it.
    pub fn claim(&self, store: &dyn SharedStore, now_ms: u64, every_ms: u64, chunk: u64, slots: u64) -> Option<u64> {
        let (value, cas) = match store.get(&self.key) {
            Some((value, cas)) => (value, Some(cas)),
            None => (Vec::new(), None),
        };
        let text = String::from_utf8_lossy(&value);
        let mut fields = text.split(' ').map(|f| f.parse::<u64>().ok());
        let (due_ms, cursor) = match (fields.next().flatten(), fields.next().flatten()) {
            (Some(due), Some(cursor)) => (due, cursor),
            _ => (0, 0),
        };
        if now_ms < due_ms {
            return None;
        }
        let next = format!("{} {}", now_ms.saturating_add(every_ms), (cursor + chunk) % slots.max(1));
        store.set(&self.key, next.as_bytes(), cas).ok().map(|()| cursor % slots.max(1))
    }
}
