//! A directory of blobs named by their SHA-256 hex. A transfer writes `<sha256>.part`; only a
//! verified blob is fsync'd and renamed to `<sha256>`, so a reader never sees partial or
//! unverified bytes under a blob's name.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sentelite_core::blob::hex;
use sentelite_core::blob::{BlobSink, SinkError};

/// Writes one blob into a directory. Made per transfer (it knows the hash it expects, which
/// names the `.part` file).
#[derive(Debug)]
pub struct FileSink {
    dir: PathBuf,
    part_path: PathBuf,
    part: Option<File>,
    /// Where the file cursor is, to skip a seek for contiguous writes.
    cursor: u64,
    size: u64,
    /// Bytes from 0 written so far.
    len: u64,
    /// Bytes from 0 known to be on disk (fsync'd).
    synced: u64,
    /// fsync after this many more bytes; 0 only at commit.
    sync_every: u64,
}

impl FileSink {
    /// A sink for the blob `sha256` in `dir` (created if missing when the transfer begins).
    pub fn new(dir: impl Into<PathBuf>, sha256: &[u8; 32]) -> Self {
        let dir = dir.into();
        let part_path = dir.join(format!("{}.part", hex::encode(sha256)));
        Self {
            dir,
            part_path,
            part: None,
            cursor: 0,
            size: 0,
            len: 0,
            synced: 0,
            sync_every: 0,
        }
    }

    /// fsync every `bytes` written, so that [`BlobSink::durable`] grows during the transfer
    /// and a saved transfer state can resume after a crash. Costs throughput; 0 (the default)
    /// syncs only at commit.
    pub fn sync_every(mut self, bytes: u64) -> Self {
        self.sync_every = bytes;
        self
    }

    /// The path a committed blob has.
    pub fn blob_path(dir: &Path, sha256: &[u8; 32]) -> PathBuf {
        dir.join(hex::encode(sha256).as_str())
    }

    fn open(&mut self) -> Result<&mut File, SinkError> {
        if self.part.is_none() {
            fs::create_dir_all(&self.dir).map_err(sink_error)?;
            let file = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(&self.part_path)
                .map_err(sink_error)?;
            self.part = Some(file);
            self.cursor = 0;
        }
        self.part.as_mut().ok_or(SinkError::Io)
    }

    fn sync(&mut self) -> Result<(), SinkError> {
        if let Some(file) = &self.part {
            file.sync_data().map_err(sink_error)?;
            self.synced = self.len;
        }
        Ok(())
    }
}

fn sink_error(e: io::Error) -> SinkError {
    match e.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => SinkError::NoSpace,
        io::ErrorKind::FileTooLarge => SinkError::TooLarge,
        _ => SinkError::Io,
    }
}

impl BlobSink for FileSink {
    fn erase_block(&self) -> u32 {
        1
    }

    fn contains(&mut self, sha256: &[u8; 32]) -> bool {
        Self::blob_path(&self.dir, sha256).is_file()
    }

    fn begin(&mut self, size: u64) -> Result<(), SinkError> {
        self.abort();
        self.size = size;
        self.open()?;
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), SinkError> {
        if offset > self.len {
            return Err(SinkError::Refused);
        }
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|end| *end <= self.size)
            .ok_or(SinkError::TooLarge)?;
        let cursor = self.cursor;
        let file = self.open()?;
        if cursor != offset {
            file.seek(SeekFrom::Start(offset)).map_err(sink_error)?;
        }
        file.write_all(data).map_err(sink_error)?;
        self.cursor = end;
        // A rewrite from an earlier offset makes the bytes after it stale until rewritten.
        self.len = end;
        self.synced = self.synced.min(offset);
        if self.sync_every > 0 && self.len - self.synced >= self.sync_every {
            self.sync()?;
        }
        Ok(())
    }

    fn durable(&self) -> u64 {
        self.synced
    }

    fn commit(&mut self, sha256: &[u8; 32]) -> Result<(), SinkError> {
        if self.len != self.size || self.part.is_none() {
            return Err(SinkError::Refused);
        }
        self.sync()?;
        self.part = None;
        fs::rename(&self.part_path, Self::blob_path(&self.dir, sha256)).map_err(sink_error)?;
        // The rename itself survives a crash only once the directory is synced.
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(sink_error)?;
        self.len = 0;
        self.synced = 0;
        Ok(())
    }

    fn abort(&mut self) {
        if self.part.take().is_some() || self.part_path.exists() {
            let _ = fs::remove_file(&self.part_path);
        }
        self.len = 0;
        self.synced = 0;
        self.cursor = 0;
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        // An uncommitted transfer leaves nothing behind.
        if self.part.is_some() {
            self.abort();
        }
    }
}
