//! Data shared by every VM of a filter across Envoy's workers (proxy-wasm shared data), as a
//! small trait so that the core decides what to store and the adapter only carries bytes.

/// A process-wide key-value store with compare-and-swap (Envoy's shared data per `vm_id`).
pub trait SharedStore {
    /// The value and its CAS token. `None` when absent; Envoy stores a removal as an empty
    /// value, so an empty value is absent too.
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)>;

    /// Stores `value`. With `cas`, only if the entry still has that token. Envoy creates a
    /// missing key whatever `cas` says, so a first write can race: callers must tolerate that.
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// Another VM wrote the entry since it was read.
    CasMismatch,
    /// The host refused the write.
    Unavailable,
}

/// An in-memory store for tests of the core.
#[cfg(test)]
#[derive(Default)]
pub struct MemoryStore {
    entries: std::cell::RefCell<std::collections::HashMap<String, (Vec<u8>, u32)>>,
    next_cas: std::cell::Cell<u32>,
}

#[cfg(test)]
impl SharedStore for MemoryStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.entries.borrow().get(key).filter(|(value, _)| !value.is_empty()).cloned()
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        let mut entries = self.entries.borrow_mut();
        if let (Some(cas), Some((_, current))) = (cas, entries.get(key))
            && cas != *current
        {
            return Err(StoreError::CasMismatch);
        }
        self.next_cas.set(self.next_cas.get().wrapping_add(1).max(1));
        entries.insert(key.to_owned(), (value.to_vec(), self.next_cas.get()));
        Ok(())
    }
}
