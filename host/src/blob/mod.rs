//! Blob fetch directives, the host's half: a content-addressed store in the data dir, HTTP
//! serving and resumable uploads of it, directives sent to clients, and a record of every
//! transfer that clients report on.
//!
//! The channel carries only directives and reports; HTTP moves the bytes. A directive is a
//! server→client request (`blob/fetch-and-process`, `-eval`, `-display`, `-render`, or
//! `blob/upload`); the client's reply parts are progress, its End the outcome. sente-lite
//! clients may report with `blob/progress`, `blob/complete` and `blob/error` events instead;
//! both land in the same record ([`transfers`]), which is stored, handed to whoever awaits
//! the [`Transfer`], and published on the [`TRANSFERS_CHANNEL`] channel.
//!
//! | module | job |
//! |---|---|
//! | [`store`] | `<data-dir>/blobs/<sha256>`: add, list, remove, atomic writes |
//! | `http` | `GET` / `HEAD /blobs/<sha256>`: ranges, ETag, If-Range |
//! | [`upload`] | `PUT /blobs/<sha256>` with `Content-Range`: resumable uploads |
//! | [`directive`] | directive payloads out, reports in |
//! | [`transfers`] | the SQLite record of transfers |
//! | [`api`] | `/api/blobs/…`: push, upload and transfer queries for the CLI |
//! | [`settings`] | the `[blobs]` settings table |

pub mod api;
pub mod directive;
mod http;
pub mod settings;
pub mod store;
pub mod transfers;
pub mod upload;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use sentelite_core::Status;
use sentelite_core::frame::PayloadBuf;
use tokio::sync::{broadcast, watch};

pub use directive::{FetchOptions, HandlerKind};
pub use http::etag_of;
pub use settings::BlobSettings;
pub use store::{BlobId, BlobStore, BlobStoreError, StoredBlob};
pub use transfers::{TransferRecord, TransferState, TransferStore, TransfersError};

use crate::handle::ServerHandle;
use crate::handler::EventContext;
use crate::registry::lock;
use crate::request::{ReplyItem, ReplyStream, RequestOutcome};
use crate::server::ServerBuilder;

/// The channel every transfer update is published on (JSON, one [`TransferRecord`]).
pub const TRANSFERS_CHANNEL: &str = "blob/transfers";

/// Updates kept for a slow live subscriber before it starts missing some.
const LIVE_BUFFER: usize = 1024;

/// Where a directive's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobSource {
    /// A blob in this server's store, served at `<base-url>/blobs/<sha256>`.
    Stored(BlobId),
    /// Any URL; the hash and size are passed on when known.
    Url {
        /// The first source.
        url: String,
        /// The blob's SHA-256, for the client to verify.
        sha256: Option<BlobId>,
        /// The blob's size.
        size: Option<u64>,
    },
}

/// A fetch directive to send.
#[derive(Debug, Clone)]
pub struct PushRequest {
    /// Which directive.
    pub kind: HandlerKind,
    /// The client's handler, `ns/name`.
    pub handler: String,
    /// The bytes.
    pub source: BlobSource,
    /// Further sources, tried after the first.
    pub mirrors: Vec<String>,
    /// The blob's media type, if known.
    pub content_type: Option<String>,
    /// The directive's options.
    pub options: FetchOptions,
}

impl PushRequest {
    /// `blob/fetch-and-process` of a stored blob by handler `handler`, default options.
    pub fn stored(handler: &str, sha256: BlobId) -> Self {
        Self {
            kind: HandlerKind::Process,
            handler: handler.to_owned(),
            source: BlobSource::Stored(sha256),
            mirrors: Vec::new(),
            content_type: None,
            options: FetchOptions::default(),
        }
    }
}

