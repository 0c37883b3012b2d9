//! The store's one writer: a thread that owns the write connection, takes batches from a
//! bounded queue, writes as many as are waiting in one transaction, appends them to the file
//! sink, answers each sender (the ack goes out only after the commit) and hands new records
//! to live subscribers.
//!
//! Batches holding an error-level record or above take a lane of their own
//! ([`UrgentLane`]): the writer commits them before the bulk waiting in its queue, and ends a
//! bulk transaction early (committing what it stored so far) when one arrives, so an error
//! reaches the store, its sender's ack and the live tail without waiting behind a load of
//! lower-level batches. Every record is still acked and shown live only once committed.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};

use sentelite_core::log::{Level, decode_batch};

use super::entry::{EntryRef, Origin};
use super::live::LiveFeed;
use super::settings::LogsSettings;
use super::sink::FileSink;
use super::store::{Incoming, IngestBatch, LogStore, StoreError, Stored, WireBatch};
use crate::registry::lock;

/// A batch for the writer, in either form.
pub(crate) enum Batch {
    /// A checked `telemetry/log-batch` payload.
    Wire(WireBatch),
    /// Owned records (`telemetry/log-msg`).
    Entries(IngestBatch),
}

/// Batches holding a record of this level or above take the urgent lane.
pub(crate) const URGENT_LEVEL: Level = Level::Error;

impl Batch {
    /// True when the batch holds a record of [`URGENT_LEVEL`] or above.
    pub(crate) fn is_urgent(&self) -> bool {
        match self {
            Batch::Wire(w) => w.reaches(URGENT_LEVEL),
            Batch::Entries(b) => b
                .records
                .iter()
                .any(|e| Level::from_name(&e.level).is_some_and(|l| l as u8 >= URGENT_LEVEL as u8)),
        }
    }

    fn incoming(&self) -> Incoming<'_> {
        match self {
            Batch::Wire(w) => Incoming::Wire(w),
            Batch::Entries(b) => Incoming::Entries(b),
        }
    }
}

/// Work for the writer.
pub(crate) enum Job {
    /// Store a batch and report the outcome.
    Ingest(Batch, Answer),
    /// Nothing to do here: wakes the writer for a batch queued in the [`UrgentLane`].
    Urgent,
    /// Count a refused batch against its client.
    Refused { client_id: String, at_ms: u64 },
    /// Apply retention now.
    Retain,
    /// Write the client counters kept in memory to the store, then answer: the server does
    /// before it exits.
    Flush(oneshot::Sender<()>),
}

/// Where a batch's outcome goes: its sender waits for it to ack.
pub(crate) type Answer = oneshot::Sender<Result<Stored, String>>;

/// A transaction's result: the answers of the batches it stored with their outcomes, or the
/// answers of every batch it tried with the store's error.
type Committed = Result<(Vec<Answer>, Vec<Stored>), (Vec<Answer>, String)>;

/// Urgent batches waiting for the writer, beside its queue of everything else. A sender
/// pushes here, then nudges the writer with [`Job::Urgent`] on the queue (skipped when the
/// queue is full: the writer is then busy and looks here before each batch it stores).
#[derive(Clone)]
pub(crate) struct UrgentLane(Arc<LaneInner>);

struct LaneInner {
    batches: Mutex<VecDeque<(Batch, Answer)>>,
    /// Length of `batches`, read without the lock between the batches of a transaction.
    waiting: AtomicUsize,
    capacity: usize,
}

impl UrgentLane {
    pub(crate) fn new(capacity: usize) -> Self {
        Self(Arc::new(LaneInner {
            batches: Mutex::new(VecDeque::new()),
            waiting: AtomicUsize::new(0),
            capacity: capacity.max(1),
        }))
    }

