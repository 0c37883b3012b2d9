//! The table of handshaken connections, by connection id, by client id and by uid. Whether one client
//! id may hold several connections is the `duplicate-client-id` policy
//! ([`DuplicateClientId`]), applied here under the table's lock so two racing handshakes
//! cannot both win.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use sentelite_core::Stats;

use crate::ConnectionId;
use crate::command::Command;
use crate::pubsub::drops::DropCounters;
use crate::queue::CommandTx;
use crate::settings::DuplicateClientId;

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
    /// Events from this client that found no handler.
    pub(crate) events_unhandled: AtomicU64,
    /// Channel messages missed as a subscriber and undelivered as a publisher.
    pub(crate) channel_drops: DropCounters,
}

impl ConnEntry {
    pub(crate) fn stats(&self) -> Stats {
        *lock(&self.stats)
    }
}

/// Why a connection was not registered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// `max` connections are registered already.
    Full,
    /// The client id has a live connection and the policy keeps it.
    Duplicate,
}

#[derive(Debug, Default)]
pub(crate) struct Registry {
    conns: HashMap<ConnectionId, Arc<ConnEntry>>,
    by_client: HashMap<Arc<str>, Vec<ConnectionId>>,
    /// Channel messages name their publisher by uid; observers of a channel look the
    /// publisher up here. Several connections may share a uid (a Sente user's tabs).
    by_uid: HashMap<Arc<str>, Vec<ConnectionId>>,
}

impl Registry {
    /// Adds a connection unless `max` are registered already or `policy` keeps an older
    /// connection of the same client id. Returns the connections it replaces, already removed
    /// from the table; the caller closes them with `REPLACED`. Check and insert happen under
    /// one lock, so concurrent handshakes cannot overshoot the limit.
    pub(crate) fn try_insert(
        &mut self,
        entry: Arc<ConnEntry>,
        max: usize,
        policy: DuplicateClientId,
    ) -> Result<Vec<Arc<ConnEntry>>, Refused> {
        let live = self.by_client(&entry.client_id);
        let replaced = match policy {
            DuplicateClientId::Allow => Vec::new(),
            DuplicateClientId::Replace => live,
            DuplicateClientId::Refuse if live.iter().all(|c| c.boot_id == entry.boot_id) => live,
            DuplicateClientId::Refuse => return Err(Refused::Duplicate),
        };
        if self.conns.len() - replaced.len() >= max {
            return Err(Refused::Full);
        }
        for old in &replaced {
            self.remove(old.id);
        }
        self.by_client
            .entry(entry.client_id.clone())
            .or_default()
            .push(entry.id);
        self.by_uid
            .entry(entry.uid.clone())
            .or_default()
            .push(entry.id);
        self.conns.insert(entry.id, entry);
        Ok(replaced)
    }

