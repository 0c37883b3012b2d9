//! The responder's table: the peer's requests this side is answering.
//!
//! [`crate::correlate`] bounds the requests we make; this table bounds the ones the peer makes
//! of us, so a peer cannot start more work than the configured limit however it sends its
//! frames. A request enters when it arrives and leaves only when the application sends its
//! End. A Cancel from the peer marks the request but keeps its slot: the work it asked for
//! may still be running, and counting it as finished would let a peer that sends
//! request + cancel in a loop start unbounded work.

use crate::correlate::{RequestId, UnknownRequest};

/// Capacity of the responder table when a session type does not choose one.
pub const DEFAULT_ANSWERING: usize = 16;

/// What to do with a request the peer just sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Admission {
    /// Entered the table; hand it to the application.
    Admitted,
    /// The table is at its limit; answer `BUSY` without involving the application.
    Busy,
    /// A request with this id is still being answered: the peer broke the protocol.
    Duplicate,
}

/// Up to `min(limit, R)` peer requests being answered at once. Ids and cancel marks are kept
/// in two parallel arrays (5 bytes a slot rather than 8 with padding): the table is part of
/// every connection's fixed memory.
#[derive(Debug)]
pub struct Answering<const R: usize> {
    /// Each request's id and whether the peer cancelled it: one table, so admitting and
    /// removing are one push and one swap each.
    entries: heapless::Vec<(RequestId, bool), R>,
    limit: usize,
}

impl<const R: usize> Answering<R> {
    /// An empty table admitting at most `limit` requests (capped at the capacity `R`).
    pub fn new(limit: usize) -> Self {
        Self {
            entries: heapless::Vec::new(),
            limit: limit.min(R),
        }
    }

    /// Most requests admitted at once.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Requests being answered, cancelled ones included.
    pub fn in_flight(&self) -> usize {
        self.entries.len()
    }

    /// True while `id` is being answered (until its End is sent).
    pub fn contains(&self, id: RequestId) -> bool {
        self.entry(id).is_some()
    }

    /// True when the peer cancelled `id` and its End has not been sent yet.
    pub fn is_cancelled(&self, id: RequestId) -> bool {
        self.entry(id).is_some_and(|e| e.1)
    }

    /// Decides about a request that just arrived.
    pub fn admit(&mut self, id: RequestId) -> Admission {
        if self.contains(id) {
            return Admission::Duplicate;
        }
        if self.entries.len() >= self.limit || self.entries.push((id, false)).is_err() {
            return Admission::Busy;
        }
        Admission::Admitted
    }

    /// Marks `id` cancelled by the peer. Returns true the first time for a request in flight;
    /// a cancel for a request already ended (or already cancelled) is stale.
    pub fn cancel(&mut self, id: RequestId) -> bool {
        match self.entries.iter_mut().find(|e| e.0 == id) {
            Some((_, cancelled)) if !*cancelled => {
                *cancelled = true;
                true
            }
            _ => false,
        }
    }

    /// Frees the slot of `id`: its End was sent.
    pub fn finish(&mut self, id: RequestId) -> Result<(), UnknownRequest> {
        let i = self.position(id).ok_or(UnknownRequest)?;
        self.remove(i);
        Ok(())
    }

    /// Where `id` is, for [`Self::remove`] after the End went out.
    pub(crate) fn slot_of(&self, id: RequestId) -> Option<usize> {
        self.position(id)
    }

    /// Frees slot `i` (found by [`Self::slot_of`]).
    /// An index past the end is ignored: checking it here lets the compiler drop
    /// `swap_remove`'s own bounds panic (its message and location) from the image.
    pub(crate) fn remove(&mut self, i: usize) {
        if i < self.entries.len() {
            self.entries.swap_remove(i);
        }
    }

    /// Forgets everything (the connection is gone).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    fn position(&self, id: RequestId) -> Option<usize> {
        self.entries.iter().position(|e| e.0 == id)
    }

    fn entry(&self, id: RequestId) -> Option<&(RequestId, bool)> {
        self.entries.iter().find(|e| e.0 == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancelled_request_keeps_its_slot_until_finished() {
        let mut t = Answering::<4>::new(2);
        assert_eq!(t.admit(1), Admission::Admitted);
        assert_eq!(t.admit(1), Admission::Duplicate);
        assert_eq!(t.admit(2), Admission::Admitted);
        assert_eq!(t.admit(3), Admission::Busy);
        assert!(t.cancel(1));
        assert!(!t.cancel(1), "a second cancel is stale");
        assert!(t.is_cancelled(1));
        assert_eq!(t.admit(3), Admission::Busy, "cancel does not free the slot");
        assert_eq!(t.finish(1), Ok(()));
        assert_eq!(t.finish(1), Err(UnknownRequest));
        assert_eq!(t.admit(3), Admission::Admitted);
        assert!(!t.cancel(9));
    }

    #[test]
    fn the_limit_is_capped_by_the_capacity() {
        let mut t = Answering::<2>::new(100);
        assert_eq!(t.limit(), 2);
        assert_eq!(t.admit(1), Admission::Admitted);
        assert_eq!(t.admit(2), Admission::Admitted);
        assert_eq!(t.admit(3), Admission::Busy);
        t.clear();
        assert_eq!(t.in_flight(), 0);
    }
}
