//! The host services one test's filters share: a clock the test sets, captured logs, and the
//! shared-data store with queues and metrics. Callouts are in `callouts.rs`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use proxy_wasm_host::abi::v0_2_1::types::{LogLevel, MetricType, Status};
use proxy_wasm_host::abi::v0_2_1::{
    Clock, InMemoryStore, Invocation, LogContext, LogSink, MetricId, QueueEnqueued, QueueId, SharedServices,
    SharedValue,
};

/// Locks a mutex, taking the data even if a panicking test poisoned it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The clock behind `proxy_get_current_time_nanoseconds` and WASI `clock_time_get`. It moves
/// only when the test moves it. Starts at 2023-11-14T22:13:20Z.
#[derive(Debug)]
pub struct TestClock {
    nanos: AtomicU64,
}

impl Default for TestClock {
    fn default() -> Self {
        Self { nanos: AtomicU64::new(1_700_000_000 * 1_000_000_000) }
    }
}

impl TestClock {
    pub fn set_unix_seconds(&self, seconds: u64) {
        self.nanos.store(seconds.saturating_mul(1_000_000_000), Ordering::SeqCst);
    }

    pub fn unix_seconds(&self) -> u64 {
        self.nanos.load(Ordering::SeqCst) / 1_000_000_000
    }

    pub(crate) fn now_nanos(&self) -> u64 {
        self.nanos.load(Ordering::SeqCst)
    }

    pub fn set_nanos(&self, nanos: u64) {
        self.nanos.store(nanos, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn realtime_nanos(&self) -> u64 {
        self.now_nanos()
    }

    fn monotonic_nanos(&self) -> u64 {
        self.now_nanos()
    }
}

/// One line a filter logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct LogCapture {
    lines: Mutex<Vec<LogLine>>,
}

impl LogCapture {
    pub fn lines(&self) -> Vec<LogLine> {
        lock(&self.lines).clone()
    }

    /// A line from the harness itself (what Envoy would log, or do, that no filter logged).
    pub(crate) fn note(&self, level: LogLevel, message: String) {
        lock(&self.lines).push(LogLine { level, message });
    }
}

impl LogSink for LogCapture {
    fn log(&self, _: LogContext<'_>, level: LogLevel, message: &[u8]) {
        lock(&self.lines).push(LogLine { level, message: String::from_utf8_lossy(message).into_owned() });
    }
}

/// Shared data and queues from the crate's in-memory store (Envoy's per-`vm_id` semantics,
/// CAS included); metrics kept here so that tests can read them by name. As in Envoy, a metric
/// name is process-wide: defining it again answers the same id.
pub struct HarnessStore {
    inner: InMemoryStore,
    metrics: Mutex<Vec<(String, MetricType, i64)>>,
    /// Every value recorded in each histogram, by name, in order.
    samples: Mutex<BTreeMap<String, Vec<u64>>>,
    /// Queues that received an item since the harness last delivered `on_queue_ready`.
    pub(crate) enqueued: Arc<Mutex<Vec<QueueId>>>,
    /// Calls into the process-wide services by ABI function: shared data goes through one
    /// mutex for every VM in Envoy, so its calls are part of the cost census.
    calls: Mutex<BTreeMap<&'static str, u64>>,
}

impl HarnessStore {
    pub fn new() -> Self {
        let enqueued: Arc<Mutex<Vec<QueueId>>> = Arc::default();
        let observed = Arc::clone(&enqueued);
        let inner = InMemoryStore::new()
            .with_enqueue_observer(Arc::new(move |event: QueueEnqueued<'_>| lock(&observed).push(event.queue)));
        Self { inner, metrics: Mutex::new(Vec::new()), samples: Mutex::default(), enqueued, calls: Mutex::default() }
    }

    /// How many times each service function was called so far.
    pub fn calls(&self) -> BTreeMap<&'static str, u64> {
        lock(&self.calls).clone()
    }

    fn count(&self, function: &'static str) {
        *lock(&self.calls).entry(function).or_default() += 1;
    }

    pub fn metric(&self, name: &str) -> Option<i64> {
        lock(&self.metrics).iter().find(|(n, _, _)| n == name).map(|(_, _, value)| *value)
    }

    /// The values recorded in histogram `name` (Envoy keeps their distribution; tests see each).
    pub fn histogram(&self, name: &str) -> Vec<u64> {
        lock(&self.samples).get(name).cloned().unwrap_or_default()
    }

    pub fn metric_names(&self) -> Vec<String> {
        lock(&self.metrics).iter().map(|(n, _, _)| n.clone()).collect()
    }

    fn with_metric<R>(
        &self,
        metric: MetricId,
        f: impl FnOnce(&mut (String, MetricType, i64)) -> R,
    ) -> Result<R, Status> {
        let index =
            usize::try_from(metric.get()).map_err(|_| Status::NotFound)?.checked_sub(1).ok_or(Status::NotFound)?;
        lock(&self.metrics).get_mut(index).map(f).ok_or(Status::NotFound)
    }
}

impl SharedServices for HarnessStore {
    fn get_shared_data(&self, call: Invocation, vm_id: &[u8], key: &[u8]) -> Result<SharedValue, Status> {
        self.count("proxy_get_shared_data");
        self.inner.get_shared_data(call, vm_id, key)
    }

