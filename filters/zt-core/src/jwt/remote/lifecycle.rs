//! The life of one provider's remote keys in one VM: when to fetch, which worker fetches, what
//! a response means, and how the other workers pick the result up.
//!
//! Workers cooperate through shared data: the keys' JWKS with the time it was fetched
//! (`zt-jwt.jwks.<provider>.<digest>`), and a lease (`zt-jwt.jwks-lease.<provider>.<digest>`)
//! that one worker takes with compare-and-swap before fetching, so that one fetch serves every
//! worker. The digest names the issuer and key source ([`RemoteSource::shared_name`]), so that
//! another configuration on the same `vm_id` with a provider of the same name never reads
//! these keys. A failed fetch never drops keys: the last good ones stay until a fetch succeeds.

use std::fmt;
use std::rc::Rc;

use super::discovery;
use super::source::{FetchTarget, RemoteSource};
use crate::jwt::keys::{KeySet, KeyUse, MIN_REFRESH_HINT_SECONDS, SkippedKeys};
use crate::shared_store::SharedStore;
use crate::time::UnixSeconds;

/// A JWKS or discovery document larger than this is refused (real ones are a few KiB).
pub const MAX_DOCUMENT_BYTES: usize = 1 << 20;
/// Retry delays after failures double from 1 s up to this.
const MAX_RETRY_SECONDS: u64 = 60;

/// Index of a provider in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProviderId(pub usize);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchStage {
    Discovery,
    Jwks,
}

/// An HTTP GET the adapter must send, and to whom to hand the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    pub provider: ProviderId,
    pub stage: FetchStage,
    pub target: FetchTarget,
    pub timeout_ms: u64,
}

/// What a fetch response led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// New keys are in use (and published to the other workers).
    Installed { keys: usize, skipped: SkippedKeys },
    /// The discovery document named the JWKS: fetch it next.
    Next(FetchRequest),
    /// The keys in use (if any) stay; a retry is scheduled.
    Failed(FetchFailure),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchFailure {
    /// No response: connection failure, reset or timeout, or the call could not be sent.
    Transport,
    Status(u16),
    TooLarge(usize),
    Discovery(String),
    Jwks(String),
}

impl fmt::Display for FetchFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchFailure::Transport => f.write_str("no response (connection failed, reset or timed out)"),
            FetchFailure::Status(status) => write!(f, "HTTP status {status}"),
            FetchFailure::TooLarge(len) => write!(f, "document of {len} bytes exceeds {MAX_DOCUMENT_BYTES}"),
            FetchFailure::Discovery(why) => write!(f, "discovery document refused: {why}"),
            FetchFailure::Jwks(why) => write!(f, "JWKS refused: {why}"),
        }
    }
}

/// What a request may do when its provider has no remote keys in this VM yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeysWait {
    /// Another worker published keys: verify now.
    Synced,
    /// No fetch has finished yet (here or, as far as this VM knows, anywhere): hold the
    /// request until keys arrive or until this time (host clock, ms), then decide.
    Hold { until_ms: u64 },
    /// A fetch failed, or the start-up wait is over: refuse now.
    Refuse,
}

/// Beyond the fetch timeout, how long requests may wait for the first keys: the worker that
/// fetches may start a timer tick later than this one, and publishing takes a tick to spread.
const FIRST_KEYS_MARGIN_MS: u64 = 1_000;

/// What a token with an unknown `kid` may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KidRefetch {
    /// Another worker fetched newer keys: verify again now.
    Synced,
    /// Fetch now and verify again with the answer.
    Fetch(FetchRequest),
    /// A fetch ran too recently (or is running): the token is refused as it is.
    NotNow,
}

