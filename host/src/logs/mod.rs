//! Remote logging, the host's half: clients' log batches go through one pipeline — decode,
//! deduplicate, store durably, acknowledge, hand to live subscribers — and can be queried.
//!
//! Owns two inputs: the `telemetry/log-batch` request (the compact batch of
//! [`sentelite_core::log`], answered `ok` only once the batch is committed to the store, which
//! is the client's ack) and the `telemetry/log-msg` event (sente-lite's single record, stored
//! without a sequence number). Messages published on the [`LOG_ROUTING_CHANNEL`] by any
//! connection (sente-lite's log-routing module publishes Trove records there) are read by a
//! channel observer ([`crate::observer`]) and stored the same way, tagged with the
//! publisher's client id and uid; they are still delivered to the channel's subscribers. The store is a SQLite file in the data dir
//! ([`store::STORE_FILE`]); every record is also appended to `logs/all-clients.log` as a JSON
//! line unless the settings turn the file off.
//!
//! | module | job |
//! |---|---|
//! | [`entry`] | stored record, gap and per-client counter types |
//! | [`http`] | `/api/logs`, `/api/logs/tail`, `/api/logs/clients` |
//! | [`ingest`] | checking payloads before they go to the store |
//! | `line` | a record's JSON line, written from borrowed fields |
//! | [`store`] | the SQLite store: insert with dedup, query, counters, retention |
//! | [`query`] | the filters shared by CLI, HTTP and tail |
//! | [`sink`] | the rotating JSON-lines file |
//! | [`settings`] | the `[logs]` settings table |

pub mod entry;
pub mod http;
pub mod ingest;
mod line;
mod live;
pub mod query;
pub mod settings;
pub mod sink;
pub mod store;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sentelite_core::Status;
use sentelite_core::frame::PayloadBuf;
use sentelite_core::log::{BATCH_EVENT, Level};
use tokio::sync::{broadcast, mpsc, oneshot};

pub use entry::{ClientCounters, Data, EntryRef, GapEntry, LogEntry, Origin};
pub use ingest::IngestError;
pub use query::LogQuery;
pub use settings::LogsSettings;
pub use store::{Incoming, IngestBatch, LogStore, StoreError, Stored, WireBatch};

use crate::handler::{EventContext, RequestContext, Responder};
use crate::observer::ChannelPublish;
use crate::registry::lock;
use crate::server::ServerBuilder;
use ingest::Sender;
use live::LiveFeed;
use writer::{Batch, Job, UrgentLane, Writer, unix_millis};

/// The event of sente-lite's single-record log message.
pub const LOG_MSG_EVENT: &str = "telemetry/log-msg";

/// The channel sente-lite's log-routing module publishes Trove records on.
pub const LOG_ROUTING_CHANNEL: &str = "log-routing";

/// Why a batch was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogsError {
    /// The payload was refused.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The store failed; the client keeps the batch and sends it again.
    #[error("log store: {0}")]
    Store(String),
    /// The log service has stopped.
    #[error("log service stopped")]
    Stopped,
    /// The writer's queue is full and the caller could not wait (`ingest-queue`).
    #[error("log ingest queue full")]
    Busy,
}

/// The running log pipeline: a writer thread, a read connection for queries, and the live
/// feed. Cheap to clone.
#[derive(Clone)]
pub struct LogService {
    jobs: mpsc::Sender<Job>,
    /// Batches with an error-level record or above, stored ahead of `jobs`' batches.
    urgent: UrgentLane,
    /// Cancelled by [`LogService::close`]: ends live tails so a graceful shutdown need not
    /// wait for them.
    closing: tokio_util::sync::CancellationToken,
    live: LiveFeed,
    reader: Arc<Mutex<LogStore>>,
    data_dir: PathBuf,
    /// Decodes the defmt records of batches before they are stored, when set.
    defmt: Option<crate::defmt::DefmtService>,
}

impl std::fmt::Debug for LogService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogService")
            .field("data_dir", &self.data_dir)
            .finish()
    }
}

