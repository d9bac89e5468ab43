//! Records on their way to Envoy's log, several per log call. Envoy writes each log call to
//! its sink at once (unbuffered, under the log lock), which made the log call the largest
//! single cost of a record; a batch costs one call. A record waits at most `age_ms`; the
//! adapter writes what is left when the VM stops.
//!
//! Each record keeps its own line, starting with [`LOG_MARKER`]: the first follows Envoy's log
//! prefix, the others start their line, and a reader takes every line holding the marker.

use super::LOG_MARKER;
use super::chain::Sealed;

#[derive(Debug)]
pub struct LogBatch {
    records: u32,
    age_ms: u64,
    text: String,
    held: u32,
    /// When the oldest record held was added.
    since_ms: u64,
}

impl LogBatch {
    /// Up to `records` records per log call (1: every record at once), none held longer than
    /// `age_ms`.
    pub fn new(records: u32, age_ms: u64) -> Self {
        Self { records: records.max(1), age_ms, text: String::new(), held: 0, since_ms: 0 }
    }

    /// Adds a record; answers the text to write now when the batch is full.
    pub fn push(&mut self, sealed: &Sealed, now_ms: u64) -> Option<String> {
        if self.held == 0 {
            self.since_ms = now_ms;
        } else {
            self.text.push('\n');
        }
        self.text.push_str(LOG_MARKER);
        self.text.push_str(&sealed.text);
        self.held += 1;
        if self.held >= self.records { self.take() } else { None }
    }

    /// The text to write now when the oldest record held has waited `age_ms`.
    pub fn due(&mut self, now_ms: u64) -> Option<String> {
        if self.held > 0 && now_ms.saturating_sub(self.since_ms) >= self.age_ms { self.take() } else { None }
    }

    /// Everything held, whatever its age (the VM stops).
    pub fn take(&mut self) -> Option<String> {
        if self.held == 0 {
            return None;
        }
        self.held = 0;
        Some(std::mem::take(&mut self.text))
    }

    /// The VM stops: everything held, and from now on each record at once (streams still
    /// draining end after the root context's last callback, with no timer to write them).
    pub fn stop(&mut self) -> Option<String> {
        self.records = 1;
        self.take()
    }

    /// How often the adapter should look at [`LogBatch::due`]: `None` when records never wait.
    pub fn check_every_ms(&self) -> Option<u64> {
        (self.records > 1).then(|| (self.age_ms / 2).clamp(10, 1000))
    }
}

#[cfg(test)]
mod tests {
    use wasm_bindgen_test::wasm_bindgen_test;

    use super::*;

    fn sealed(seq: u64) -> Sealed {
        Sealed { seq, text: format!(r#"{{"seq":{seq}}}"#) }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_full_batch_is_one_text_with_a_marked_line_per_record() {
        let mut batch = LogBatch::new(3, 200);
        assert_eq!(batch.push(&sealed(0), 1_000), None);
        assert_eq!(batch.push(&sealed(1), 1_001), None);
        let text = batch.push(&sealed(2), 1_002).unwrap();
        assert_eq!(text, "zt.audit.v1 {\"seq\":0}\nzt.audit.v1 {\"seq\":1}\nzt.audit.v1 {\"seq\":2}");
        assert_eq!(batch.take(), None, "nothing held after a full batch is written");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn one_record_per_batch_writes_each_at_once() {
        let mut batch = LogBatch::new(1, 200);
        assert_eq!(batch.push(&sealed(0), 0).as_deref(), Some("zt.audit.v1 {\"seq\":0}"));
        assert_eq!(batch.check_every_ms(), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn once_stopped_every_record_is_written_at_once() {
        let mut batch = LogBatch::new(32, 200);
        batch.push(&sealed(0), 0);
        assert_eq!(batch.stop().map(|t| t.lines().count()), Some(1));
        assert_eq!(batch.push(&sealed(1), 1).as_deref(), Some("zt.audit.v1 {\"seq\":1}"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_record_waits_at_most_the_age_from_the_oldest() {
        let mut batch = LogBatch::new(32, 200);
        assert_eq!(batch.check_every_ms(), Some(100));
        batch.push(&sealed(0), 1_000);
        batch.push(&sealed(1), 1_150);
        assert_eq!(batch.due(1_199), None);
        assert_eq!(batch.due(1_200).map(|t| t.lines().count()), Some(2));
        assert_eq!(batch.due(5_000), None, "an empty batch is never due");
        batch.push(&sealed(2), 5_000);
        assert_eq!(batch.due(5_100), None, "the age restarts with the next record");
        assert_eq!(batch.take().map(|t| t.lines().count()), Some(1));
    }
}