    /// Queues `batch`, or hands it back when `capacity` batches wait already (the sender
    /// then uses the writer's queue, which waits for room).
    pub(crate) fn push(&self, batch: Batch, answer: Answer) -> Option<(Batch, Answer)> {
        let mut batches = lock(&self.0.batches);
        if batches.len() >= self.0.capacity {
            return Some((batch, answer));
        }
        batches.push_back((batch, answer));
        self.0.waiting.store(batches.len(), Ordering::Release);
        None
    }

    fn is_empty(&self) -> bool {
        self.0.waiting.load(Ordering::Acquire) == 0
    }

    fn take(&self, max: usize) -> Vec<(Batch, Answer)> {
        let mut batches = lock(&self.0.batches);
        let n = batches.len().min(max);
        let taken = batches.drain(..n).collect();
        self.0.waiting.store(batches.len(), Ordering::Release);
        taken
    }
}

pub(crate) struct Writer {
    store: LogStore,
    sink: Option<FileSink>,
    live: LiveFeed,
    urgent: UrgentLane,
    settings: LogsSettings,
}

impl Writer {
    pub(crate) fn open(
        data_dir: &Path,
        settings: &LogsSettings,
        live: LiveFeed,
        urgent: UrgentLane,
    ) -> Result<Self, StoreError> {
        let store = LogStore::open(data_dir)?;
        let sink = if settings.file {
            match FileSink::open(data_dir, settings.file_max_bytes, settings.file_keep) {
                Ok(sink) => Some(sink),
                Err(e) => {
                    tracing::error!(error = %e, "log file sink not opened; records go to the store only");
                    None
                }
            }
        } else {
            None
        };
        Ok(Self {
            store,
            sink,
            live,
            urgent,
            settings: settings.clone(),
        })
    }

    /// A read connection to the same store.
    pub(crate) fn open_reader(&self) -> Result<LogStore, StoreError> {
        self.store.open_reader()
    }

    /// Runs until every sender is gone.
    pub(crate) fn run(mut self, mut jobs: mpsc::Receiver<Job>) {
        let max = self.settings.max_batches_per_commit;
        let mut backlog = VecDeque::new();
        loop {
            if backlog.is_empty() && self.urgent.is_empty() {
                match jobs.blocking_recv() {
                    Some(job) => backlog.push_back(job),
                    None => break,
                }
            }
            while backlog.len() < max {
                match jobs.try_recv() {
                    Ok(job) => backlog.push_back(job),
                    Err(_) => break,
                }
            }
            // One urgent transaction, then one bulk step (which stores at least one batch),
            // so neither lane can hold the other up for good.
            self.store_urgent();
            self.step(&mut backlog);
        }
        self.store_urgent();
        self.flush();
    }

    fn flush(&mut self) {
        if let Err(e) = self.store.write_counters() {
            tracing::warn!(error = %e, "log client counters not written");
        }
    }

    /// Stores the urgent batches waiting, up to a transaction's worth.
    fn store_urgent(&mut self) {
        let taken = self.urgent.take(self.settings.max_batches_per_commit);
        if taken.is_empty() {
            return;
        }
        let (batches, answers): (Vec<Batch>, Vec<Answer>) = taken.into_iter().unzip();
        self.store_batches(&batches, answers, || true);
    }