/// Why a directive was not sent.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// No connection has this client id.
    #[error("no connected client {0:?}")]
    UnknownClient(String),
    /// The named blob is not in the store.
    #[error("no blob {0} in the store")]
    UnknownBlob(BlobId),
    /// The handler (or upload source) is not a keyword `ns/name`.
    #[error("not a handler name (ns/name): {0:?}")]
    BadHandler(String),
    /// More mirrors than a directive carries.
    #[error("{0} mirrors; a directive carries at most {max}", max = directive::MAX_MIRRORS)]
    TooManyMirrors(usize),
    /// Stored blobs need a URL to be fetched from; none is known.
    #[error("no base URL for the blob store: set blobs.public-url or call set_base_url")]
    NoBaseUrl,
    /// The connection refused the request (queue full, closing).
    #[error(transparent)]
    Delivery(#[from] crate::DeliveryError),
    /// The transfer record could not be written.
    #[error(transparent)]
    Record(#[from] TransfersError),
}

/// One transfer in flight (or ended): await or stream its updates.
#[derive(Debug, Clone)]
pub struct Transfer {
    updates: watch::Receiver<TransferRecord>,
    /// The end state was returned by [`Transfer::next`].
    done: bool,
    /// Asks the task following the directive to cancel it.
    cancel: tokio_util::sync::CancellationToken,
}

impl Transfer {
    /// The transfer's id.
    pub fn id(&self) -> String {
        self.updates.borrow().transfer_id.clone()
    }

    /// The record as it stands.
    pub fn current(&self) -> TransferRecord {
        self.updates.borrow().clone()
    }

    /// The next change of the record; `None` once the end state has been returned (or the
    /// service went away).
    pub async fn next(&mut self) -> Option<TransferRecord> {
        if self.done {
            return None;
        }
        // Resolves for an unseen value even after the sender is gone (it is dropped right
        // after the end state is sent), so the end is never lost to a slow reader.
        self.updates.changed().await.ok()?;
        let record = self.updates.borrow_and_update().clone();
        self.done = record.state.is_end();
        Some(record)
    }

    /// Cancels the directive: the client is sent a Cancel and the record ends `cancelled`
    /// (unless the client's End arrives first). Clones of this transfer share it.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Waits for the end state.
    pub async fn finish(mut self) -> TransferRecord {
        loop {
            let current = self.updates.borrow_and_update().clone();
            if current.state.is_end() || self.updates.changed().await.is_err() {
                return current;
            }
        }
    }
}

/// The blob feature of one server: store, records, live feed. Cheap to clone.
#[derive(Clone)]
pub struct BlobService {
    inner: Arc<Inner>,
}

struct Inner {
    store: BlobStore,
    records: Mutex<TransferStore>,
    settings: BlobSettings,
    uploads: upload::UploadLocks,
    /// Transfers not yet ended, by id: their watchers.
    active: Mutex<HashMap<String, watch::Sender<TransferRecord>>>,
    /// Directives this server sent and still follows, by transfer id: what cancels them
    /// ([`BlobService::cancel`]).
    following: Mutex<HashMap<String, tokio_util::sync::CancellationToken>>,
    live: broadcast::Sender<TransferRecord>,
    /// Held across one record's read-change-write, so that a reply part and a report event
    /// arriving together do not overwrite each other's change.
    updating: tokio::sync::Mutex<()>,
    base_url: OnceLock<String>,
    server: OnceLock<ServerHandle>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for BlobService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobService")
            .field("dir", &self.inner.store.dir())
            .finish_non_exhaustive()
    }
}

