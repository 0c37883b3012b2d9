//! The `[logs]` table of the server's settings file.

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// How the server stores and keeps client logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct LogsSettings {
    /// Accept `telemetry/log-batch` requests and `telemetry/log-msg` events.
    pub enabled: bool,
    /// Also append every record to `logs/all-clients.log` as JSON lines.
    pub file: bool,
    /// Size at which the JSON-lines file is rotated.
    pub file_max_bytes: u64,
    /// Rotated files kept (`all-clients.log.1` … `.N`).
    pub file_keep: usize,
    /// Records older than this many days are deleted (0 keeps them forever).
    pub retention_days: u64,
    /// Beyond this many records the oldest are deleted (0 for no limit).
    pub max_records: u64,
    /// How often retention runs.
    pub retention_interval_ms: u64,
    /// Batches waiting for the store writer; when full, new batches wait (clients are
    /// slowed, nothing is dropped).
    pub ingest_queue: usize,
    /// Most batches written in one transaction.
    pub max_batches_per_commit: usize,
}

impl Default for LogsSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            file: true,
            file_max_bytes: 64 * 1024 * 1024,
            file_keep: 5,
            retention_days: 30,
            max_records: 0,
            retention_interval_ms: 60_000,
            ingest_queue: 1024,
            max_batches_per_commit: 256,
        }
    }
}

impl LogsSettings {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: &str| Err(ConfigError::Invalid(msg.to_owned()));
        if self.file_max_bytes < 1024 {
            return invalid("logs.file-max-bytes must be at least 1024");
        }
        if self.retention_interval_ms == 0 {
            return invalid("logs.retention-interval-ms must be above 0");
        }
        if self.ingest_queue == 0 {
            return invalid("logs.ingest-queue must be at least 1");
        }
        if self.max_batches_per_commit == 0 {
            return invalid("logs.max-batches-per-commit must be at least 1");
        }
        Ok(())
    }
}
