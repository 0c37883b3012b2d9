//! The requester's table of requests in flight.
//!
//! Every request that enters the table leaves it exactly once, with one [`RequestEnd`]:
//! its final [`Status`] from the responder, its own deadline, a cancel by the requester, or
//! the connection closing (Sente's `:chsk/closed`). Replies may arrive in any order across
//! requests and in many parts per request, which is what nREPL and LSP need.

use crate::frame::Status;
use crate::time::{Duration, Instant, earliest};

/// Identifies a request among those in flight on one connection.
pub type RequestId = u32;

/// How a request ended on the requester's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RequestEnd {
    /// The responder sent its final frame with this status.
    Completed(Status),
    /// The requester's deadline passed first.
    TimedOut,
    /// The requester cancelled it.
    Cancelled,
    /// The connection dropped before the request completed.
    Closed,
}

/// The table is full: the caller must wait for a request to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PendingFull;

/// No request in flight has this id (it ended already, or never existed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UnknownRequest;

#[derive(Debug, Clone, Copy)]
struct Slot {
    id: RequestId,
    deadline: Option<Instant>,
    next_seq: u32,
    /// Set when the request has ended but the end has not yet been reported.
    ended: Option<RequestEnd>,
}

/// Up to `N` requests in flight. Ids are never 0 and never reused while in the table.
pub struct Pending<const N: usize> {
    slots: [Option<Slot>; N],
    next_id: RequestId,
}

impl<const N: usize> Default for Pending<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Pending<N> {
    /// An empty table.
    pub const fn new() -> Self {
        Self {
            slots: [None; N],
            next_id: 1,
        }
    }

    /// Requests still awaiting their end (not counting ended ones not yet reported).
    pub fn in_flight(&self) -> usize {
        self.slots
            .iter()
            .flatten()
            .filter(|s| s.ended.is_none())
            .count()
    }

    /// Occupied slots, including ended requests whose end has not been taken yet.
    pub fn occupied(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// Capacity.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// True when `id` is in flight.
    pub fn contains(&self, id: RequestId) -> bool {
        self.find(id).is_some()
    }

    /// Registers a new request; `timeout` of `None` means it waits until the connection ends.
    pub fn insert(
        &mut self,
        now: Instant,
        timeout: Option<Duration>,
    ) -> Result<RequestId, PendingFull> {
        let free = self
            .slots
            .iter()
            .position(Option::is_none)
            .ok_or(PendingFull)?;
        let id = self.fresh_id();
        self.slots[free] = Some(Slot {
            id,
            deadline: timeout.map(|t| now + t),
            next_seq: 0,
            ended: None,
        });
        Ok(id)
    }

    /// Records a streamed part; returns the part number that was expected, so the caller can
    /// tell a gap (lost part on a lossy link) from an in-order part.
    pub fn on_part(&mut self, id: RequestId, seq: u32) -> Result<u32, UnknownRequest> {
        let slot = self.find_mut(id).ok_or(UnknownRequest)?;
        let expected = slot.next_seq;
        slot.next_seq = seq.saturating_add(1).max(expected);
        Ok(expected)
    }

    /// Removes a request that its responder finished. Not reported again by `poll_ended`.
    pub fn complete(&mut self, id: RequestId) -> Result<(), UnknownRequest> {
        let idx = self.index_of(id).ok_or(UnknownRequest)?;
        self.slots[idx] = None;
        Ok(())
    }

    /// Ends a request by the requester's choice; reported by `poll_ended` as `Cancelled`.
    pub fn cancel(&mut self, id: RequestId) -> Result<(), UnknownRequest> {
        let slot = self.find_mut(id).ok_or(UnknownRequest)?;
        slot.ended = Some(RequestEnd::Cancelled);
        Ok(())
    }

    /// Removes a request without reporting it (used when its frame could not even be sent).
    pub fn forget(&mut self, id: RequestId) {
        if let Some(idx) = self.index_of(id) {
            self.slots[idx] = None;
        }
    }

    /// Marks every request whose deadline is at or before `now` as timed out.
    pub fn expire(&mut self, now: Instant) {
        for slot in self.slots.iter_mut() {
            if let Some(slot) = slot
                && slot.ended.is_none()
                && slot.deadline.is_some_and(|d| d <= now)
            {
                slot.ended = Some(RequestEnd::TimedOut);
            }
        }
    }

    /// Marks every request in flight as failed with `Closed`.
    pub fn close_all(&mut self) {
        for slot in self.slots.iter_mut() {
            if let Some(slot) = slot
                && slot.ended.is_none()
            {
                slot.ended = Some(RequestEnd::Closed);
            }
        }
    }

    /// Takes one ended request and frees its slot.
    pub fn poll_ended(&mut self) -> Option<(RequestId, RequestEnd)> {
        for entry in self.slots.iter_mut() {
            if let Some(Slot {
                id,
                ended: Some(end),
                ..
            }) = *entry
            {
                *entry = None;
                return Some((id, end));
            }
        }
        None
    }

    /// The earliest deadline among requests in flight.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.slots
            .iter()
            .flatten()
            .filter(|s| s.ended.is_none())
            .fold(None, |acc, s| earliest(acc, s.deadline))
    }

    fn fresh_id(&mut self) -> RequestId {
        loop {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1).max(1);
            if !self.slots.iter().flatten().any(|s| s.id == id) {
                return id;
            }
        }
    }

    fn index_of(&self, id: RequestId) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| matches!(s, Some(s) if s.id == id && s.ended.is_none()))
    }

    fn find(&self, id: RequestId) -> Option<&Slot> {
        self.index_of(id).and_then(|i| self.slots[i].as_ref())
    }

    fn find_mut(&mut self, id: RequestId) -> Option<&mut Slot> {
        self.index_of(id).and_then(|i| self.slots[i].as_mut())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_request_ends_once() {
        let mut p = Pending::<2>::new();
        let now = Instant::from_millis(0);
        let a = p.insert(now, Some(Duration::from_millis(10))).unwrap();
        let b = p.insert(now, None).unwrap();
        assert_eq!(p.insert(now, None), Err(PendingFull));
        assert_eq!(p.next_deadline(), Some(Instant::from_millis(10)));
        assert_eq!(p.on_part(b, 0), Ok(0));
        assert_eq!(
            p.on_part(b, 2),
            Ok(1),
            "a gap is reported as the expected seq"
        );
        p.expire(Instant::from_millis(10));
        assert_eq!(p.poll_ended(), Some((a, RequestEnd::TimedOut)));
        assert_eq!(p.on_part(a, 0), Err(UnknownRequest));
        p.close_all();
        assert_eq!(p.poll_ended(), Some((b, RequestEnd::Closed)));
        assert_eq!(p.poll_ended(), None);
        assert_eq!(p.occupied(), 0);
    }

    #[test]
    fn ids_skip_zero_and_ids_in_use() {
        let mut p = Pending::<2>::new();
        p.next_id = u32::MAX;
        let a = p.insert(Instant::ZERO, None).unwrap();
        let b = p.insert(Instant::ZERO, None).unwrap();
        assert_eq!((a, b), (u32::MAX, 1));
        p.complete(b).unwrap();
        p.next_id = u32::MAX;
        assert_eq!(p.insert(Instant::ZERO, None).unwrap(), 1);
    }
}