/// One provider's remote keys as one VM sees them.
pub struct RemoteKeys {
    id: ProviderId,
    /// Which JWKs of the fetched set verify tokens.
    key_use: KeyUse,
    /// `<provider>.<digest of issuer and key source>`: what shared-data keys are named by.
    shared_name: String,
    issuer: String,
    source: RemoteSource,
    keys: Option<Rc<KeySet>>,
    /// When the keys in use were fetched (by any worker); strictly increasing, 0 for none.
    version: u64,
    /// The JWKS location: configured, or learned by discovery.
    jwks_target: Option<FetchTarget>,
    next_fetch: UnixSeconds,
    failures: u32,
    /// Set while this VM waits for a response; a lost callback expires with it.
    in_flight_until: Option<UnixSeconds>,
    lease_until: Option<u64>,
    last_kid_refetch: Option<UnixSeconds>,
    /// The end of the start-up wait for the first keys (ms), set by the first request that
    /// found none: one window per VM, so a JWKS that stays down costs one wait, not one per
    /// request.
    first_keys_wait_until_ms: Option<u64>,
}

impl RemoteKeys {
    pub fn new(id: ProviderId, name: &str, issuer: &str, source: RemoteSource, key_use: KeyUse) -> Self {
        Self {
            id,
            key_use,
            shared_name: source.shared_name(name, issuer),
            issuer: issuer.to_owned(),
            jwks_target: source.configured_jwks().cloned(),
            source,
            keys: None,
            version: 0,
            next_fetch: UnixSeconds(0),
            failures: 0,
            in_flight_until: None,
            lease_until: None,
            last_kid_refetch: None,
            first_keys_wait_until_ms: None,
        }
    }

    /// The keys in use; `None` until a first fetch (by any worker) succeeded.
    pub fn keys(&self) -> Option<Rc<KeySet>> {
        self.keys.clone()
    }

    #[cfg(test)]
    pub(super) fn next_fetch(&self) -> UnixSeconds {
        self.next_fetch
    }

    pub(super) fn record_key(&self) -> String {
        format!("zt-jwt.jwks.{}", self.shared_name)
    }

    pub(super) fn lease_key(&self) -> String {
        format!("zt-jwt.jwks-lease.{}", self.shared_name)
    }

    /// Takes newer keys another worker published. Answers whether the keys changed.
    pub fn sync(&mut self, store: &dyn SharedStore) -> bool {
        let Some((record, _)) = store.get(&self.record_key()) else { return false };
        let Some((fetched_at, jwks)) = parse_record(&record) else { return false };
        if fetched_at <= self.version {
            return false;
        }
        match KeySet::from_remote_jwks(jwks, self.key_use) {
            Ok((keys, _)) => {
                self.install(keys, fetched_at);
                true
            }
            // The worker that published it checked it; a record we cannot read is left alone.
            Err(_) => false,
        }
    }

    /// A request found no keys: take published ones if any, else say whether to hold it
    /// (as Envoy's `jwt_authn` holds a request until its worker has keys) or refuse it. Only
    /// a fetch that failed, here, or a start-up wait that ran out refuses.
    pub fn without_keys(&mut self, store: &dyn SharedStore, now_ms: u64) -> KeysWait {
        if self.sync(store) {
            return KeysWait::Synced;
        }
        if self.keys.is_some() || self.failures > 0 {
            return KeysWait::Refuse;
        }
        let wait = self.source.policy().timeout_ms.saturating_add(FIRST_KEYS_MARGIN_MS);
        let until_ms = *self.first_keys_wait_until_ms.get_or_insert(now_ms.saturating_add(wait));
        if now_ms < until_ms { KeysWait::Hold { until_ms } } else { KeysWait::Refuse }
    }

    /// Whether a request held for this provider's first keys can be decided now: keys are
    /// there, or this VM's fetch failed (the request is refused at once, not at its deadline).
    pub fn settled(&self) -> bool {
        self.keys.is_some() || self.failures > 0
    }

    /// The periodic step (the root's timer): pick up published keys, and fetch when due and
    /// no other worker holds the lease. The first call fetches at once.
    pub fn poll(&mut self, store: &dyn SharedStore, now: UnixSeconds) -> (bool, Option<FetchRequest>) {
        let changed = self.sync(store);
        if self.in_flight(now) || now < self.next_fetch {
            return (changed, None);
        }
        // A scheduled refresh re-reads the discovery document: the `jwks_uri` may move.
        let stage = match self.source {
            RemoteSource::OidcDiscovery { .. } => FetchStage::Discovery,
            RemoteSource::Jwks { .. } => FetchStage::Jwks,
        };
        (changed, self.start(stage, store, now))
    }

