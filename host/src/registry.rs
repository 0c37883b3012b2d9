//! The table of handshaken connections, by connection id and by client id (one client id may
//! hold several connections: a device reconnecting before its old socket timed out, or a
//! program with several windows).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use sentelite_core::Stats;

use crate::ConnectionId;
use crate::pubsub::drops::DropCounters;
use crate::queue::CommandTx;

/// What the rest of the server knows about one handshaken connection.
#[derive(Debug)]
pub(crate) struct ConnEntry {
    pub(crate) id: ConnectionId,
    pub(crate) uid: Arc<str>,
    pub(crate) client_id: Arc<str>,
    pub(crate) boot_id: u32,
    pub(crate) firmware: Option<Arc<str>>,
    pub(crate) capabilities: u32,
    pub(crate) remote: SocketAddr,
    pub(crate) connected_since: SystemTime,
    /// Largest frame the client accepts, from its Hello.
    pub(crate) peer_max_frame: usize,
    pub(crate) commands: CommandTx,
    /// Refreshed by the connection task after each step.
    pub(crate) stats: Mutex<Stats>,
    /// Channel messages missed as a subscriber and undelivered as a publisher.
    pub(crate) channel_drops: DropCounters,
}

impl ConnEntry {
    pub(crate) fn stats(&self) -> Stats {
        *lock(&self.stats)
    }
}

/// The registry is full.
#[derive(Debug)]
pub(crate) struct RegistryFull;

#[derive(Debug, Default)]
pub(crate) struct Registry {
    conns: HashMap<ConnectionId, Arc<ConnEntry>>,
    by_client: HashMap<Arc<str>, Vec<ConnectionId>>,
}

impl Registry {
    /// Adds a connection unless `max` are registered already. Check and insert happen under
    /// one lock, so concurrent handshakes cannot overshoot the limit.
    pub(crate) fn try_insert(
        &mut self,
        entry: Arc<ConnEntry>,
        max: usize,
    ) -> Result<(), RegistryFull> {
        if self.conns.len() >= max {
            return Err(RegistryFull);
        }
        self.by_client
            .entry(entry.client_id.clone())
            .or_default()
            .push(entry.id);
        self.conns.insert(entry.id, entry);
        Ok(())
    }

    pub(crate) fn remove(&mut self, id: ConnectionId) -> Option<Arc<ConnEntry>> {
        let entry = self.conns.remove(&id)?;
        if let Some(ids) = self.by_client.get_mut(&entry.client_id) {
            ids.retain(|&c| c != id);
            if ids.is_empty() {
                self.by_client.remove(&entry.client_id);
            }
        }
        Some(entry)
    }

    pub(crate) fn get(&self, id: ConnectionId) -> Option<Arc<ConnEntry>> {
        self.conns.get(&id).cloned()
    }

    pub(crate) fn by_client(&self, client_id: &str) -> Vec<Arc<ConnEntry>> {
        self.by_client
            .get(client_id)
            .map(|ids| ids.iter().filter_map(|id| self.get(*id)).collect())
            .unwrap_or_default()
    }

    pub(crate) fn all(&self) -> Vec<Arc<ConnEntry>> {
        self.conns.values().cloned().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.conns.len()
    }
}

/// Locks a mutex, carrying on if a panicking thread poisoned it: every critical section here
/// leaves the tables consistent between statements.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
