//! The live feed of new records, split by level so a subscriber that wants only the severe
//! ones is not drowned by the rest.
//!
//! One broadcast channel per lowest level: a record of level L goes to the channels of every
//! level up to L that has a subscriber. A tail of `level=error` thus holds only error, fatal
//! and report records in its buffer; with a single channel for all levels, a flood of info
//! records made such a tail lag and lose the very records it was waiting for (found by
//! `sentelite-bench latency` under 256 loaded clients).

use std::sync::Arc;

use sentelite_core::log::Level;
use tokio::sync::broadcast;

use super::entry::{EntryRef, LogEntry};

/// Records a subscriber may fall behind by before it is told how many it missed.
const BUFFER: usize = 4096;

/// The senders, one per lowest level (index = `Level as usize`). Cheap to clone.
#[derive(Clone)]
pub(crate) struct LiveFeed {
    by_level: Arc<[broadcast::Sender<Arc<LogEntry>>; Level::ALL.len()]>,
}

impl LiveFeed {
    pub(crate) fn new() -> Self {
        Self {
            by_level: Arc::new(std::array::from_fn(|_| broadcast::channel(BUFFER).0)),
        }
    }

    /// New records of `level` and above.
    pub(crate) fn subscribe(&self, level: Level) -> broadcast::Receiver<Arc<LogEntry>> {
        self.by_level[level as usize].subscribe()
    }

    /// True when anyone listens at all: without subscribers no record is copied.
    pub(crate) fn has_subscribers(&self) -> bool {
        self.by_level.iter().any(|s| s.receiver_count() > 0)
    }

    /// Hands `entry` to the subscribers whose lowest level it reaches. A level name the
    /// store does not know (it normalises them) counts as the lowest.
    pub(crate) fn send(&self, entry: &EntryRef<'_>) {
        let level = Level::from_name(entry.level).map_or(0, |l| l as usize);
        let mut shared: Option<Arc<LogEntry>> = None;
        for sender in &self.by_level[..=level] {
            if sender.receiver_count() == 0 {
                continue;
            }
            let entry = shared.get_or_insert_with(|| Arc::new(LogEntry::from_record(entry)));
            let _ = sender.send(entry.clone());
        }
    }
}
