//! Blobs held in memory: a shared store of committed blobs by SHA-256, and a sink per transfer
//! that publishes into it only after verification.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use sentelite_core::blob::{BlobSink, SinkError};

/// Committed blobs by their SHA-256.
type Blobs = HashMap<[u8; 32], Arc<[u8]>>;

/// Committed blobs by SHA-256; cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    blobs: Arc<Mutex<Blobs>>,
    max_blob: Option<u64>,
}

impl MemoryStore {
    /// An empty store taking blobs of any size.
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuse blobs larger than `bytes` up front ([`SinkError::TooLarge`]).
    pub fn max_blob(mut self, bytes: u64) -> Self {
        self.max_blob = Some(bytes);
        self
    }

    /// The committed blob with this SHA-256.
    pub fn get(&self, sha256: &[u8; 32]) -> Option<Arc<[u8]>> {
        self.lock().get(sha256).cloned()
    }

    /// How many blobs are committed.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nothing is committed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A sink for one transfer into this store.
    pub fn sink(&self) -> MemorySink {
        MemorySink {
            store: self.clone(),
            buf: Vec::new(),
            size: 0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Blobs> {
        self.blobs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One transfer's bytes until they are verified and committed into the [`MemoryStore`].
#[derive(Debug)]
pub struct MemorySink {
    store: MemoryStore,
    buf: Vec<u8>,
    size: u64,
}

impl BlobSink for MemorySink {
    fn erase_block(&self) -> u32 {
        1
    }

    fn contains(&mut self, sha256: &[u8; 32]) -> bool {
        self.store.lock().contains_key(sha256)
    }

    fn begin(&mut self, size: u64) -> Result<(), SinkError> {
        if self.store.max_blob.is_some_and(|max| size > max) {
            return Err(SinkError::TooLarge);
        }
        let capacity = usize::try_from(size).map_err(|_| SinkError::TooLarge)?;
        self.buf = Vec::new();
        self.buf
            .try_reserve_exact(capacity)
            .map_err(|_| SinkError::NoSpace)?;
        self.size = size;
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), SinkError> {
        let start = usize::try_from(offset).map_err(|_| SinkError::TooLarge)?;
        if start > self.buf.len() {
            return Err(SinkError::Refused);
        }
        if offset + data.len() as u64 > self.size {
            return Err(SinkError::TooLarge);
        }
        self.buf.truncate(start);
        self.buf.extend_from_slice(data);
        Ok(())
    }

    fn durable(&self) -> u64 {
        // Nothing in memory survives a crash, so no saved state may resume from it.
        0
    }

    fn commit(&mut self, sha256: &[u8; 32]) -> Result<(), SinkError> {
        if self.buf.len() as u64 != self.size {
            return Err(SinkError::Refused);
        }
        let blob: Arc<[u8]> = std::mem::take(&mut self.buf).into();
        self.store.lock().insert(*sha256, blob);
        Ok(())
    }

    fn abort(&mut self) {
        self.buf = Vec::new();
    }
}
