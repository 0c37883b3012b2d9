//! The content-addressed blob store: `<data-dir>/blobs/<sha256>`, one file per blob, named
//! by the lowercase hex SHA-256 of its content.
//!
//! A blob is written to a temporary file in the same directory and renamed into place once
//! its hash is known, so a reader (the HTTP route, `blob ls`) never sees a half-written blob.
//! Unfinished uploads live in `blobs/partial/<sha256>` until verified.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Directory of the store inside the data dir.
pub const BLOB_DIR: &str = "blobs";
/// Directory of unfinished uploads inside the store.
pub const PARTIAL_DIR: &str = "partial";

/// Bytes read per step while hashing and copying: large enough that the hash, not the
/// system calls, sets the pace; small enough that a file of any size stays out of memory.
const COPY_BUF: usize = 1024 * 1024;

/// A valid blob name: 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BlobId(String);

/// Text that is not a SHA-256 in hex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a SHA-256 (64 hex digits): {0:?}")]
pub struct BadBlobId(pub String);

impl BlobId {
    /// Parses 64 hex digits (either case; kept lowercase).
    pub fn parse(text: &str) -> Result<Self, BadBlobId> {
        if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(text.to_ascii_lowercase()))
        } else {
            Err(BadBlobId(text.chars().take(80).collect()))
        }
    }

    /// The id of a finished hash.
    pub fn from_digest(digest: &[u8]) -> Self {
        Self(hex::encode(digest))
    }

    /// The 64 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BlobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for BlobId {
    type Error = BadBlobId;
    fn try_from(text: String) -> Result<Self, BadBlobId> {
        Self::parse(&text)
    }
}

impl From<BlobId> for String {
    fn from(id: BlobId) -> String {
        id.0
    }
}

/// One stored blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBlob {
    /// Its SHA-256.
    pub sha256: BlobId,
    /// Its size in bytes.
    pub size: u64,
}

/// Why the store could not do something.
#[derive(Debug, thiserror::Error)]
pub enum BlobStoreError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
}

/// The blob directory of one data dir. Cheap to clone; every method is blocking file IO
/// (call from `spawn_blocking` in async code).
#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BlobStoreError + '_ {
    move |source| BlobStoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl BlobStore {
    /// Opens (creating if needed) the store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, BlobStoreError> {
        let dir = data_dir.join(BLOB_DIR);
        let partial = dir.join(PARTIAL_DIR);
        std::fs::create_dir_all(&partial).map_err(io_err(&partial))?;
        Ok(Self { dir })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where blob `id` lives (whether or not it exists).
    pub fn path_of(&self, id: &BlobId) -> PathBuf {
        self.dir.join(id.as_str())
    }

    /// Where an unfinished upload of `id` lives.
    pub fn partial_path(&self, id: &BlobId) -> PathBuf {
        self.dir.join(PARTIAL_DIR).join(id.as_str())
    }

    /// The blob, if stored.
    pub fn get(&self, id: &BlobId) -> Option<StoredBlob> {
        let meta = std::fs::metadata(self.path_of(id)).ok()?;
        meta.is_file().then(|| StoredBlob {
            sha256: id.clone(),
            size: meta.len(),
        })
    }

    /// Stores a copy of the file at `path`.
    pub fn add_file(&self, path: &Path) -> Result<StoredBlob, BlobStoreError> {
        let file = File::open(path).map_err(io_err(path))?;
        self.add_reader(file)
    }

    /// Stores everything `source` yields, hashing it on the way; the content is never held
    /// in memory whole.
    pub fn add_reader(&self, mut source: impl Read) -> Result<StoredBlob, BlobStoreError> {
        let temp = self.temp_path();
        let result = (|| {
            let mut out = File::create(&temp).map_err(io_err(&temp))?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; COPY_BUF];
            let mut size = 0u64;
            loop {
                let n = match source.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(io_err(&temp)(e)),
                };
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n]).map_err(io_err(&temp))?;
                size += n as u64;
            }
            out.sync_all().map_err(io_err(&temp))?;
            let id = BlobId::from_digest(&hasher.finalize());
            let dest = self.path_of(&id);
            std::fs::rename(&temp, &dest).map_err(io_err(&dest))?;
            Ok(StoredBlob { sha256: id, size })
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        result
    }

    /// Every stored blob, ordered by hash. Temporary files and partial uploads are not blobs.
    pub fn list(&self) -> Result<Vec<StoredBlob>, BlobStoreError> {
        let mut blobs = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let entry = entry.map_err(io_err(&self.dir))?;
            let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(|n| BlobId::parse(n).ok())
            else {
                continue;
            };
            let meta = entry.metadata().map_err(io_err(&entry.path()))?;
            if meta.is_file() {
                blobs.push(StoredBlob {
                    sha256: id,
                    size: meta.len(),
                });
            }
        }
        blobs.sort_by(|a, b| a.sha256.cmp(&b.sha256));
        Ok(blobs)
    }

    /// Deletes blob `id`; `false` when it was not there.
    pub fn remove(&self, id: &BlobId) -> Result<bool, BlobStoreError> {
        let path = self.path_of(id);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Moves a verified upload into the store.
    pub(crate) fn commit_partial(&self, id: &BlobId) -> Result<(), BlobStoreError> {
        let from = self.partial_path(id);
        let to = self.path_of(id);
        std::fs::rename(&from, &to).map_err(io_err(&to))
    }

    /// A fresh temporary name in the store's directory (same file system, so the final
    /// rename is atomic); never a valid blob name, so listings skip it.
    fn temp_path(&self) -> PathBuf {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!(".tmp-{}-{n}", std::process::id()))
    }
}

/// The SHA-256 of a file, read in steps.
pub fn hash_file(path: &Path) -> Result<StoredBlob, BlobStoreError> {
    let mut file = File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; COPY_BUF];
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(path)(e)),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok(StoredBlob {
        sha256: BlobId::from_digest(&hasher.finalize()),
        size,
    })
}
