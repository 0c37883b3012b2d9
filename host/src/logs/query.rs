//! Filters for reading the log store, shared by `sentelite logs query`, the HTTP API and the
//! live tail, so the three select records the same way.

use sentelite_core::log::Level;
use serde::{Deserialize, Serialize};

use super::entry::LogEntry;

/// Which records to return. Every field narrows the result; an empty query returns the newest
/// `limit` records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct LogQuery {
    /// This level and the ones above it (`warn` also returns error, fatal and report).
    pub level: Option<String>,
    /// Only this client.
    pub client: Option<String>,
    /// Only this event id.
    pub id: Option<String>,
    /// Received at or after this Unix millisecond.
    pub since_ms: Option<u64>,
    /// Received before this Unix millisecond.
    pub until_ms: Option<u64>,
    /// Message contains this text (case-sensitive).
    pub grep: Option<String>,
    /// Most records returned (the newest ones, oldest first); 0 means the default of 100.
    pub limit: usize,
}

/// Records a query returns when it names no limit.
pub const DEFAULT_LIMIT: usize = 100;

/// A query that cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The level is not one of the seven names.
    #[error("unknown level {0:?} (expected trace, debug, info, warn, error, fatal or report)")]
    Level(String),
}

impl LogQuery {
    /// The lowest level asked for, checked.
    pub fn min_level(&self) -> Result<Option<Level>, QueryError> {
        match &self.level {
            None => Ok(None),
            Some(name) => Level::from_name(name)
                .map(Some)
                .ok_or_else(|| QueryError::Level(name.clone())),
        }
    }

    /// The limit in force.
    pub fn effective_limit(&self) -> usize {
        if self.limit == 0 {
            DEFAULT_LIMIT
        } else {
            self.limit
        }
    }

    /// True when `entry` passes every filter (used by the live tail; the store runs the same
    /// filters in SQL).
    pub fn matches(&self, entry: &LogEntry) -> bool {
        let level_ok = match self.min_level() {
            Ok(Some(min)) => Level::from_name(&entry.level).is_some_and(|l| l >= min),
            Ok(None) => true,
            Err(_) => false,
        };
        level_ok
            && self.client.as_ref().is_none_or(|c| *c == entry.client_id)
            && self
                .id
                .as_ref()
                .is_none_or(|i| entry.id.as_ref() == Some(i))
            && self.since_ms.is_none_or(|t| entry.received_ms >= t)
            && self.until_ms.is_none_or(|t| entry.received_ms < t)
            && self
                .grep
                .as_ref()
                .is_none_or(|g| entry.message.contains(g.as_str()))
    }
}
