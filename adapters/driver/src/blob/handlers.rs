//! Handler routing: the application names its blob handlers (`ns/name`, as directives spell
//! them without the colon) and what each does with a blob — a sink for fetched blobs, a source
//! for uploads — and caps how many transfers run at once.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_channel::{Receiver, Sender};
use sentelite_core::RequestId;
use sentelite_core::blob::{BlobSink, SinkError};

use super::file_sink::FileSink;
use super::memory_sink::MemoryStore;

/// Makes the sink for one transfer of the blob with this SHA-256.
pub type SinkFactory = Arc<dyn Fn(&[u8; 32]) -> Box<dyn BlobSink + Send> + Send + Sync>;

/// What a `blob/upload` directive may name as its source.
#[derive(Debug, Clone)]
pub enum UploadSource {
    /// A file, read when the upload starts.
    File(PathBuf),
    /// Bytes in memory.
    Bytes(Arc<[u8]>),
}

/// Transfers allowed at once unless [`BlobHandlers::max_transfers`] says otherwise.
pub const DEFAULT_MAX_TRANSFERS: usize = 4;

/// The application's blob handlers. Cheap to clone: clones share the running-transfer count
/// and the cancel routes.
#[derive(Clone)]
pub struct BlobHandlers {
    sinks: HashMap<String, SinkFactory>,
    fallback: Option<SinkFactory>,
    sources: HashMap<String, UploadSource>,
    limit: usize,
    running: Arc<AtomicUsize>,
    cancels: Arc<Mutex<HashMap<RequestId, Sender<()>>>>,
}

impl Default for BlobHandlers {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for BlobHandlers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sinks: Vec<_> = self.sinks.keys().collect();
        sinks.sort();
        f.debug_struct("BlobHandlers")
            .field("sinks", &sinks)
            .field("sources", &self.sources)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

/// `:ns/name` and `ns/name` name the same handler.
fn key(name: &str) -> String {
    name.strip_prefix(':').unwrap_or(name).to_string()
}

impl BlobHandlers {
    /// No handlers; every directive is refused as unsupported until some are added.
    pub fn new() -> Self {
        Self {
            sinks: HashMap::new(),
            fallback: None,
            sources: HashMap::new(),
            limit: DEFAULT_MAX_TRANSFERS,
            running: Arc::new(AtomicUsize::new(0)),
            cancels: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Fetched blobs for handler `name` go to the sink `factory` makes.
    pub fn sink(
        mut self,
        name: &str,
        factory: impl Fn(&[u8; 32]) -> Box<dyn BlobSink + Send> + Send + Sync + 'static,
    ) -> Self {
        self.sinks.insert(key(name), Arc::new(factory));
        self
    }

    /// Fetched blobs for handlers not named otherwise go to the sink `factory` makes (a
    /// store that takes anything). Without it an unknown handler is refused as unsupported.
    pub fn any_handler(
        mut self,
        factory: impl Fn(&[u8; 32]) -> Box<dyn BlobSink + Send> + Send + Sync + 'static,
    ) -> Self {
        self.fallback = Some(Arc::new(factory));
        self
    }

    /// Fetched blobs for handler `name` are stored in `dir` under their SHA-256 hex.
    pub fn directory(self, name: &str, dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        self.sink(name, move |sha| Box::new(FileSink::new(dir.clone(), sha)))
    }

    /// Fetched blobs for handler `name` are kept in `store`.
    pub fn memory(self, name: &str, store: MemoryStore) -> Self {
        self.sink(name, move |_| Box::new(store.sink()))
    }

    /// `blob/upload` may name `name` to upload `source`.
    pub fn upload_source(mut self, name: &str, source: UploadSource) -> Self {
        self.sources.insert(key(name), source);
        self
    }

    /// At most `n` transfers at once; more are answered BUSY.
    pub fn max_transfers(mut self, n: usize) -> Self {
        self.limit = n;
        self
    }

    /// Stops the transfer the server started with request `id` (route
    /// [`ClientEvent::Cancelled`](crate::ClientEvent::Cancelled) here). False when no such
    /// transfer runs.
    pub fn cancel(&self, id: RequestId) -> bool {
        let sender = self.lock_cancels().remove(&id);
        sender.is_some_and(|s| s.try_send(()).is_ok())
    }

    /// Transfers running now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    pub(crate) fn sink_for(&self, name: &str) -> Option<&SinkFactory> {
        self.sinks.get(&key(name)).or(self.fallback.as_ref())
    }

    pub(crate) fn source_for(&self, name: &str) -> Option<&UploadSource> {
        self.sources.get(&key(name))
    }

    /// A slot for one transfer, or `None` at the limit.
    pub(crate) fn admit(&self, id: RequestId) -> Option<Slot> {
        let taken = self
            .running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limit).then_some(n + 1)
            });
        taken.ok()?;
        let (tx, rx) = async_channel::bounded(1);
        self.lock_cancels().insert(id, tx);
        Some(Slot {
            handlers: self.clone(),
            id,
            cancel: rx,
        })
    }

    fn lock_cancels(&self) -> std::sync::MutexGuard<'_, HashMap<RequestId, Sender<()>>> {
        self.cancels.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One admitted transfer; frees its place and its cancel route when dropped.
pub(crate) struct Slot {
    handlers: BlobHandlers,
    id: RequestId,
    cancel: Receiver<()>,
}

impl Slot {
    /// Completes when the server cancels this transfer (never if it does not).
    pub(crate) async fn cancelled(&self) {
        if self.cancel.recv().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.handlers.lock_cancels().remove(&self.id);
        self.handlers.running.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A boxed sink as a sink (the fetch machine is generic over a sized sink type).
pub(crate) struct DynSink(pub(crate) Box<dyn BlobSink + Send>);

impl BlobSink for DynSink {
    fn erase_block(&self) -> u32 {
        self.0.erase_block()
    }
    fn contains(&mut self, sha256: &[u8; 32]) -> bool {
        self.0.contains(sha256)
    }
    fn begin(&mut self, size: u64) -> Result<(), SinkError> {
        self.0.begin(size)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), SinkError> {
        self.0.write_at(offset, data)
    }
    fn durable(&self) -> u64 {
        self.0.durable()
    }
    fn commit(&mut self, sha256: &[u8; 32]) -> Result<(), SinkError> {
        self.0.commit(sha256)
    }
    fn abort(&mut self) {
        self.0.abort()
    }
}
