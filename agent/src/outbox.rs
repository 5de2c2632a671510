//! The telemetry queue: every record is written here before it is sent, and deleted only when
//! the control plane says it has stored it.
//!
//! Records get increasing sequence numbers within a *stream* (a random id made when the queue
//! is created). A batch goes up from the head of the queue; the control plane answers
//! `down/stored` with the range it stored, and the records up to that range's end are deleted.
//! Nothing is deleted on the broker's PUBACK alone: the embedded broker keeps messages in
//! memory only, so a server stopping between PUBACK and its store would lose them.
//!
//! On disk (`<dir>/queue.jsonl` and `<dir>/state.json`):
//! - `queue.jsonl` is appended with one JSON line per record (synced per line when
//!   [`OutboxConfig::sync`] is set; an agent killed without a sync loses nothing the kernel
//!   already has, only a power cut can). A line cut short by a crash is dropped on open.
//! - `state.json` holds the stream id, the sequence number through which every record is gone
//!   (stored or dropped) and the count dropped; it is replaced atomically after every
//!   acknowledgement and every drop. Lines at or below that number are ignored on open, and
//!   the queue file is rewritten without them once it holds more dead lines than live bytes.
//!
//! The budget bounds the bytes of queued records (their JSON). When a new record does not fit,
//! the **oldest** records are dropped until it does: the newest state of a screen matters
//! more to operators and alert rules than its oldest. Every drop is counted exactly, persisted,
//! and reported with each batch (`dropped`), so the control plane can say how many records a
//! stream lost. The queue file stays below twice the budget plus 64 KiB.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use luach_schemas::messages::{MAX_TELEMETRY_RECORDS, Stored, TelemetryBatch, TelemetryData, TelemetryRecord};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// Default bytes of queued records a screen keeps while it cannot reach the control plane
/// (about 60,000 metrics records: six weeks of one per minute).
pub const DEFAULT_BUDGET_BYTES: u64 = 16 * 1024 * 1024;
/// The smallest budget accepted: a few records.
pub const MIN_BUDGET_BYTES: u64 = 1024;
/// Most bytes of records in one batch (the envelope must stay under the payload limit).
const MAX_BATCH_BYTES: usize = luach_schemas::MAX_PAYLOAD_BYTES * 3 / 4;
/// Dead bytes tolerated in the queue file beyond the live ones before it is rewritten.
const SLACK_BYTES: u64 = 64 * 1024;

const QUEUE_FILE: &str = "queue.jsonl";
const STATE_FILE: &str = "state.json";

/// How a queue keeps its records.
#[derive(Debug, Clone, Copy)]
pub struct OutboxConfig {
    /// Bytes of queued records kept; the oldest are dropped beyond it.
    pub budget_bytes: u64,
    /// Sync every appended record to the disk (survives a power cut, not only a crash).
    pub sync: bool,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            budget_bytes: DEFAULT_BUDGET_BYTES,
            sync: true,
        }
    }
}

/// What a queue holds, for logs and the simulator's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxStats {
    pub stream: String,
    /// Records waiting to be stored.
    pub queued: u64,
    /// Records dropped because the budget was full, since the stream began.
    pub dropped: u64,
    /// The sequence number the next record gets.
    pub next_seq: u64,
}

/// The persisted part of the queue's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    stream: String,
    /// Every record with a sequence number up to this one is gone (stored or dropped).
    gone_through: u64,
    dropped: u64,
}

#[derive(Debug)]
struct Queued {
    record: TelemetryRecord,
    bytes: u64,
}

#[derive(Debug)]
struct Files {
    queue: PathBuf,
    state: PathBuf,
    /// Bytes in the queue file, live or dead.
    file_bytes: u64,
    sync: bool,
}

#[derive(Debug)]
struct Inner {
    state: State,
    next_seq: u64,
    queue: VecDeque<Queued>,
    live_bytes: u64,
    budget: u64,
    files: Option<Files>,
}

