//! Where fetched bytes go. The fetch machine never owns storage: it writes through this
//! trait, so one machine serves files, memory and flash partitions alike.

use core::fmt;

/// Storage for one blob being fetched.
///
/// The machine calls [`begin`](BlobSink::begin) once before the first byte of a transfer
/// that starts at offset 0, then [`write_at`](BlobSink::write_at) with offsets that either
/// continue the previous write or restart at an offset the sink reported
/// [`durable`](BlobSink::durable) and aligned to its [`erase_block`](BlobSink::erase_block)
/// (after a resume). [`commit`](BlobSink::commit) is only called once every byte has been
/// hashed and the hash matched; [`abort`](BlobSink::abort) discards a partial or refused
/// blob and may be called more than once.
pub trait BlobSink {
    /// Granularity a resumed write must start on: 1 for files and memory, the flash erase
    /// size (often 4096) for a flash partition that erases lazily.
    fn erase_block(&self) -> u32;
    /// True when the sink already holds a committed blob with this SHA-256, so nothing
    /// needs fetching (deduplication).
    fn contains(&mut self, sha256: &[u8; 32]) -> bool;
    /// A transfer of `size` bytes starts from offset 0; anything written before is void.
    fn begin(&mut self, size: u64) -> Result<(), SinkError>;
    /// Store `data` at `offset`.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), SinkError>;
    /// Bytes from offset 0 that would survive a crash or power loss right now.
    fn durable(&self) -> u64;
    /// Make the blob final under `sha256`; only called after the hash of every byte matched.
    fn commit(&mut self, sha256: &[u8; 32]) -> Result<(), SinkError>;
    /// Discard everything written for this transfer.
    fn abort(&mut self);
}

/// Why a sink refused a call. Every one ends the transfer as failed: retrying the download
/// would not make room or repair the storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SinkError {
    /// The storage is full.
    NoSpace,
    /// The blob is larger than this sink can ever hold.
    TooLarge,
    /// The storage failed to read or write.
    Io,
    /// The sink will not take this blob or this write (wrong offset, policy).
    Refused,
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SinkError::NoSpace => "sink has no space left",
            SinkError::TooLarge => "blob too large for the sink",
            SinkError::Io => "sink i/o error",
            SinkError::Refused => "sink refused the write",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SinkError {}

/// A sink over a buffer the caller owns: no allocation, so small blobs can be fetched into
/// RAM on a device, and tests get an exact record of what was written and committed.
///
/// Writes must be contiguous (each starts at or before the end of what is held) and every
/// written byte counts as durable.
#[derive(Debug)]
pub struct SliceSink<'a> {
    buf: &'a mut [u8],
    size: u64,
    len: u64,
    committed: Option<[u8; 32]>,
    aborts: u32,
}

impl<'a> SliceSink<'a> {
    /// A sink able to hold blobs up to `buf.len()` bytes.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self {
            buf,
            size: 0,
            len: 0,
            committed: None,
            aborts: 0,
        }
    }

    /// The committed blob, if a transfer was committed.
    pub fn committed(&self) -> Option<&[u8]> {
        self.committed?;
        self.buf.get(..usize::try_from(self.size).ok()?)
    }

    /// The hash the blob was committed under.
    pub fn committed_sha256(&self) -> Option<&[u8; 32]> {
        self.committed.as_ref()
    }

    /// How many times [`BlobSink::abort`] was called.
    pub fn aborts(&self) -> u32 {
        self.aborts
    }
}

impl BlobSink for SliceSink<'_> {
    fn erase_block(&self) -> u32 {
        1
    }

    fn contains(&mut self, sha256: &[u8; 32]) -> bool {
        self.committed.as_ref() == Some(sha256)
    }

    fn begin(&mut self, size: u64) -> Result<(), SinkError> {
        if usize::try_from(size).map_or(true, |s| s > self.buf.len()) {
            return Err(SinkError::TooLarge);
        }
        self.size = size;
        self.len = 0;
        self.committed = None;
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), SinkError> {
        if self.committed.is_some() || offset > self.len {
            return Err(SinkError::Refused);
        }
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|e| *e <= self.size)
            .ok_or(SinkError::TooLarge)?;
        let (Ok(start), Ok(stop)) = (usize::try_from(offset), usize::try_from(end)) else {
            return Err(SinkError::TooLarge);
        };
        let dst = self.buf.get_mut(start..stop).ok_or(SinkError::TooLarge)?;
        dst.copy_from_slice(data);
        self.len = self.len.max(end);
        Ok(())
    }

    fn durable(&self) -> u64 {
        self.len
    }

    fn commit(&mut self, sha256: &[u8; 32]) -> Result<(), SinkError> {
        if self.len != self.size {
            return Err(SinkError::Refused);
        }
        self.committed = Some(*sha256);
        Ok(())
    }

    fn abort(&mut self) {
        self.len = 0;
        self.committed = None;
        self.aborts = self.aborts.saturating_add(1);
    }
}
