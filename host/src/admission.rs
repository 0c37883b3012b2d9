//! Who may hold a connection slot before the WebSocket upgrade.
//!
//! An accepted TCP connection costs a file descriptor and a task before it has said anything,
//! so unauthenticated peers are bounded twice:
//!
//! - **Half-open connections** (HTTP connections not yet upgraded, including keep-alive
//!   connections between requests) are limited to `max-half-open`. When the table is full the
//!   oldest one is shed to admit the newcomer: a flood of silent sockets then cycles through
//!   the table instead of locking out everyone else, and each of them was already bounded by
//!   the header-read timeout.
//! - **Connections in handshake per address** (from the TCP accept until the Hello is
//!   accepted) are limited to `max-handshaking-per-address`, so one address cannot take every
//!   slot. A connection past that cap is closed at once. IPv4 peers reaching an IPv6
//!   listener are counted by their IPv4 address.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

/// The limits and the live tables.
#[derive(Debug)]
pub(crate) struct Admission {
    max_half_open: usize,
    max_per_address: usize,
    tables: Mutex<Tables>,
}

#[derive(Debug, Default)]
struct Tables {
    /// Half-open connections by admission order (oldest first); dropping the sender sheds it.
    half_open: BTreeMap<u64, oneshot::Sender<()>>,
    next_seq: u64,
    /// Connections in handshake per peer address.
    handshaking: HashMap<IpAddr, usize>,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    /// The peer's address already has `max-handshaking-per-address` connections in handshake.
    #[error("too many connections in handshake from this address")]
    AddressFull,
}

impl Admission {
    pub(crate) fn new(max_half_open: usize, max_per_address: usize) -> Arc<Self> {
        Arc::new(Self {
            max_half_open,
            max_per_address,
            tables: Mutex::new(Tables::default()),
        })
    }

    /// Admits a new connection from `ip`, shedding the oldest half-open connection if the
    /// table is full. The connection is half-open and in handshake until the returned guards
    /// are dropped.
    pub(crate) fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
    ) -> Result<(HandshakeSlot, HalfOpen), Refused> {
        let mut tables = self.lock();
        let count = tables.handshaking.entry(ip).or_insert(0);
        if *count >= self.max_per_address {
            return Err(Refused::AddressFull);
        }
        *count += 1;
        let shed_oldest = if tables.half_open.len() >= self.max_half_open {
            tables.half_open.pop_first()
        } else {
            None
        };
        let seq = tables.next_seq;
        tables.next_seq += 1;
        let (tx, shed) = oneshot::channel();
        tables.half_open.insert(seq, tx);
        drop(tables);
        if let Some((_, oldest)) = shed_oldest {
            // Dropping the sender tells that connection's task to close.
            drop(oldest);
            tracing::debug!("half-open connections at the limit: shed the oldest");
        }
        Ok((
            HandshakeSlot {
                admission: self.clone(),
                ip,
            },
            HalfOpen {
                admission: self.clone(),
                seq,
                shed,
            },
        ))
    }

    /// Half-open connections right now.
    #[cfg(test)]
    fn half_open(&self) -> usize {
        self.lock().half_open.len()
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        // The tables stay consistent at every await-free step; a panic elsewhere does not
        // make them unusable.
        self.tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One connection counted against its address's handshake cap; released on drop (when the
/// Hello is accepted or the connection ends).
#[derive(Debug)]
pub(crate) struct HandshakeSlot {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        let mut tables = self.admission.lock();
        if let Some(count) = tables.handshaking.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                tables.handshaking.remove(&self.ip);
            }
        }
    }
}

/// One connection in the half-open table; leaves it on drop (upgrade or close).
#[derive(Debug)]
pub(crate) struct HalfOpen {
    admission: Arc<Admission>,
    seq: u64,
    shed: oneshot::Receiver<()>,
}

impl HalfOpen {
    /// Resolves when a newer connection needed the slot: the connection must close now.
    pub(crate) async fn shed(&mut self) {
        let _ = (&mut self.shed).await;
    }
}

impl Drop for HalfOpen {
    fn drop(&mut self) {
        self.admission.lock().half_open.remove(&self.seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    fn is_shed(h: &mut HalfOpen) -> bool {
        matches!(h.shed.try_recv(), Err(oneshot::error::TryRecvError::Closed))
    }

    #[test]
    fn a_full_table_sheds_the_oldest_and_releases_on_drop() {
        let admission = Admission::new(2, 10);
        let (_s1, mut first) = admission.admit(A).unwrap();
        let (_s2, mut second) = admission.admit(B).unwrap();
        let (_s3, mut third) = admission.admit(B).unwrap();
        assert!(is_shed(&mut first));
        assert!(!is_shed(&mut second));
        assert!(!is_shed(&mut third));
        assert_eq!(admission.half_open(), 2);
        drop(first);
        assert_eq!(admission.half_open(), 2, "a shed entry is already gone");
        drop(second);
        assert_eq!(admission.half_open(), 1);
    }

    #[test]
    fn one_address_cannot_take_every_handshake_slot() {
        let admission = Admission::new(100, 2);
        let a1 = admission.admit(A).unwrap();
        let _a2 = admission.admit(A).unwrap();
        assert_eq!(admission.admit(A).unwrap_err(), Refused::AddressFull);
        assert!(admission.admit(B).is_ok());
        // Leaving the half-open table (the upgrade) keeps the handshake slot; only its own
        // drop frees it.
        let (slot, half_open) = a1;
        drop(half_open);
        assert_eq!(admission.admit(A).unwrap_err(), Refused::AddressFull);
        drop(slot);
        assert!(admission.admit(A).is_ok());
    }
}