/// Why the blob service did not start.
#[derive(Debug, thiserror::Error)]
pub enum BlobStartError {
    /// The store's directory.
    #[error(transparent)]
    Store(#[from] BlobStoreError),
    /// The records' file.
    #[error(transparent)]
    Records(#[from] TransfersError),
}

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl BlobService {
    /// Opens the store and the transfer records in `data_dir`.
    pub fn start(data_dir: &Path, settings: &BlobSettings) -> Result<Self, BlobStartError> {
        let store = BlobStore::open(data_dir)?;
        let records = TransferStore::open(data_dir)?;
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        let base_url = OnceLock::new();
        if let Some(url) = &settings.public_url {
            let _ = base_url.set(url.trim_end_matches('/').to_owned());
        }
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                records: Mutex::new(records),
                settings: settings.clone(),
                uploads: upload::UploadLocks::default(),
                active: Mutex::new(HashMap::new()),
                following: Mutex::new(HashMap::new()),
                live,
                updating: tokio::sync::Mutex::new(()),
                base_url,
                server: OnceLock::new(),
                next_id: AtomicU64::new(1),
            }),
        })
    }

    /// The store.
    pub fn store(&self) -> &BlobStore {
        &self.inner.store
    }

    /// The settings in force.
    pub fn settings(&self) -> &BlobSettings {
        &self.inner.settings
    }

    fn serve_chunk(&self) -> usize {
        self.inner.settings.serve_chunk_bytes
    }

    /// Sets the URL (`http://host:port`) directives name stored blobs under, unless the
    /// settings' `public-url` already did. The first call wins.
    pub fn set_base_url(&self, url: &str) {
        let _ = self
            .inner
            .base_url
            .set(url.trim_end_matches('/').to_owned());
    }

    /// The URL of stored blob `id`, when a base URL is known.
    pub fn url_of(&self, id: &BlobId) -> Option<String> {
        self.inner
            .base_url
            .get()
            .map(|base| format!("{base}/blobs/{id}"))
    }

    /// Every transfer update from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<TransferRecord> {
        self.inner.live.subscribe()
    }

    /// Runs `f` on the transfer records (blocking; call from `spawn_blocking` in async code).
    pub fn read<T>(&self, f: impl FnOnce(&TransferStore) -> T) -> T {
        f(&lock(&self.inner.records))
    }

    fn new_transfer_id(&self) -> String {
        let n = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        format!("t{:x}-{n}", unix_millis())
    }

    /// Sends a fetch directive to `client_id` (its newest connection) and returns the
    /// transfer, whose record follows the client's reports until its end state.
    pub async fn push(
        &self,
        server: &ServerHandle,
        client_id: &str,
        request: PushRequest,
    ) -> Result<Transfer, PushError> {
        self.attach(server);
        let handler = directive::keyword(&request.handler)
            .ok_or_else(|| PushError::BadHandler(request.handler.clone()))?
            .to_owned();
        let (url, sha256, size) = match &request.source {
            BlobSource::Stored(id) => {
                let blob = self
                    .store()
                    .get(id)
                    .ok_or_else(|| PushError::UnknownBlob(id.clone()))?;
                let url = self.url_of(id).ok_or(PushError::NoBaseUrl)?;
                (url, Some(id.clone()), Some(blob.size))
            }
            BlobSource::Url { url, sha256, size } => (url.clone(), sha256.clone(), *size),
        };
        let connection = newest_connection(server, client_id)?;
        let transfer_id = self.new_transfer_id();
        let deadline_ms = request
            .options
            .deadline_ms
            .unwrap_or(self.inner.settings.default_deadline_ms);
        let mut options = request.options.clone();
        options.deadline_ms = Some(deadline_ms);
        let payload = directive::encode_fetch(&directive::FetchDirective {
            kind: request.kind,
            transfer_id: &transfer_id,
            url: &url,
            mirrors: &request.mirrors,
            handler: &handler,
            size,
            sha256: sha256.as_ref().map(BlobId::digest),
            content_type: request.content_type.as_deref(),
            options: &options,
        })
        .ok_or(PushError::TooManyMirrors(request.mirrors.len()))?;
        let mut record = TransferRecord::sent(
            transfer_id,
            client_id.to_owned(),
            request.kind.event().trim_start_matches("blob/").to_owned(),
            unix_millis(),
        );
        record.handler = Some(handler);
        record.sha256 = sha256.map(String::from);
        record.url = Some(url);
        record.total = size;
        self.send(
            server,
            connection,
            request.kind.event(),
            payload,
            deadline_ms,
            record,
        )
        .await
    }

    /// Sends a `blob/upload` directive: the client uploads `source` (a keyword `ns/name` it
    /// maps to something it holds) into this server's store.
    pub async fn push_upload(
        &self,
        server: &ServerHandle,
        client_id: &str,
        source: &str,
    ) -> Result<Transfer, PushError> {
        self.attach(server);
        let source = directive::keyword(source)
            .ok_or_else(|| PushError::BadHandler(source.to_owned()))?
            .to_owned();
        let base = self.inner.base_url.get().ok_or(PushError::NoBaseUrl)?;
        let url = format!("{base}/blobs");
        let connection = newest_connection(server, client_id)?;
        let transfer_id = self.new_transfer_id();
        let payload = directive::encode_upload(&transfer_id, &url, &source)
            .ok_or_else(|| PushError::BadHandler(source.clone()))?;
        let mut record = TransferRecord::sent(
            transfer_id,
            client_id.to_owned(),
            "upload".to_owned(),
            unix_millis(),
        );
        record.handler = Some(source);
        record.url = Some(url);
        let deadline = self.inner.settings.default_deadline_ms;
        self.send(
            server,
            connection,
            directive::UPLOAD_EVENT,
            payload,
            deadline,
            record,
        )
        .await
    }

    async fn send(
        &self,
        server: &ServerHandle,
        connection: crate::ConnectionId,
        event: &str,
        payload: PayloadBuf,
        deadline_ms: u64,
        record: TransferRecord,
    ) -> Result<Transfer, PushError> {
        let id = record.transfer_id.clone();
        let (tx, rx) = watch::channel(record.clone());
        lock(&self.inner.active).insert(id.clone(), tx);
        if let Err(e) = self.save(record.clone()).await {
            lock(&self.inner.active).remove(&id);
            return Err(e.into());
        }
        self.publish(&record);
        let replies = match server
            .request(
                connection,
                event,
                payload,
                Some(Duration::from_millis(deadline_ms)),
            )
            .await
        {
            Ok(replies) => replies,
            Err(e) => {
                let error = e.to_string();
                self.update(&id, None, |r, now| {
                    directive::apply_end(r, TransferState::Failed, error, now);
                })
                .await;
                return Err(e.into());
            }
        };
        let service = self.clone();
        let cancel = tokio_util::sync::CancellationToken::new();
        let asked = cancel.clone();
        lock(&self.inner.following).insert(id.clone(), cancel.clone());
        tokio::spawn(async move {
            let inner = service.inner.clone();
            service.follow(id.clone(), replies, asked).await;
            lock(&inner.following).remove(&id);
        });
        Ok(Transfer {
            updates: rx,
            done: false,
            cancel,
        })
    }

    /// Cancels the directive `transfer_id` this server sent, as [`Transfer::cancel`] does:
    /// the client is sent a Cancel and the record ends `cancelled` (unless the client's End
    /// arrives first). `false` when no such directive is being followed (unknown, or ended).
    pub fn cancel(&self, transfer_id: &str) -> bool {
        match lock(&self.inner.following).get(transfer_id) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    /// Turns a directive's replies into record updates until its end.
    async fn follow(
        self,
        id: String,
        mut replies: ReplyStream,
        cancel: tokio_util::sync::CancellationToken,
    ) {
        let mut asked = false;
        loop {
            let item = tokio::select! {
                item = replies.next() => item,
                () = cancel.cancelled(), if !asked => {
                    asked = true;
                    if let Err(e) = replies.cancel() {
                        tracing::debug!(transfer = %id, error = %e, "cancel not sent");
                    }
                    continue;
                }
            };
            let Some(item) = item else { return };
            match item {
                ReplyItem::Part { payload, .. } => {
                    if let Some(map) = directive::report_map(&payload) {
                        self.update(&id, None, |r, _| directive::apply_progress(r, &map))
                            .await;
                    }
                }
                ReplyItem::End(outcome) => {
                    self.update(&id, None, |r, now| end_with(r, outcome, now))
                        .await;
                    return;
                }
            }
        }
    }

    /// Applies `change` to the record `id` (from the active set, else the store), stores
    /// it, tells its watchers and publishes it. `client` names who reported, for records
    /// created by a report.
    async fn update(
        &self,
        id: &str,
        client: Option<&str>,
        change: impl FnOnce(&mut TransferRecord, u64),
    ) -> Option<TransferRecord> {
        let _one_at_a_time = self.inner.updating.lock().await;
        let now = unix_millis();
        let current = lock(&self.inner.active)
            .get(id)
            .map(|tx| tx.borrow().clone());
        let mut record = match current {
            Some(r) => r,
            None => {
                let service = self.clone();
                let key = id.to_owned();
                let stored = tokio::task::spawn_blocking(move || {
                    service.read(|s| s.get(&key)).ok().flatten()
                })
                .await
                .ok()
                .flatten();
                stored.unwrap_or_else(|| {
                    TransferRecord::sent(
                        id.to_owned(),
                        client.unwrap_or("").to_owned(),
                        "fetch-and-process".to_owned(),
                        now,
                    )
                })
            }
        };
        change(&mut record, now);
        if let Err(e) = self.save(record.clone()).await {
            tracing::warn!(transfer = id, error = %e, "transfer record not stored");
        }
        {
            let mut active = lock(&self.inner.active);
            if let Some(tx) = active.get(id) {
                tx.send_replace(record.clone());
            }
            if record.state.is_end() {
                active.remove(id);
            }
        }
        self.publish(&record);
        Some(record)
    }

    /// Hands an update to the live feed and the [`TRANSFERS_CHANNEL`] subscribers.
    fn publish(&self, record: &TransferRecord) {
        let _ = self.inner.live.send(record.clone());
        if let Some(server) = self.inner.server.get()
            && let Ok(json) = serde_json::to_string(record)
        {
            let _ = server.publish(TRANSFERS_CHANNEL, PayloadBuf::Json(json));
        }
    }

    async fn save(&self, record: TransferRecord) -> Result<(), TransfersError> {
        let service = self.clone();
        match tokio::task::spawn_blocking(move || service.read(|s| s.save(&record))).await {
            Ok(result) => result,
            Err(_) => Ok(()),
        }
    }

    /// A sente-lite report event (`blob/progress`, `blob/complete`, `blob/error`).
    async fn on_report(&self, ctx: EventContext) {
        let Some(map) = directive::report_map(&ctx.payload) else {
            tracing::debug!(client = %ctx.client_id, event = %ctx.event, "blob report is not a map");
            return;
        };
        let id = match directive::transfer_id_of(&map) {
            Some(id) => id,
            None => {
                let Some(url) = directive::url_of(&map) else {
                    tracing::debug!(client = %ctx.client_id, "blob report names no transfer");
                    return;
                };
                let service = self.clone();
                let client = ctx.client_id.to_string();
                let found = tokio::task::spawn_blocking(move || {
                    service
                        .read(|s| s.open_by_url(&client, &url))
                        .ok()
                        .flatten()
                })
                .await
                .ok()
                .flatten();
                match found {
                    Some(r) => r.transfer_id,
                    None => self.new_transfer_id(),
                }
            }
        };
        let url = directive::url_of(&map);
        let event = ctx.event.clone();
        self.update(&id, Some(&ctx.client_id), |r, now| {
            if r.url.is_none() {
                r.url = url;
            }
            match &*event {
                directive::PROGRESS_EVENT => directive::apply_progress(r, &map),
                directive::COMPLETE_EVENT => directive::apply_complete(r, &map, now),
                _ => directive::apply_error(r, &map, now),
            }
        })
        .await;
    }
}