    fn set_shared_data(
        &self,
        call: Invocation,
        vm_id: &[u8],
        key: &[u8],
        value: &[u8],
        cas: Option<u32>,
    ) -> Result<(), Status> {
        self.count("proxy_set_shared_data");
        self.inner.set_shared_data(call, vm_id, key, value, cas)
    }

    fn register_shared_queue(&self, call: Invocation, vm_id: &[u8], name: &[u8]) -> Result<QueueId, Status> {
        self.inner.register_shared_queue(call, vm_id, name)
    }

    fn resolve_shared_queue(&self, call: Invocation, vm_id: &[u8], name: &[u8]) -> Result<QueueId, Status> {
        self.inner.resolve_shared_queue(call, vm_id, name)
    }

    fn enqueue_shared_queue(&self, call: Invocation, queue: QueueId, value: &[u8]) -> Result<(), Status> {
        self.count("proxy_enqueue_shared_queue");
        self.inner.enqueue_shared_queue(call, queue, value)
    }

    fn dequeue_shared_queue(&self, call: Invocation, queue: QueueId) -> Result<Vec<u8>, Status> {
        self.inner.dequeue_shared_queue(call, queue)
    }

    fn define_metric(&self, _: Invocation, _: &[u8], kind: MetricType, name: &[u8]) -> Result<MetricId, Status> {
        let name = String::from_utf8_lossy(name).into_owned();
        let mut metrics = lock(&self.metrics);
        let index = match metrics.iter().position(|(n, _, _)| *n == name) {
            Some(index) => index,
            None => {
                metrics.push((name, kind, 0));
                metrics.len() - 1
            }
        };
        let id = u32::try_from(index + 1).map_err(|_| Status::InternalFailure)?;
        MetricId::try_from(id).map_err(|_| Status::InternalFailure)
    }

    fn record_metric(&self, _: Invocation, metric: MetricId, value: u64) -> Result<(), Status> {
        self.count("proxy_record_metric");
        // A gauge takes the value; a histogram (as in Envoy) records it as one more sample.
        let histogram = self.with_metric(metric, |m| {
            m.2 = i64::try_from(value).unwrap_or(i64::MAX);
            (m.1 == MetricType::Histogram).then(|| m.0.clone())
        })?;
        if let Some(name) = histogram {
            lock(&self.samples).entry(name).or_default().push(value);
        }
        Ok(())
    }

    fn increment_metric(&self, _: Invocation, metric: MetricId, delta: i64) -> Result<(), Status> {
        self.count("proxy_increment_metric");
        // Envoy refuses to decrement a counter.
        self.with_metric(metric, |m| {
            if m.1 == MetricType::Counter && delta < 0 {
                Err(Status::BadArgument)
            } else {
                m.2 = m.2.saturating_add(delta);
                Ok(())
            }
        })?
    }

    fn get_metric(&self, _: Invocation, metric: MetricId) -> Result<u64, Status> {
        self.count("proxy_get_metric");
        self.with_metric(metric, |m| u64::try_from(m.2).unwrap_or(0))
    }
}