    /// Runs the jobs at the front of `backlog` up to its first batch, then stores the batches
    /// that follow in one transaction, which ends early when an urgent batch is waiting; the
    /// batches not stored stay at the front.
    fn step(&mut self, backlog: &mut VecDeque<Job>) {
        while let Some(job) = backlog.pop_front() {
            match job {
                Job::Ingest(batch, answer) => {
                    backlog.push_front(Job::Ingest(batch, answer));
                    break;
                }
                Job::Urgent => {}
                Job::Refused { client_id, at_ms } => {
                    if let Err(e) = self.store.count_error(&client_id, at_ms) {
                        tracing::warn!(error = %e, "refused batch not counted");
                    }
                }
                Job::Retain => self.retain(),
                Job::Flush(done) => {
                    // A flush covers every batch sent before it, urgent ones included.
                    self.store_urgent();
                    self.flush();
                    let _ = done.send(());
                }
            }
        }
        let mut batches = Vec::new();
        let mut answers = Vec::new();
        while let Some(Job::Ingest(..)) = backlog.front() {
            if let Some(Job::Ingest(batch, answer)) = backlog.pop_front() {
                batches.push(batch);
                answers.push(answer);
            }
        }
        if batches.is_empty() {
            return;
        }
        let urgent = self.urgent.clone();
        let (result, left) = self.commit(&batches, answers, || urgent.is_empty());
        let done = batches.len() - left.len();
        // An urgent batch that ended the transaction is stored, shown live and acked before
        // the batches committed ahead of it are written to the file sink and acked.
        self.store_urgent();
        self.deliver(&batches[..done], result);
        // Put back what the transaction left, in order, with their answers.
        let rest = batches.split_off(done);
        for (batch, answer) in rest.into_iter().zip(left).rev() {
            backlog.push_front(Job::Ingest(batch, answer));
        }
    }

    /// Stores `batches` in one transaction while `go_on` says so (at least the first), then
    /// publishes and answers those stored; returns the answers of the batches left.
    fn store_batches(
        &mut self,
        batches: &[Batch],
        answers: Vec<Answer>,
        go_on: impl FnMut() -> bool,
    ) -> Vec<Answer> {
        let (result, left) = self.commit(batches, answers, go_on);
        let done = batches.len() - left.len();
        self.deliver(&batches[..done], result);
        left
    }

    /// Stores `batches` in one transaction while `go_on` says so (at least the first).
    /// Returns the batches stored with their answers and outcomes (or the store's error, for
    /// every batch), and the answers of the batches left.
    fn commit(
        &mut self,
        batches: &[Batch],
        mut answers: Vec<Answer>,
        go_on: impl FnMut() -> bool,
    ) -> (Committed, Vec<Answer>) {
        let incoming: Vec<Incoming<'_>> = batches.iter().map(Batch::incoming).collect();
        match self.store.insert_while(&incoming, go_on) {
            Ok(outcomes) => {
                let left = answers.split_off(outcomes.len());
                (Ok((answers, outcomes)), left)
            }
            Err(e) => {
                tracing::error!(error = %e, "log batches not stored");
                (Err((answers, e.to_string())), Vec::new())
            }
        }
    }

    /// Hands the records of committed `batches` to the file sink and the live feed, then
    /// answers their senders.
    fn deliver(&mut self, batches: &[Batch], committed: Committed) {
        match committed {
            Ok((answers, outcomes)) => {
                self.publish(batches, &outcomes);
                for (answer, outcome) in answers.into_iter().zip(outcomes) {
                    let _ = answer.send(Ok(outcome));
                }
            }
            Err((answers, message)) => {
                for answer in answers {
                    let _ = answer.send(Err(message.clone()));
                }
            }
        }
    }

    /// Hands the new records of stored `batches` to the file and to live subscribers,
    /// borrowing them from the payloads.
    fn publish(&mut self, batches: &[Batch], outcomes: &[Stored]) {
        // No subscriber is the normal case: then no record is copied.
        let live = self.live.has_subscribers();
        if self.sink.is_none() && !live {
            return;
        }
        let mut fresh: Vec<EntryRef<'_>> = Vec::new();
        for (batch, outcome) in batches.iter().zip(outcomes) {
            if outcome.stored == 0 {
                continue;
            }
            match batch {
                Batch::Wire(w) => {
                    let origin = Origin {
                        client_id: w.client_id(),
                        boot_id: w.boot_id(),
                        uid: w.uid(),
                        received_ms: w.received_ms(),
                    };
                    // A WireBatch was checked when made: it does decode.
                    let Ok(decoded) = decode_batch(w.payload()) else {
                        continue;
                    };
                    let records = decoded.records().map_while(Result::ok);
                    for (r, &new) in records.zip(&outcome.fresh) {
                        if new {
                            fresh.push(EntryRef::of(&origin, &r, true));
                        }
                    }
                }
                Batch::Entries(b) => {
                    for (e, &new) in b.records.iter().zip(&outcome.fresh) {
                        if new {
                            fresh.push(EntryRef::from(e));
                        }
                    }
                }
            }
        }
        if let Some(sink) = self.sink.as_mut()
            && let Err(e) = sink.append(fresh.iter().copied())
        {
            tracing::warn!(error = %e, path = %sink.path().display(), "log file not written");
        }
        if live {
            for entry in &fresh {
                self.live.send(entry);
            }
        }
    }