    /// A token named a `kid` the keys lack: refetch, at most once per configured interval
    /// counted from the last fetch of any worker.
    pub fn unknown_kid(&mut self, store: &dyn SharedStore, now: UnixSeconds) -> KidRefetch {
        if self.sync(store) {
            return KidRefetch::Synced;
        }
        let interval = self.source.policy().unknown_kid_refetch_interval_seconds;
        let recent = |at: u64| at != 0 && now.0 < at.saturating_add(interval);
        if self.in_flight(now) || recent(self.version) || self.last_kid_refetch.is_some_and(|at| recent(at.0)) {
            return KidRefetch::NotNow;
        }
        self.last_kid_refetch = Some(now);
        let stage = if self.jwks_target.is_some() { FetchStage::Jwks } else { FetchStage::Discovery };
        self.start(stage, store, now).map_or(KidRefetch::NotNow, KidRefetch::Fetch)
    }

    /// Handles the answer to a request this VM sent; `None` when there was no response.
    pub fn on_response(
        &mut self,
        stage: FetchStage,
        response: Option<(u16, &[u8])>,
        store: &dyn SharedStore,
        now: UnixSeconds,
    ) -> FetchOutcome {
        let outcome = match self.read_response(stage, response) {
            Ok(Answer::Jwks(jwks, keys, skipped)) => {
                let fetched_at = now.0.max(self.version.saturating_add(1));
                let count = keys.len();
                self.install(keys, fetched_at);
                let mut record = fetched_at.to_string().into_bytes();
                record.push(b'\n');
                record.extend_from_slice(jwks);
                // If publishing fails the other workers fetch for themselves: slower, not wrong.
                let _ = store.set(&self.record_key(), &record, None);
                FetchOutcome::Installed { keys: count, skipped }
            }
            Ok(Answer::JwksAt(target)) => {
                self.jwks_target = Some(target.clone());
                self.in_flight_until = Some(self.deadline(now));
                self.extend_lease(store, now);
                return FetchOutcome::Next(self.request(FetchStage::Jwks, target));
            }
            Err(failure) => {
                self.failures = self.failures.saturating_add(1);
                let delay = 1u64.checked_shl(self.failures.saturating_sub(1).min(6)).unwrap_or(MAX_RETRY_SECONDS);
                self.next_fetch = UnixSeconds(now.0.saturating_add(delay.min(MAX_RETRY_SECONDS)));
                if stage == FetchStage::Jwks && matches!(self.source, RemoteSource::OidcDiscovery { .. }) {
                    self.jwks_target = None;
                }
                FetchOutcome::Failed(failure)
            }
        };
        self.in_flight_until = None;
        self.release_lease(store);
        outcome
    }