impl LogService {
    /// Opens the store in `data_dir` and starts the writer thread. Call within a tokio
    /// runtime: retention runs on a task of it.
    pub fn start(data_dir: &Path, settings: &LogsSettings) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Sqlite {
            path: data_dir.to_path_buf(),
            source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
        })?;
        let live = LiveFeed::new();
        let urgent = UrgentLane::new(settings.ingest_queue);
        let writer = Writer::open(data_dir, settings, live.clone(), urgent.clone())?;
        let reader = writer.open_reader()?;
        let (jobs, rx) = mpsc::channel(settings.ingest_queue.max(1));
        std::thread::Builder::new()
            .name("sentelite-log-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Sqlite {
                path: data_dir.to_path_buf(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let retain = jobs.clone();
            let every = Duration::from_millis(settings.retention_interval_ms.max(1));
            rt.spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    if retain.send(Job::Retain).await.is_err() {
                        return;
                    }
                }
            });
        }
        Ok(Self {
            jobs,
            urgent,
            closing: tokio_util::sync::CancellationToken::new(),
            live,
            reader: Arc::new(Mutex::new(reader)),
            data_dir: data_dir.to_path_buf(),
            defmt: None,
        })
    }

    /// Decodes the defmt records of every `telemetry/log-batch` with `defmt`'s registered
    /// ELFs before storing it (PROTOCOL.md section 13.3); without it they are stored as sent.
    pub fn with_defmt(mut self, defmt: crate::defmt::DefmtService) -> Self {
        self.defmt = Some(defmt);
        self
    }

    /// Stores owned records; resolves once they are committed (or failed).
    pub async fn ingest(&self, batch: IngestBatch) -> Result<Stored, LogsError> {
        self.store(Batch::Entries(batch)).await
    }

    /// Stores a checked `telemetry/log-batch` payload; resolves once it is committed (or
    /// failed).
    pub async fn ingest_wire(&self, batch: WireBatch) -> Result<Stored, LogsError> {
        self.store(Batch::Wire(batch)).await
    }

    /// Queues owned records without waiting, in call order, for callers that cannot wait
    /// (a channel observer runs inside the publish). A full queue refuses them
    /// ([`LogsError::Busy`]) rather than piling up waiting tasks; the returned future
    /// resolves once they are committed (or failed).
    fn offer(
        &self,
        batch: IngestBatch,
    ) -> Result<impl std::future::Future<Output = Result<Stored, LogsError>> + use<>, LogsError>
    {
        let (tx, rx) = oneshot::channel();
        if let Some((batch, tx)) = self.urgent_first(Batch::Entries(batch), tx)
            && let Err(e) = self.jobs.try_send(Job::Ingest(batch, tx))
        {
            return Err(match e {
                mpsc::error::TrySendError::Full(_) => LogsError::Busy,
                mpsc::error::TrySendError::Closed(_) => LogsError::Stopped,
            });
        }
        Ok(async move {
            match rx.await {
                Ok(Ok(stored)) => Ok(stored),
                Ok(Err(message)) => Err(LogsError::Store(message)),
                Err(_) => Err(LogsError::Stopped),
            }
        })
    }

    async fn store(&self, batch: Batch) -> Result<Stored, LogsError> {
        let (tx, rx) = oneshot::channel();
        if let Some((batch, tx)) = self.urgent_first(batch, tx) {
            self.jobs
                .send(Job::Ingest(batch, tx))
                .await
                .map_err(|_| LogsError::Stopped)?;
        }
        match rx.await {
            Ok(Ok(stored)) => Ok(stored),
            Ok(Err(message)) => Err(LogsError::Store(message)),
            Err(_) => Err(LogsError::Stopped),
        }
    }

    /// Queues an urgent batch in the urgent lane and wakes the writer; hands back any other
    /// batch, and an urgent one when the lane is full, for the writer's queue.
    fn urgent_first(
        &self,
        batch: Batch,
        answer: writer::Answer,
    ) -> Option<(Batch, writer::Answer)> {
        if !batch.is_urgent() || self.jobs.is_closed() {
            return Some((batch, answer));
        }
        if let Some(back) = self.urgent.push(batch, answer) {
            return Some(back);
        }
        // A full queue means the writer is busy: it looks at the lane between batches.
        let _ = self.jobs.try_send(Job::Urgent);
        None
    }

    /// Ends every live tail (their HTTP responses finish). Call before shutting the server
    /// down; storing goes on until the last handler is gone.
    pub fn close(&self) {
        self.closing.cancel();
    }

    /// Writes the client counters the writer keeps in memory to the store; resolves when
    /// done. Call after the server has shut down, before exiting, so a
    /// clean stop loses no counter.
    pub async fn flush(&self) {
        let (done, rx) = oneshot::channel();
        if self.jobs.send(Job::Flush(done)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Resolves once [`LogService::close`] was called.
    pub async fn closed(&self) {
        self.closing.cancelled().await;
    }

    /// New records as they are stored.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LogEntry>> {
        self.live.subscribe(Level::Trace)
    }

    /// New records of `level` and above, as they are stored. Records below it take no room
    /// in this subscriber's buffer, so a flood of them cannot make it miss any of these.
    pub fn subscribe_at_least(&self, level: Level) -> broadcast::Receiver<Arc<LogEntry>> {
        self.live.subscribe(level)
    }

    /// Runs `f` on the read connection (blocking; call from `spawn_blocking` in async code).
    pub fn read<T>(&self, f: impl FnOnce(&LogStore) -> T) -> T {
        f(&lock(&self.reader))
    }

    fn refused(&self, client_id: &str, at_ms: u64) {
        let _ = self.jobs.try_send(Job::Refused {
            client_id: client_id.to_owned(),
            at_ms,
        });
    }
}