/// A screen's telemetry queue, shared by whatever makes records and the MQTT session.
#[derive(Debug, Clone)]
pub struct Outbox {
    inner: Arc<Mutex<Inner>>,
    notify: Arc<Notify>,
}

fn new_stream() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_owned()
}

fn io_context(path: &Path, e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("{}: {e}", path.display()))
}

impl Outbox {
    /// A queue kept in memory only (simulated screens without a state directory).
    pub fn in_memory(budget_bytes: u64) -> Self {
        Self::from_inner(Inner {
            state: State {
                stream: new_stream(),
                gone_through: 0,
                dropped: 0,
            },
            next_seq: 1,
            queue: VecDeque::new(),
            live_bytes: 0,
            budget: budget_bytes.max(MIN_BUDGET_BYTES),
            files: None,
        })
    }

    /// The queue kept in `dir` (created, private to the agent), with what earlier runs left.
    pub fn open(dir: &Path, config: OutboxConfig) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| io_context(dir, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| io_context(dir, e))?;
        }
        let queue_path = dir.join(QUEUE_FILE);
        let state_path = dir.join(STATE_FILE);
        let state = match std::fs::read(&state_path) {
            Ok(bytes) => serde_json::from_slice::<State>(&bytes).map_err(|e| io_context(&state_path, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // A new stream: whatever an earlier queue file held belongs to no stream.
                let _ = std::fs::remove_file(&queue_path);
                State {
                    stream: new_stream(),
                    gone_through: 0,
                    dropped: 0,
                }
            }
            Err(e) => return Err(io_context(&state_path, e)),
        };
        let mut queue = VecDeque::new();
        let mut live_bytes = 0;
        let mut good_len = 0u64;
        let mut next_seq = state.gone_through + 1;
        match std::fs::read(&queue_path) {
            Ok(bytes) => {
                for line in bytes.split_inclusive(|b| *b == b'\n') {
                    // A line without its newline, or unreadable, was cut short by a crash:
                    // it and anything after it are discarded.
                    let Some(text) = line.strip_suffix(b"\n") else { break };
                    let Ok(record) = serde_json::from_slice::<TelemetryRecord>(text) else {
                        break;
                    };
                    good_len += line.len() as u64;
                    if record.seq < next_seq {
                        continue;
                    }
                    next_seq = record.seq + 1;
                    let bytes = text.len() as u64;
                    live_bytes += bytes;
                    queue.push_back(Queued { record, bytes });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_context(&queue_path, e)),
        }
        let mut inner = Inner {
            state,
            next_seq,
            queue,
            live_bytes,
            budget: config.budget_bytes.max(MIN_BUDGET_BYTES),
            files: Some(Files {
                queue: queue_path.clone(),
                state: state_path,
                file_bytes: good_len,
                sync: config.sync,
            }),
        };
        // Cut a torn tail, then write the state (new streams, or a smaller budget's drops).
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&queue_path)
            .map_err(|e| io_context(&queue_path, e))?;
        file.set_len(good_len).map_err(|e| io_context(&queue_path, e))?;
        inner.make_room(0);
        inner.save_state()?;
        inner.compact_if_sparse();
        Ok(Self::from_inner(inner))
    }

    fn from_inner(inner: Inner) -> Self {
        Self {
            inner: Arc::new(Mutex::new(inner)),
            notify: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues a record made at `at` and returns its sequence number. The record is on disk
    /// (or in memory, for an in-memory queue) when this returns.
    pub fn push(&self, at: DateTime<Utc>, data: TelemetryData) -> u64 {
        let seq = self.lock().push(at, data);
        self.notify.notify_one();
        seq
    }

    /// Waits until a record is pushed (at most one wake-up is remembered).
    pub async fn pushed(&self) {
        self.notify.notified().await;
    }

    /// The oldest queued records, as one batch within the message size limit.
    pub fn batch(&self) -> Option<TelemetryBatch> {
        let inner = self.lock();
        let mut bytes = 0;
        let mut records = Vec::new();
        for q in inner.queue.iter().take(MAX_TELEMETRY_RECORDS) {
            bytes += q.bytes as usize + 1;
            if bytes > MAX_BATCH_BYTES && !records.is_empty() {
                break;
            }
            records.push(q.record.clone());
        }
        (!records.is_empty()).then(|| TelemetryBatch {
            stream: inner.state.stream.clone(),
            records,
            dropped: inner.state.dropped,
        })
    }

    /// Deletes what the control plane stored. True when the queue's head moved: the range
    /// belongs to this stream and starts at or before the head (a stale or foreign answer is
    /// ignored, and the records it names are sent again).
    pub fn stored(&self, stored: &Stored) -> bool {
        self.lock().stored(stored)
    }

    pub fn stats(&self) -> OutboxStats {
        let inner = self.lock();
        OutboxStats {
            stream: inner.state.stream.clone(),
            queued: inner.queue.len() as u64,
            dropped: inner.state.dropped,
            next_seq: inner.next_seq,
        }
    }
}

impl Inner {
    fn push(&mut self, at: DateTime<Utc>, data: TelemetryData) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        let record = TelemetryRecord { seq, at, data };
        let line = match serde_json::to_vec(&record) {
            Ok(line) => line,
            Err(e) => {
                // Cannot happen for these types; counted as a drop so the stream stays whole.
                tracing::error!(error = %e, "a telemetry record could not be encoded; dropped");
                self.drop_through(seq, 1);
                return seq;
            }
        };
        let bytes = line.len() as u64;
        if bytes > self.budget {
            tracing::warn!(
                bytes,
                budget = self.budget,
                "a telemetry record larger than the budget was dropped"
            );
            self.drop_through(seq, 1);
            return seq;
        }
        let dropped_before = self.state.dropped;
        self.make_room(bytes);
        if let Some(files) = &mut self.files {
            let mut line = line;
            line.push(b'\n');
            match append(&files.queue, &line, files.sync) {
                Ok(()) => files.file_bytes += line.len() as u64,
                Err(e) => {
                    // A full or broken disk: the record cannot be kept, and is counted.
                    tracing::warn!(path = %files.queue.display(), error = %e, "a telemetry record could not be queued; dropped");
                    self.drop_through(seq, 1);
                    return seq;
                }
            }
        }
        self.live_bytes += bytes;
        self.queue.push_back(Queued { record, bytes });
        if self.state.dropped != dropped_before {
            self.persist();
        }
        seq
    }

    /// Drops the oldest records until `bytes` more fit in the budget.
    fn make_room(&mut self, bytes: u64) {
        let mut dropped = 0;
        let mut through = self.state.gone_through;
        while self.live_bytes + bytes > self.budget {
            let Some(old) = self.queue.pop_front() else { break };
            self.live_bytes -= old.bytes;
            through = old.record.seq;
            dropped += 1;
        }
        if dropped > 0 {
            tracing::warn!(
                dropped,
                through,
                "telemetry budget full; the oldest records were dropped"
            );
            self.state.dropped += dropped;
            self.state.gone_through = through;
        }
    }

    /// Counts `count` more records dropped, through `seq` when the queue is empty before it.
    fn drop_through(&mut self, seq: u64, count: u64) {
        self.state.dropped += count;
        if self.queue.is_empty() {
            self.state.gone_through = seq;
        }
        self.persist();
    }

    fn stored(&mut self, stored: &Stored) -> bool {
        let Some(head) = self.queue.front().map(|q| q.record.seq) else {
            return false;
        };
        if stored.stream != self.state.stream
            || stored.first > head
            || stored.last < head
            || stored.last >= self.next_seq
        {
            return false;
        }
        while self.queue.front().is_some_and(|q| q.record.seq <= stored.last) {
            if let Some(q) = self.queue.pop_front() {
                self.live_bytes -= q.bytes;
            }
        }
        self.state.gone_through = stored.last;
        self.persist();
        self.compact_if_sparse();
        true
    }

    fn persist(&mut self) {
        if let Err(e) = self.save_state() {
            tracing::warn!(error = %e, "the telemetry queue state could not be saved");
        }
    }

    fn save_state(&self) -> std::io::Result<()> {
        let Some(files) = &self.files else { return Ok(()) };
        let bytes = serde_json::to_vec(&self.state).map_err(std::io::Error::other)?;
        luach_pki::write_atomic(&files.state, &bytes, luach_pki::FileMode::Private)
            .map_err(|e| io_context(&files.state, e))
    }

    /// Rewrites the queue file with the live records alone once dead lines outweigh them.
    fn compact_if_sparse(&mut self) {
        let Some(files) = &mut self.files else { return };
        if files.file_bytes <= 2 * self.live_bytes + SLACK_BYTES {
            return;
        }
        let mut out = Vec::with_capacity(usize::try_from(self.live_bytes).unwrap_or(0) + self.queue.len());
        for q in &self.queue {
            if serde_json::to_writer(&mut out, &q.record).is_err() {
                return;
            }
            out.push(b'\n');
        }
        match luach_pki::write_atomic(&files.queue, &out, luach_pki::FileMode::Private) {
            Ok(()) => files.file_bytes = out.len() as u64,
            Err(e) => {
                tracing::warn!(path = %files.queue.display(), error = %e, "the telemetry queue could not be compacted")
            }
        }
    }
}