/// The record's end from how the directive's request ended. A record that already ended
/// keeps its end: a client without reply frames (a sente-lite client) reports completion with
/// a `blob/complete` event, and its request still ends later, by deadline or close.
fn end_with(r: &mut TransferRecord, outcome: RequestOutcome, now: u64) {
    if r.state.is_end() {
        return;
    }
    let reason = |payload: &PayloadBuf, fallback: &str| {
        directive::report_map(payload)
            .and_then(|m| m.get("error").and_then(|v| v.as_str()).map(str::to_owned))
            .unwrap_or_else(|| fallback.to_owned())
    };
    match outcome {
        RequestOutcome::Completed { status, payload } => match status {
            Status::OK => {
                let map = directive::report_map(&payload).unwrap_or_default();
                directive::apply_complete(r, &map, now);
            }
            Status::ERROR => {
                let map = directive::report_map(&payload).unwrap_or_default();
                directive::apply_error(r, &map, now);
            }
            Status::UNSUPPORTED => {
                let why = reason(&payload, "the client does not take this directive");
                directive::apply_end(r, TransferState::Refused, why, now);
            }
            Status::BUSY => {
                let why = reason(&payload, "the client is at its limit of transfers");
                directive::apply_end(r, TransferState::Refused, why, now);
            }
            Status::CANCELLED => {
                directive::apply_end(r, TransferState::Cancelled, "cancelled".into(), now);
            }
            other => {
                let why = reason(&payload, &format!("ended with status {}", other.0));
                directive::apply_end(r, TransferState::Failed, why, now);
            }
        },
        RequestOutcome::TimedOut => {
            directive::apply_end(r, TransferState::Failed, "deadline passed".into(), now);
        }
        RequestOutcome::Cancelled => {
            directive::apply_end(r, TransferState::Cancelled, "cancelled".into(), now);
        }
        RequestOutcome::Closed => {
            let why = "connection closed before the transfer ended".to_owned();
            directive::apply_end(r, TransferState::Failed, why, now);
        }
    }
}