    fn retain(&mut self) {
        let days = self.settings.retention_days;
        let cutoff = (days > 0).then(|| {
            unix_millis().saturating_sub(Duration::from_secs(days * 86_400).as_millis() as u64)
        });
        let max = (self.settings.max_records > 0).then_some(self.settings.max_records);
        match self.store.retain(cutoff, max) {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "log retention"),
            Err(e) => tracing::warn!(error = %e, "log retention failed"),
        }
    }
}

/// Now, in Unix milliseconds.
pub(crate) fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::{LogEntry, LogQuery, LogService, LogsError};

    fn entry(client: &str, seq: u32, level: &str) -> LogEntry {
        LogEntry {
            client_id: client.to_owned(),
            boot_id: 1,
            seq: Some(seq),
            uid: format!("{client}-uid"),
            time_ms: u64::from(seq),
            received_ms: 1,
            level: level.to_owned(),
            ns: "writer.test".to_owned(),
            id: None,
            message: format!("record {seq}"),
            data: serde_json::Value::Null,
        }
    }

    fn batch(client: &str, first_seq: u32, n: u32, level: &str) -> IngestBatch {
        IngestBatch {
            client_id: client.to_owned(),
            bytes: 0,
            received_ms: 1,
            records: (first_seq..first_seq + n)
                .map(|seq| entry(client, seq, level))
                .collect(),
            gap: None,
        }
    }

    const BULK_BATCHES: u32 = 200;
    const BULK_RECORDS: u32 = 250;

    /// An error record queued behind a load of warn batches is stored, acked and on the live
    /// feed before most of them: the writer takes it first and ends the bulk transaction it
    /// is in. (Everything in one queue, it came after all of them.) It is acked only once it
    /// can be read back from the store and is on the feed, and every bulk record is stored
    /// too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_error_record_overtakes_queued_bulk_batches() {
        let dir = tempfile::tempdir().unwrap();
        let settings = LogsSettings {
            file: false,
            ..LogsSettings::default()
        };
        let service = LogService::start(dir.path(), &settings).unwrap();
        let mut errors = service.subscribe_at_least(Level::Error);
        let mut bulk = Vec::new();
        for i in 0..BULK_BATCHES {
            let queued = service.offer(batch("bulk", i * BULK_RECORDS, BULK_RECORDS, "warn"));
            bulk.push(tokio::spawn(queued.unwrap()));
        }
        let urgent = service.offer(batch("urgent", 0, 1, "error")).unwrap();
        let stored = urgent.await.unwrap();
        assert_eq!(stored.stored, 1);
        let count = |client: &str| {
            let query = LogQuery {
                client: Some(client.to_owned()),
                ..LogQuery::default()
            };
            service.read(|store| store.count(&query).unwrap())
        };
        let bulk_stored_first = count("bulk");
        assert_eq!(count("urgent"), 1, "acked before it was stored");
        let live = errors
            .try_recv()
            .expect("acked before it was on the live feed");
        assert_eq!(live.client_id, "urgent");

        let total = u64::from(BULK_BATCHES * BULK_RECORDS);
        assert!(
            bulk_stored_first < total / 2,
            "{bulk_stored_first} of {total} bulk records were stored before the error"
        );
        for handle in bulk {
            let stored: Result<Stored, LogsError> = handle.await.unwrap();
            assert_eq!(stored.unwrap().stored, BULK_RECORDS as usize);
        }
    }
}
