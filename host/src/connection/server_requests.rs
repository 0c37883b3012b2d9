//! The server's requests waiting for the client's answer, and the reply items on their way to
//! the requesters' streams.
//!
//! Items keep their order: once one waits for room in its stream, every later one waits
//! behind it, and the connection stops reading its socket until the queue drains, so a slow
//! consumer slows the client instead of growing memory.

use std::collections::{HashMap, VecDeque};

use sentelite_core::RequestId;
use tokio::sync::mpsc;

use crate::request::{ReplyItem, RequestOutcome};

/// A reply item its stream had no room for yet.
pub(super) struct Stalled {
    id: RequestId,
    to: mpsc::Sender<ReplyItem>,
    item: ReplyItem,
}

#[derive(Default)]
pub(super) struct ServerRequests {
    streams: HashMap<RequestId, mpsc::Sender<ReplyItem>>,
    stalled: VecDeque<Stalled>,
}

/// Nobody reads this request's replies any more: the caller cancels it towards the client.
#[must_use]
pub(super) struct Abandoned(pub(super) Option<RequestId>);

impl ServerRequests {
    /// A request was sent; its items go to `to`.
    pub(super) fn insert(&mut self, id: RequestId, to: mpsc::Sender<ReplyItem>) {
        self.streams.insert(id, to);
    }

    /// Forgets `id` without a final item (its requester is gone). True if it was known.
    pub(super) fn remove(&mut self, id: RequestId) -> bool {
        self.streams.remove(&id).is_some()
    }

    /// True while `id` waits for the client's answer.
    pub(super) fn contains(&self, id: RequestId) -> bool {
        self.streams.contains_key(&id)
    }

    /// True while reply items wait for room; the connection does not read meanwhile.
    pub(super) fn is_stalled(&self) -> bool {
        !self.stalled.is_empty()
    }

    /// A reply part from the client.
    pub(super) fn part(&mut self, id: RequestId, item: ReplyItem) -> Abandoned {
        match self.streams.get(&id).cloned() {
            Some(to) => self.forward(id, to, item),
            None => Abandoned(None),
        }
    }

    /// The request ended (the client's End, or the session's deadline, cancel or close).
    pub(super) fn end(&mut self, id: RequestId, outcome: RequestOutcome) -> Abandoned {
        match self.streams.remove(&id) {
            Some(to) => self.forward(id, to, ReplyItem::End(outcome)),
            None => Abandoned(None),
        }
    }

    /// Every request still waiting ends with `Closed` (the connection is gone).
    pub(super) fn close_all(&mut self) {
        for (id, to) in std::mem::take(&mut self.streams) {
            let Abandoned(_) = self.forward(id, to, ReplyItem::End(RequestOutcome::Closed));
        }
    }

    /// Hands an item to its stream, or queues it behind those already waiting.
    fn forward(
        &mut self,
        id: RequestId,
        to: mpsc::Sender<ReplyItem>,
        item: ReplyItem,
    ) -> Abandoned {
        if !self.stalled.is_empty() {
            self.stalled.push_back(Stalled { id, to, item });
            return Abandoned(None);
        }
        match to.try_send(item) {
            Ok(()) => Abandoned(None),
            Err(mpsc::error::TrySendError::Full(item)) => {
                self.stalled.push_back(Stalled { id, to, item });
                Abandoned(None)
            }
            Err(mpsc::error::TrySendError::Closed(item)) => self.stream_gone(id, &item),
        }
    }

    /// Waits for room in the stream of the oldest waiting item. Boxed because it is rare and
    /// every idle connection would otherwise carry its space.
    pub(super) async fn room(&self) -> bool {
        match self.stalled.front() {
            Some(front) => Box::pin(front.to.reserve()).await.is_ok(),
            None => std::future::pending().await,
        }
    }

    /// The oldest waiting item's stream has room (`true`) or is gone (`false`).
    pub(super) fn unstall(&mut self, room: bool) -> Abandoned {
        let Some(Stalled { id, to, item }) = self.stalled.pop_front() else {
            return Abandoned(None);
        };
        if !room {
            return self.stream_gone(id, &item);
        }
        match to.try_send(item) {
            Ok(()) => Abandoned(None),
            Err(mpsc::error::TrySendError::Full(item)) => {
                self.stalled.push_front(Stalled { id, to, item });
                Abandoned(None)
            }
            Err(mpsc::error::TrySendError::Closed(item)) => self.stream_gone(id, &item),
        }
    }

    /// Hands the waiting items to their streams, waiting for room, for at most `limit`: on
    /// close, requesters still get every part and their end as long as they keep reading.
    pub(super) async fn flush_stalled(&mut self, limit: std::time::Duration) {
        let stalled = std::mem::take(&mut self.stalled);
        let _ = tokio::time::timeout(limit, async {
            for Stalled { to, item, .. } in stalled {
                let _ = to.send(item).await;
            }
        })
        .await;
    }

    fn stream_gone(&mut self, id: RequestId, item: &ReplyItem) -> Abandoned {
        if matches!(item, ReplyItem::Part { .. }) && self.streams.remove(&id).is_some() {
            Abandoned(Some(id))
        } else {
            Abandoned(None)
        }
    }
}
