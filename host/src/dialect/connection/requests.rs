//! The server's requests to a text client (`ServerHandle::request`, blob directives). Text
//! dialects have no reply frames: the request goes out as an event with its payload, and the
//! client answers, if at all, with events of its own (a sente-lite client reports a blob
//! transfer with `blob/progress` and `blob/complete`). The reply stream is kept open until
//! the request's timeout (it ends `TimedOut`), a cancel (`Cancelled`) or the close (`Closed`),
//! so the requester sees the same ends as with a native client that never answers.

use std::collections::HashMap;

use sentelite_core::RequestId;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::request::{ReplyItem, RequestOutcome};

/// Server requests one text connection may have open, like a native connection.
const MAX_OPEN: usize = crate::connection::MAX_SERVER_REQUESTS;

struct Open {
    replies: mpsc::Sender<ReplyItem>,
    deadline: Option<Instant>,
}

#[derive(Default)]
pub(super) struct ServerRequests {
    next_id: RequestId,
    open: HashMap<RequestId, Open>,
}

impl ServerRequests {
    /// Opens a request, or `None` when the connection has [`MAX_OPEN`] already.
    pub(super) fn open(
        &mut self,
        replies: mpsc::Sender<ReplyItem>,
        deadline: Option<Instant>,
    ) -> Option<RequestId> {
        if self.open.len() >= MAX_OPEN {
            return None;
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.open.insert(id, Open { replies, deadline });
        Some(id)
    }

    /// Ends `id` with `outcome`, if it is open.
    pub(super) fn end(&mut self, id: RequestId, outcome: RequestOutcome) {
        if let Some(open) = self.open.remove(&id) {
            // One item into a fresh stream of REPLY_BUFFER slots: never full. A requester
            // that went away needs nothing.
            let _ = open.replies.try_send(ReplyItem::End(outcome));
        }
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.open.values().filter_map(|o| o.deadline).min()
    }

    /// Ends every request whose deadline passed with `TimedOut`.
    pub(super) fn expire(&mut self, now: Instant) {
        let due: Vec<RequestId> = self
            .open
            .iter()
            .filter(|(_, o)| o.deadline.is_some_and(|d| d <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.end(id, RequestOutcome::TimedOut);
        }
    }

    /// The connection ended: every open request ends `Closed`.
    pub(super) fn close_all(&mut self) {
        let ids: Vec<RequestId> = self.open.keys().copied().collect();
        for id in ids {
            self.end(id, RequestOutcome::Closed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn requests_end_once_by_deadline_cancel_or_close() {
        let now = Instant::now();
        let mut r = ServerRequests::default();
        let (tx, mut rx) = mpsc::channel(4);
        let timed = r
            .open(tx.clone(), Some(now + Duration::from_millis(5)))
            .unwrap();
        let cancelled = r.open(tx.clone(), None).unwrap();
        let closed = r.open(tx, None).unwrap();
        assert_eq!(r.next_deadline(), Some(now + Duration::from_millis(5)));
        r.expire(now);
        assert!(rx.try_recv().is_err());
        r.expire(now + Duration::from_millis(5));
        r.end(cancelled, RequestOutcome::Cancelled);
        r.end(timed, RequestOutcome::Cancelled);
        r.close_all();
        let got: Vec<ReplyItem> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(
            got,
            [
                ReplyItem::End(RequestOutcome::TimedOut),
                ReplyItem::End(RequestOutcome::Cancelled),
                ReplyItem::End(RequestOutcome::Closed),
            ]
        );
        assert_ne!(closed, cancelled);
    }

    #[test]
    fn a_connection_holds_a_bounded_number() {
        let mut r = ServerRequests::default();
        let (tx, _rx) = mpsc::channel(1);
        for _ in 0..MAX_OPEN {
            assert!(r.open(tx.clone(), None).is_some());
        }
        assert!(r.open(tx, None).is_none());
    }
}