    pub(crate) fn remove(&mut self, id: ConnectionId) -> Option<Arc<ConnEntry>> {
        let entry = self.conns.remove(&id)?;
        if let Some(ids) = self.by_uid.get_mut(&entry.uid) {
            ids.retain(|&c| c != id);
            if ids.is_empty() {
                self.by_uid.remove(&entry.uid);
            }
        }
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

    /// The newest connection that holds `uid`.
    pub(crate) fn by_uid(&self, uid: &str) -> Option<Arc<ConnEntry>> {
        self.by_uid
            .get(uid)
            .and_then(|ids| ids.last())
            .and_then(|id| self.get(*id))
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

/// Tells connections a newer one of their client replaced (the duplicate-client-id policy
/// `replace`, or a reboot under `refuse`) to close with `REPLACED`. Urgent: the close must not
/// wait behind the traffic it ends.
pub(crate) fn close_replaced(replaced: Vec<Arc<ConnEntry>>, by: ConnectionId) {
    for old in replaced {
        tracing::info!(
            connection = old.id,
            by,
            client_id = %old.client_id,
            "connection replaced by a newer one of its client"
        );
        let _ = old.commands.send_urgent(Box::new(Command::Close {
            code: sentelite_core::CloseCode::REPLACED,
            reason: "replaced by a newer connection of this client",
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::queue;

    fn entry(id: ConnectionId, client_id: &str, boot_id: u32) -> Arc<ConnEntry> {
        let (commands, _) = queue(1);
        Arc::new(ConnEntry {
            id,
            uid: format!("u{id}").into(),
            client_id: client_id.into(),
            boot_id,
            firmware: None,
            capabilities: 0,
            remote: "127.0.0.1:1".parse().unwrap(),
            connected_since: SystemTime::now(),
            peer_max_frame: 4096,
            commands,
            stats: Mutex::new(Stats::default()),
            events_unhandled: AtomicU64::new(0),
            channel_drops: Default::default(),
        })
    }

    fn ids(list: &[Arc<ConnEntry>]) -> Vec<ConnectionId> {
        list.iter().map(|e| e.id).collect()
    }

    #[test]
    fn refuse_keeps_the_live_connection_unless_the_boot_matches() {
        let mut r = Registry::default();
        let refuse = DuplicateClientId::Refuse;
        assert!(
            r.try_insert(entry(1, "dev", 7), 10, refuse)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            r.try_insert(entry(2, "dev", 8), 10, refuse).unwrap_err(),
            Refused::Duplicate
        );
        let replaced = r.try_insert(entry(3, "dev", 7), 10, refuse).unwrap();
        assert_eq!(ids(&replaced), [1]);
        assert_eq!(ids(&r.by_client("dev")), [3]);
        assert_eq!(r.len(), 1);
        // The replaced connection's uid is gone with it; the new one is found by its own.
        assert!(r.by_uid("u1").is_none());
        assert_eq!(r.by_uid("u3").map(|e| e.id), Some(3));
        r.remove(3);
        assert!(r.by_uid("u3").is_none());
    }

    #[test]
    fn a_uid_shared_by_two_connections_is_found_until_the_last_one_leaves() {
        let mut r = Registry::default();
        let shared = |id| {
            let mut e = Arc::try_unwrap(entry(id, "tab", 0)).unwrap();
            e.uid = "user-1".into();
            Arc::new(e)
        };
        let allow = DuplicateClientId::Allow;
        r.try_insert(shared(1), 10, allow).unwrap();
        r.try_insert(shared(2), 10, allow).unwrap();
        assert_eq!(r.by_uid("user-1").map(|e| e.id), Some(2));
        r.remove(2);
        assert_eq!(r.by_uid("user-1").map(|e| e.id), Some(1));
        r.remove(1);
        assert!(r.by_uid("user-1").is_none());
    }

    #[test]
    fn replace_and_allow() {
        let mut r = Registry::default();
        r.try_insert(entry(1, "dev", 1), 10, DuplicateClientId::Allow)
            .unwrap();
        r.try_insert(entry(2, "dev", 2), 10, DuplicateClientId::Allow)
            .unwrap();
        assert_eq!(r.len(), 2);
        let replaced = r
            .try_insert(entry(3, "dev", 3), 10, DuplicateClientId::Replace)
            .unwrap();
        let mut gone = ids(&replaced);
        gone.sort_unstable();
        assert_eq!(gone, [1, 2]);
        assert_eq!(ids(&r.by_client("dev")), [3]);
    }

    #[test]
    fn a_replacement_does_not_count_against_the_limit_but_a_newcomer_does() {
        let mut r = Registry::default();
        let policy = DuplicateClientId::Replace;
        r.try_insert(entry(1, "dev", 1), 1, policy).unwrap();
        assert_eq!(
            r.try_insert(entry(2, "other", 1), 1, policy).unwrap_err(),
            Refused::Full
        );
        assert_eq!(
            ids(&r.try_insert(entry(3, "dev", 2), 1, policy).unwrap()),
            [1]
        );
    }
}