/// The client's newest connection.
fn newest_connection(
    server: &ServerHandle,
    client_id: &str,
) -> Result<crate::ConnectionId, PushError> {
    server
        .connections()
        .into_iter()
        .filter(|c| &*c.client_id == client_id)
        .map(|c| c.connection_id)
        .max()
        .ok_or_else(|| PushError::UnknownClient(client_id.to_owned()))
}

impl BlobService {
    /// The server this service publishes on, once its routes have seen it.
    pub(crate) fn attach(&self, server: &ServerHandle) {
        let _ = self.inner.server.set(server.clone());
    }

    /// The HTTP routes: `/blobs/{sha256}` and `/api/blobs/…`.
    pub fn routes(&self) -> Router {
        Router::new()
            .route("/blobs/{sha256}", get(http::get_blob).put(upload::put_blob))
            .route("/api/blobs/push", post(api::push))
            .route("/api/blobs/upload", post(api::upload))
            .route("/api/blobs/transfers", get(api::transfers))
            .route("/api/blobs/transfers/tail", get(api::tail))
            .route("/api/blobs/transfers/{id}/cancel", post(api::cancel))
            .route("/api/blobs", get(api::list))
            .with_state(self.clone())
    }
}

impl ServerBuilder {
    /// Registers the blob routes and the `blob/progress`, `blob/complete`, `blob/error`
    /// report events.
    pub fn with_blobs(self, blobs: BlobService) -> Self {
        let mut builder = self.http_routes(blobs.routes());
        for event in [
            directive::PROGRESS_EVENT,
            directive::COMPLETE_EVENT,
            directive::ERROR_EVENT,
        ] {
            let blobs = blobs.clone();
            builder = builder.on_event(event, move |ctx| {
                let blobs = blobs.clone();
                async move {
                    blobs.attach(&ctx.server);
                    blobs.on_report(ctx).await;
                }
            });
        }
        builder
    }
}