    fn read_response<'b>(
        &self,
        stage: FetchStage,
        response: Option<(u16, &'b [u8])>,
    ) -> Result<Answer<'b>, FetchFailure> {
        let (status, body) = response.ok_or(FetchFailure::Transport)?;
        if status != 200 {
            return Err(FetchFailure::Status(status));
        }
        if body.len() > MAX_DOCUMENT_BYTES {
            return Err(FetchFailure::TooLarge(body.len()));
        }
        match stage {
            FetchStage::Discovery => {
                let uri = discovery::jwks_uri(body, &self.issuer).map_err(FetchFailure::Discovery)?;
                let target = self.source.jwks_target_for(&uri).map_err(FetchFailure::Discovery)?;
                Ok(Answer::JwksAt(target))
            }
            FetchStage::Jwks => {
                let (keys, skipped) = KeySet::from_remote_jwks(body, self.key_use).map_err(FetchFailure::Jwks)?;
                Ok(Answer::Jwks(body, keys, skipped))
            }
        }
    }

    /// A SPIFFE bundle's refresh hint brings the next refresh forward, never past the
    /// configured `cache_duration_seconds` and never below [`MIN_REFRESH_HINT_SECONDS`].
    fn install(&mut self, keys: KeySet, fetched_at: u64) {
        let configured = self.source.policy().refresh_after();
        let refresh_after = keys
            .refresh_hint_seconds()
            .map_or(configured, |hint| hint.clamp(MIN_REFRESH_HINT_SECONDS.min(configured), configured));
        self.keys = Some(Rc::new(keys));
        self.version = fetched_at;
        self.failures = 0;
        self.next_fetch = UnixSeconds(fetched_at.saturating_add(refresh_after));
    }

    fn in_flight(&self, now: UnixSeconds) -> bool {
        self.in_flight_until.is_some_and(|until| now < until)
    }

    fn deadline(&self, now: UnixSeconds) -> UnixSeconds {
        UnixSeconds(now.0.saturating_add(self.source.policy().timeout_ms.div_ceil(1000)).saturating_add(1))
    }

    fn start(&mut self, stage: FetchStage, store: &dyn SharedStore, now: UnixSeconds) -> Option<FetchRequest> {
        let target = match stage {
            FetchStage::Jwks => self.jwks_target.clone()?,
            FetchStage::Discovery => match &self.source {
                RemoteSource::OidcDiscovery { discovery, .. } => discovery.clone(),
                RemoteSource::Jwks { .. } => return None,
            },
        };
        if !self.take_lease(store, now) {
            // Another worker is fetching; its result arrives through `sync`.
            return None;
        }
        self.in_flight_until = Some(self.deadline(now));
        Some(self.request(stage, target))
    }

    fn request(&self, stage: FetchStage, target: FetchTarget) -> FetchRequest {
        FetchRequest { provider: self.id, stage, target, timeout_ms: self.source.policy().timeout_ms }
    }

    /// The lease covers one fetch; a worker that never sees its answer (a VM torn down with
    /// the call in flight) delays the others by at most the fetch timeout and a second.
    fn take_lease(&mut self, store: &dyn SharedStore, now: UnixSeconds) -> bool {
        let key = self.lease_key();
        let cas = match store.get(&key) {
            Some((value, cas)) => {
                let held_until = std::str::from_utf8(&value).ok().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                if held_until > now.0 {
                    return false;
                }
                Some(cas)
            }
            None => None,
        };
        let until = self.deadline(now).0;
        let taken = store.set(&key, until.to_string().as_bytes(), cas).is_ok();
        self.lease_until = taken.then_some(until);
        taken
    }

    /// Keeps our lease for the second fetch of a discovery.
    fn extend_lease(&mut self, store: &dyn SharedStore, now: UnixSeconds) {
        let Some(held) = self.lease_until else { return };
        let key = self.lease_key();
        if let Some((value, cas)) = store.get(&key)
            && value == held.to_string().as_bytes()
        {
            let until = self.deadline(now).0;
            if store.set(&key, until.to_string().as_bytes(), Some(cas)).is_ok() {
                self.lease_until = Some(until);
            }
        }
    }

    fn release_lease(&mut self, store: &dyn SharedStore) {
        let Some(until) = self.lease_until.take() else { return };
        let key = self.lease_key();
        // Only our own lease: after it expired another worker may hold a new one.
        if let Some((value, cas)) = store.get(&key)
            && value == until.to_string().as_bytes()
        {
            let _ = store.set(&key, b"0", Some(cas));
        }
    }
}

enum Answer<'b> {
    Jwks(&'b [u8], KeySet, SkippedKeys),
    JwksAt(FetchTarget),
}

/// `<fetched_at>\n<jwks>`.
fn parse_record(record: &[u8]) -> Option<(u64, &[u8])> {
    let newline = record.iter().position(|b| *b == b'\n')?;
    let (head, rest) = record.split_at(newline);
    let fetched_at = std::str::from_utf8(head).ok()?.parse().ok()?;
    Some((fetched_at, rest.get(1..)?))
}