impl ServerBuilder {
    /// Registers the log pipeline's `telemetry/log-batch` request, `telemetry/log-msg` event,
    /// [`LOG_ROUTING_CHANNEL`] observer and the `/api/logs` HTTP routes.
    pub fn with_logs(self, logs: LogService) -> Self {
        let for_events = logs.clone();
        let for_channel = logs.clone();
        self.observe_channel(LOG_ROUTING_CHANNEL, move |publish| {
            on_routed(&for_channel, publish);
        })
        .http_routes(http::routes(logs.clone()))
        .on_request(BATCH_EVENT, move |ctx, responder| {
            let logs = logs.clone();
            async move { on_batch(&logs, ctx, responder).await }
        })
        .on_event(LOG_MSG_EVENT, move |ctx| {
            let logs = for_events.clone();
            async move { on_message(&logs, ctx).await }
        })
    }
}

/// Who sent something; the boot id comes from its Hello, carried in the handler's context
/// (the connection may already be gone from the server's list when the handler runs).
fn sender<'a>(boot_id: u32, client_id: &'a str, uid: &'a str) -> Sender<'a> {
    Sender {
        client_id,
        boot_id,
        uid,
    }
}

async fn on_batch(logs: &LogService, ctx: RequestContext, responder: Responder) {
    let now = unix_millis();
    let uid = ctx.uid.clone();
    let checked = match ctx.payload {
        PayloadBuf::Bytes(payload) => {
            WireBatch::checked(ctx.client_id.clone(), ctx.uid, ctx.boot_id, now, payload)
                .map_err(IngestError::from)
        }
        _ => Err(IngestError::NotBytes),
    };
    // Checked first, so a malformed batch is refused whole whether or not it holds defmt
    // frames; a rewritten payload is checked again, being what gets stored.
    let checked = match (checked, &logs.defmt) {
        (Ok(batch), Some(defmt)) => {
            match defmt.decode(&ctx.client_id, ctx.firmware.as_deref(), batch.payload()) {
                Some(decoded) => {
                    WireBatch::checked(ctx.client_id.clone(), uid, ctx.boot_id, now, decoded)
                        .map_err(IngestError::from)
                }
                None => Ok(batch),
            }
        }
        (checked, _) => checked,
    };
    let batch = match checked {
        Ok(batch) => batch,
        Err(e) => {
            logs.refused(&ctx.client_id, now);
            tracing::debug!(client = %ctx.client_id, error = %e, "log batch refused");
            let _ = responder.fail(error_payload(&e.to_string())).await;
            return;
        }
    };
    match logs.ingest_wire(batch).await {
        Ok(_) => {
            let _ = responder.end(Status::OK, PayloadBuf::Empty).await;
        }
        Err(e) => {
            let _ = responder.fail(error_payload(&e.to_string())).await;
        }
    }
}

async fn on_message(logs: &LogService, ctx: EventContext) {
    let now = unix_millis();
    let from = sender(ctx.boot_id, &ctx.client_id, &ctx.uid);
    match ingest::message_from_payload(&from, &ctx.payload, now) {
        Ok(batch) => {
            if let Err(e) = logs.ingest(batch).await {
                tracing::warn!(client = %ctx.client_id, error = %e, "log message not stored");
            }
        }
        Err(e) => {
            logs.refused(&ctx.client_id, now);
            tracing::debug!(client = %ctx.client_id, error = %e, "log message refused");
        }
    }
}

/// A message on the log-routing channel. Called inside the publish, so it only reads the
/// record and queues it for the writer without waiting (in publish order); a task waits for
/// the outcome to report a store failure. When the writer's queue is full the record is
/// refused, counted and logged, since the publish cannot wait for room.
fn on_routed(logs: &LogService, publish: &ChannelPublish<'_>) {
    let Some(publisher) = &publish.publisher else {
        // The server's own messages on the channel are relays or its own logs, which go to
        // its tracing output; storing them would name no client.
        return;
    };
    let now = unix_millis();
    let from = Sender {
        client_id: &publisher.client_id,
        boot_id: publisher.boot_id,
        uid: &publisher.uid,
    };
    let batch = match ingest::message_from_payload(&from, publish.payload, now) {
        Ok(batch) => batch,
        Err(e) => {
            logs.refused(&publisher.client_id, now);
            tracing::debug!(client = %publisher.client_id, error = %e, "log-routing message refused");
            return;
        }
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(client = %publisher.client_id, "log-routing message not stored: published outside the server's runtime");
        return;
    };
    let stored = match logs.offer(batch) {
        Ok(stored) => stored,
        Err(e) => {
            logs.refused(&publisher.client_id, now);
            tracing::warn!(client = %publisher.client_id, error = %e, "log-routing message not stored");
            return;
        }
    };
    let client = publisher.client_id.clone();
    runtime.spawn(async move {
        if let Err(e) = stored.await {
            tracing::warn!(%client, error = %e, "log-routing message not stored");
        }
    });
}

fn error_payload(message: &str) -> PayloadBuf {
    PayloadBuf::Json(serde_json::json!({ "error": message }).to_string())
}
