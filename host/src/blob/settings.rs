//! The `[blobs]` table of the server's settings file.

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// How the server stores, serves and accepts blobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct BlobSettings {
    /// Largest blob a client may upload (`PUT /blobs/<sha256>`); a larger announced total is
    /// refused with 413 before any byte is written.
    pub max_upload_bytes: u64,
    /// Bytes read from a blob file per body chunk when serving it. Large chunks keep the
    /// number of file reads (each a trip to tokio's blocking pool) low on big downloads.
    pub serve_chunk_bytes: usize,
    /// Deadline of a directive sent without one in its options.
    pub default_deadline_ms: u64,
    /// `http://host:port` that clients reach this server's blobs under, when the listen
    /// address is not it (a wildcard bind, a proxy in front). Unset: the listen address.
    pub public_url: Option<String>,
}

impl Default for BlobSettings {
    fn default() -> Self {
        Self {
            max_upload_bytes: 4 * 1024 * 1024 * 1024,
            serve_chunk_bytes: 1024 * 1024,
            default_deadline_ms: 10 * 60 * 1000,
            public_url: None,
        }
    }
}

impl BlobSettings {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: &str| Err(ConfigError::Invalid(msg.to_owned()));
        if self.serve_chunk_bytes < 4096 || self.serve_chunk_bytes > 64 * 1024 * 1024 {
            return invalid("blobs.serve-chunk-bytes must be within 4096 and 64 MiB");
        }
        if self.default_deadline_ms == 0 {
            return invalid("blobs.default-deadline-ms must be above 0");
        }
        Ok(())
    }
}
