//! The store's one writer: a thread that owns the write connection, takes batches from a
//! bounded queue, writes as many as are waiting in one transaction, appends them to the file
//! sink, answers each sender (the ack goes out only after the commit) and hands new records
//! to live subscribers.

use std::path::Path;

use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};

use sentelite_core::log::decode_batch;

use super::entry::{EntryRef, Origin};
use super::live::LiveFeed;
use super::settings::LogsSettings;
use super::sink::FileSink;
use super::store::{Incoming, IngestBatch, LogStore, StoreError, Stored, WireBatch};

/// A batch for the writer, in either form.
pub(crate) enum Batch {
    /// A checked `telemetry/log-batch` payload.
    Wire(WireBatch),
    /// Owned records (`telemetry/log-msg`).
    Entries(IngestBatch),
}

impl Batch {
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
    Ingest(Batch, oneshot::Sender<Result<Stored, String>>),
    /// Count a refused batch against its client.
    Refused { client_id: String, at_ms: u64 },
    /// Apply retention now.
    Retain,
    /// Write the client counters kept in memory to the store, then answer: the server does
    /// before it exits.
    Flush(oneshot::Sender<()>),
}

pub(crate) struct Writer {
    store: LogStore,
    sink: Option<FileSink>,
    live: LiveFeed,
    settings: LogsSettings,
}

impl Writer {
    pub(crate) fn open(
        data_dir: &Path,
        settings: &LogsSettings,
        live: LiveFeed,
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
            settings: settings.clone(),
        })
    }

    /// A read connection to the same store.
    pub(crate) fn open_reader(&self) -> Result<LogStore, StoreError> {
        self.store.open_reader()
    }

    /// Runs until every sender is gone.
    pub(crate) fn run(mut self, mut jobs: mpsc::Receiver<Job>) {
        let mut pending = Vec::new();
        while let Some(first) = jobs.blocking_recv() {
            pending.push(first);
            while pending.len() < self.settings.max_batches_per_commit {
                match jobs.try_recv() {
                    Ok(job) => pending.push(job),
                    Err(_) => break,
                }
            }
            self.process(&mut pending);
        }
        self.flush();
    }

    fn flush(&mut self) {
        if let Err(e) = self.store.write_counters() {
            tracing::warn!(error = %e, "log client counters not written");
        }
    }

    fn process(&mut self, jobs: &mut Vec<Job>) {
        let mut batches = Vec::new();
        let mut answers = Vec::new();
        let mut flushes = Vec::new();
        for job in jobs.drain(..) {
            match job {
                Job::Ingest(batch, answer) => {
                    batches.push(batch);
                    answers.push(answer);
                }
                Job::Refused { client_id, at_ms } => {
                    if let Err(e) = self.store.count_error(&client_id, at_ms) {
                        tracing::warn!(error = %e, "refused batch not counted");
                    }
                }
                Job::Retain => self.retain(),
                Job::Flush(done) => {
                    flushes.push(done);
                }
            }
        }
        if !batches.is_empty() {
            self.store_batches(&batches, answers);
        }
        // After the batches taken with it, so a flush covers everything sent before it.
        if !flushes.is_empty() {
            self.flush();
            for done in flushes {
                let _ = done.send(());
            }
        }
    }

    fn store_batches(
        &mut self,
        batches: &[Batch],
        answers: Vec<oneshot::Sender<Result<Stored, String>>>,
    ) {
        let incoming: Vec<Incoming<'_>> = batches.iter().map(Batch::incoming).collect();
        match self.store.insert_all(&incoming) {
            Ok(outcomes) => {
                self.publish(batches, &outcomes);
                for (answer, outcome) in answers.into_iter().zip(outcomes) {
                    let _ = answer.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "log batches not stored");
                let message = e.to_string();
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
