//! The store's one writer: a thread that owns the write connection, takes batches from a
//! bounded queue, writes as many as are waiting in one transaction, appends them to the file
//! sink, answers each sender (the ack goes out only after the commit) and hands new records
//! to live subscribers.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, mpsc, oneshot};

use super::entry::LogEntry;
use super::settings::LogsSettings;
use super::sink::FileSink;
use super::store::{IngestBatch, LogStore, StoreError, Stored};

/// Work for the writer.
pub(crate) enum Job {
    /// Store a batch and report the outcome.
    Ingest(IngestBatch, oneshot::Sender<Result<Stored, String>>),
    /// Count a refused batch against its client.
    Refused { client_id: String, at_ms: u64 },
    /// Apply retention now.
    Retain,
}

pub(crate) struct Writer {
    store: LogStore,
    sink: Option<FileSink>,
    live: broadcast::Sender<Arc<LogEntry>>,
    settings: LogsSettings,
}

impl Writer {
    pub(crate) fn open(
        data_dir: &Path,
        settings: &LogsSettings,
        live: broadcast::Sender<Arc<LogEntry>>,
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
    }

    fn process(&mut self, jobs: &mut Vec<Job>) {
        let mut batches = Vec::new();
        let mut answers = Vec::new();
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
            }
        }
        if batches.is_empty() {
            return;
        }
        match self.store.insert(&batches) {
            Ok(outcomes) => {
                let fresh: Vec<&LogEntry> = batches
                    .iter()
                    .zip(&outcomes)
                    .flat_map(|(b, o)| {
                        b.records
                            .iter()
                            .zip(&o.fresh)
                            .filter_map(|(r, &new)| new.then_some(r))
                    })
                    .collect();
                if let Some(sink) = self.sink.as_mut()
                    && let Err(e) = sink.append(fresh.iter().copied())
                {
                    tracing::warn!(error = %e, path = %sink.path().display(), "log file not written");
                }
                // No subscriber is the normal case: then nothing is copied.
                if self.live.receiver_count() > 0 {
                    for entry in fresh {
                        let _ = self.live.send(Arc::new(entry.clone()));
                    }
                }
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
