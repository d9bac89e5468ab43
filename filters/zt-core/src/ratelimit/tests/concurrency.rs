//! The shared table under real threads, with a store that behaves as Envoy's shared data:
//! one lock around a map, a process-wide CAS counter, and a write to a missing key that
//! creates it whatever CAS it carries.

use std::collections::HashMap;
use std::sync::{Arc, Barrier, Mutex};
use wasm_bindgen_test::wasm_bindgen_test;

use super::super::bucket::Rate;
use super::super::table::{Table, TableError};
use crate::shared_name::Definition;
use crate::shared_store::{MemoryStore, SharedStore, StoreError};

fn table(name: &str, slots: u64, rate: Rate) -> Table {
    Table::new(name, Definition::new("test/1"), slots, rate)
}

/// Value and CAS token per key, and the last token handed out.
type Entries = (HashMap<String, (Vec<u8>, u32)>, u32);

#[derive(Default)]
struct EnvoyLikeStore {
    entries: Mutex<Entries>,
}

impl SharedStore for EnvoyLikeStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        let entries = self.entries.lock().unwrap();
        entries.0.get(key).filter(|(value, _)| !value.is_empty()).cloned()
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        let mut entries = self.entries.lock().unwrap();
        let (map, next) = &mut *entries;
        *next = next.wrapping_add(1).max(1);
        let token = *next;
        match map.get_mut(key) {
            Some((_, current)) if cas.is_some_and(|cas| cas != *current) => Err(StoreError::CasMismatch),
            Some(entry) => {
                *entry = (value.to_vec(), token);
                Ok(())
            }
            None => {
                map.insert(key.to_owned(), (value.to_vec(), token));
                Ok(())
            }
        }
    }
}

fn key(n: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    id[8..].copy_from_slice(&n.to_le_bytes());
    id
}

const NOW: u64 = 1_700_000_000_000;

/// Threads race for the same buckets, including their first placement; no bucket ever admits
/// more than its burst, and every thread's admissions add up exactly.
#[test]
fn workers_racing_on_fresh_and_existing_keys_admit_exactly_the_limit() {
    const THREADS: usize = 4;
    const KEYS: u64 = 64;
    const BURST: u64 = 5;
    let rate = Rate::new(BURST, 60_000, BURST).unwrap();
    let table = Arc::new(table("race", 512, rate));
    let store = Arc::new(EnvoyLikeStore::default());
    table.prepare(&*store).unwrap();
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (table, store, barrier) = (Arc::clone(&table), Arc::clone(&store), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                let mut admitted = vec![0u64; KEYS as usize];
                let mut retries = 0u64;
                // Each thread asks more than the burst of every key, all threads the same
                // keys in the same order, so that first placements collide.
                for _ in 0..BURST * 2 {
                    for k in 0..KEYS {
                        let (result, effort) = table.take(&*store, &key(k), NOW);
                        retries += u64::from(effort.cas_retries) + u64::from(effort.lock_waits);
                        if result.unwrap().admitted {
                            admitted[k as usize] += 1;
                        }
                    }
                }
                (admitted, retries)
            })
        })
        .collect();
    let mut totals = vec![0u64; KEYS as usize];
    let mut retries = 0;
    for handle in handles {
        let (admitted, r) = handle.join().unwrap();
        retries += r;
        for (total, n) in totals.iter_mut().zip(admitted) {
            *total += n;
        }
    }
    assert!(totals.iter().all(|&n| n == BURST), "admitted per key: {totals:?}");
    assert_eq!(table.occupied(&*store), KEYS, "each key placed once");
    eprintln!("CAS retries under contention: {retries}");
}

#[wasm_bindgen_test(unsupported = test)]
fn a_full_window_refuses_new_keys_until_buckets_go_idle() {
    let rate = Rate::new(1, 1000, 1).unwrap();
    let table = table("small", 4, rate);
    let store = MemoryStore::default();
    table.prepare(&store).unwrap();
    for k in 0..4 {
        assert!(table.take(&store, &key(k), NOW).0.unwrap().admitted);
    }
    assert_eq!(table.take(&store, &key(99), NOW).0, Err(TableError::Full));
    // A second later every bucket is full again: idle, so reclaimed on demand.
    let (result, effort) = table.take(&store, &key(99), NOW + 1000);
    assert!(result.unwrap().admitted);
    assert_eq!(effort.reclaimed, 1);
}

#[wasm_bindgen_test(unsupported = test)]
fn the_sweep_frees_idle_buckets_only() {
    let rate = Rate::new(1, 1000, 1).unwrap();
    let table = table("sweep", 8, rate);
    let store = MemoryStore::default();
    table.prepare(&store).unwrap();
    table.take(&store, &key(1), NOW).0.unwrap();
    table.take(&store, &key(2), NOW + 500).0.unwrap();
    assert_eq!(table.sweep(&store, 0, 8, NOW + 1000), 1);
    assert_eq!(table.occupied(&store), 1);
    // Key 2's bucket is still in use: its next request is refused, not fresh.
    assert!(!table.take(&store, &key(2), NOW + 1000).0.unwrap().admitted);
    assert_eq!(table.sweep(&store, 0, 8, NOW + 10_000), 1);
    assert_eq!(table.occupied(&store), 0);
}

#[wasm_bindgen_test(unsupported = test)]
fn preparing_again_never_resets_a_bucket() {
    let rate = Rate::new(1, 60_000, 1).unwrap();
    let table = table("again", 8, rate);
    let store = MemoryStore::default();
    table.prepare(&store).unwrap();
    assert!(table.take(&store, &key(1), NOW).0.unwrap().admitted);
    // Another VM configuring later, with or without the marker.
    table.prepare(&store).unwrap();
    store.set(&format!("{}ready", table.prefix()), b"0", None).unwrap();
    table.prepare(&store).unwrap();
    assert!(!table.take(&store, &key(1), NOW).0.unwrap().admitted);
}

#[wasm_bindgen_test(unsupported = test)]
fn a_bucket_written_under_another_rate_starts_afresh() {
    // Under one shared name only by a writer that named the table otherwise (an older build).
    let store = MemoryStore::default();
    let old = Table::named("changed", 8, Rate::new(1, 60_000, 1).unwrap());
    old.prepare(&store).unwrap();
    assert!(old.take(&store, &key(1), NOW).0.unwrap().admitted);
    let new = Table::named("changed", 8, Rate::new(2, 60_000, 2).unwrap());
    new.prepare(&store).unwrap();
    let take = new.take(&store, &key(1), NOW).0.unwrap();
    assert!(take.admitted);
    assert_eq!(take.remaining, 1);
}

#[wasm_bindgen_test(unsupported = test)]
fn an_unprepared_table_refuses_rather_than_writing_blind() {
    let table = table("unprepared", 8, Rate::new(1, 1000, 1).unwrap());
    let store = MemoryStore::default();
    assert!(table.take(&store, &key(1), NOW).0.is_err());
    assert!(store.get(&format!("{}0", table.prefix())).is_none());
}
