//! The centralized log file: every stored record appended as one JSON line to
//! `logs/all-clients.log` in the data dir, for people who tail files or ship them on (Vector,
//! promtail). When the file passes its size limit it is rotated: `all-clients.log.1` is the
//! previous file, `.2` the one before, and the oldest beyond `keep` is deleted.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::entry::EntryRef;
use super::line::write_line;

/// Folder of the file inside the data dir.
pub const SINK_DIR: &str = "logs";
/// The file's name.
pub const SINK_FILE: &str = "all-clients.log";

/// Appends records as JSON lines, rotating by size.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    file: File,
    /// Bytes in the current file.
    written: u64,
    max_bytes: u64,
    keep: usize,
    /// Lines not yet written to the file; lines are written straight into it, so a record
    /// costs no allocation and no copy before the write.
    pending: Vec<u8>,
}

/// Pending bytes at which the sink writes to the file in the middle of an append.
const WRITE_AT: usize = 64 * 1024;

impl FileSink {
    /// Opens (creating) `logs/all-clients.log` under `data_dir`, rotating past `max_bytes` and
    /// keeping `keep` old files.
    pub fn open(data_dir: &Path, max_bytes: u64, keep: usize) -> std::io::Result<Self> {
        let dir = data_dir.join(SINK_DIR);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(SINK_FILE);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let written = file.metadata()?.len();
        Ok(Self {
            path,
            file,
            written,
            max_bytes: max_bytes.max(1),
            keep,
            pending: Vec::with_capacity(WRITE_AT + 1024),
        })
    }

    /// The current file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `entries` (owned [`super::LogEntry`]s or records borrowed from a batch),
    /// rotating first when the file is full. Written before returning, so a reader sees whole
    /// lines.
    pub fn append<'e, E: Into<EntryRef<'e>>>(
        &mut self,
        entries: impl IntoIterator<Item = E>,
    ) -> std::io::Result<()> {
        for entry in entries {
            if self.written + self.pending.len() as u64 >= self.max_bytes {
                self.write_pending()?;
                self.rotate()?;
            }
            write_line(&mut self.pending, &entry.into());
            if self.pending.len() >= WRITE_AT {
                self.write_pending()?;
            }
        }
        self.write_pending()
    }

    /// Writes the pending lines to the file (dropping them if that fails, so a full disk does
    /// not grow the buffer).
    fn write_pending(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let result = self.file.write_all(&self.pending);
        if result.is_ok() {
            self.written += self.pending.len() as u64;
        }
        self.pending.clear();
        result
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let numbered = |n: usize| self.path.with_extension(format!("log.{n}"));
        if self.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            let _ = std::fs::remove_file(numbered(self.keep));
            for n in (1..self.keep).rev() {
                let from = numbered(n);
                if from.exists() {
                    std::fs::rename(&from, numbered(n + 1))?;
                }
            }
            std::fs::rename(&self.path, numbered(1))?;
        }
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.written = 0;
        Ok(())
    }
}