fn append(path: &Path, line: &[u8], sync: bool) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(line)?;
    if sync {
        file.sync_data()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u64) -> TelemetryData {
        TelemetryData::Event {
            name: "tick".into(),
            detail: Some(format!("{n:04}")),
        }
    }

    fn seqs(batch: &TelemetryBatch) -> Vec<u64> {
        batch.records.iter().map(|r| r.seq).collect()
    }

    fn ack(outbox: &Outbox, batch: &TelemetryBatch) -> bool {
        let (first, last) = batch.range();
        outbox.stored(&Stored {
            stream: batch.stream.clone(),
            first,
            last,
        })
    }

    fn config(budget_bytes: u64) -> OutboxConfig {
        OutboxConfig {
            budget_bytes,
            sync: false,
        }
    }

    #[test]
    fn records_survive_restarts_until_stored() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let outbox = Outbox::open(dir.path(), config(DEFAULT_BUDGET_BYTES)).unwrap_or_else(|e| panic!("{e}"));
        for n in 1..=5 {
            assert_eq!(outbox.push(Utc::now(), event(n)), n);
        }
        let first = outbox.batch().unwrap_or_else(|| panic!("a batch"));
        assert_eq!(seqs(&first), [1, 2, 3, 4, 5]);
        assert!(ack(
            &outbox,
            &TelemetryBatch {
                records: first.records[..2].to_vec(),
                ..first.clone()
            }
        ));
        let stream = first.stream.clone();
        drop(outbox);

        let again = Outbox::open(dir.path(), config(DEFAULT_BUDGET_BYTES)).unwrap_or_else(|e| panic!("{e}"));
        let batch = again.batch().unwrap_or_else(|| panic!("a batch"));
        assert_eq!(batch.stream, stream);
        assert_eq!(seqs(&batch), [3, 4, 5]);
        assert_eq!(again.push(Utc::now(), event(6)), 6);
        // A stale answer (already stored) and a foreign one move nothing.
        assert!(!again.stored(&Stored {
            stream: stream.clone(),
            first: 1,
            last: 2
        }));
        assert!(!again.stored(&Stored {
            stream: "otherstream".into(),
            first: 3,
            last: 6
        }));
        assert!(!again.stored(&Stored {
            stream: stream.clone(),
            first: 3,
            last: 99
        }));
        assert!(again.stored(&Stored {
            stream,
            first: 3,
            last: 6
        }));
        assert!(again.batch().is_none());
        assert_eq!(again.stats().queued, 0);
    }

    #[test]
    fn a_torn_line_is_cut_and_numbering_goes_on() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let outbox = Outbox::open(dir.path(), config(DEFAULT_BUDGET_BYTES)).unwrap_or_else(|e| panic!("{e}"));
        outbox.push(Utc::now(), event(1));
        outbox.push(Utc::now(), event(2));
        drop(outbox);
        append(&dir.path().join(QUEUE_FILE), b"{\"seq\":3,\"at\":", false).unwrap_or_else(|e| panic!("{e}"));
        let again = Outbox::open(dir.path(), config(DEFAULT_BUDGET_BYTES)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.stats().queued, 2);
        assert_eq!(again.push(Utc::now(), event(3)), 3);
        drop(again);
        let third = Outbox::open(dir.path(), config(DEFAULT_BUDGET_BYTES)).unwrap_or_else(|e| panic!("{e}"));
        let batch = third.batch().unwrap_or_else(|| panic!("a batch"));
        assert_eq!(seqs(&batch), [1, 2, 3]);
    }

    #[test]
    fn a_full_budget_drops_the_oldest_and_counts_each() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let budget = 2 * MIN_BUDGET_BYTES;
        let outbox = Outbox::open(dir.path(), config(budget)).unwrap_or_else(|e| panic!("{e}"));
        let total = 100;
        for n in 1..=total {
            outbox.push(Utc::now(), event(n));
        }
        let stats = outbox.stats();
        assert!(stats.queued > 0 && stats.queued < total, "{stats:?}");
        assert_eq!(stats.queued + stats.dropped, total);
        let batch = outbox.batch().unwrap_or_else(|| panic!("a batch"));
        assert_eq!(batch.dropped, stats.dropped);
        assert_eq!(batch.records[0].seq, stats.dropped + 1, "the oldest went first");
        assert_eq!(batch.records.last().map(|r| r.seq), Some(total));
        // The count and the position survive a restart; the file stays bounded.
        drop(outbox);
        let again = Outbox::open(dir.path(), config(budget)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.stats(), stats);
        let file = std::fs::metadata(dir.path().join(QUEUE_FILE)).map_or(0, |m| m.len());
        assert!(file <= 2 * budget + SLACK_BYTES, "{file} bytes");
        // A smaller budget on the next start drops more, still counted.
        drop(again);
        let smaller = Outbox::open(dir.path(), config(budget / 2)).unwrap_or_else(|e| panic!("{e}"));
        let now = smaller.stats();
        assert_eq!(now.queued + now.dropped, total);
        assert!(now.dropped > stats.dropped);
    }

    #[test]
    fn batches_respect_the_message_limits_and_the_file_is_compacted() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let outbox = Outbox::open(dir.path(), config(DEFAULT_BUDGET_BYTES)).unwrap_or_else(|e| panic!("{e}"));
        for n in 1..=2_000 {
            outbox.push(Utc::now(), event(n));
        }
        let mut expected = 1;
        while let Some(batch) = outbox.batch() {
            assert!(batch.records.len() <= MAX_TELEMETRY_RECORDS);
            let bytes = serde_json::to_vec(&batch).map_or(0, |b| b.len());
            assert!(bytes < luach_schemas::MAX_PAYLOAD_BYTES, "{bytes} bytes");
            assert_eq!(batch.records[0].seq, expected);
            expected = batch.range().1 + 1;
            assert!(ack(&outbox, &batch));
        }
        assert_eq!(expected, 2_001);
        let file = std::fs::metadata(dir.path().join(QUEUE_FILE)).map_or(u64::MAX, |m| m.len());
        assert!(file <= SLACK_BYTES, "{file} bytes left after everything was stored");
    }
}
