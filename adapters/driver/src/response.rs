//! The requester's view of one request: streamed parts, then exactly one final outcome.

use async_channel::{Receiver, Sender};
use sentelite_core::RequestId;
use sentelite_core::frame::PayloadBuf;

use crate::call::Call;

/// How one of our requests ended: the core's one outcome type, shared with the host.
pub use sentelite_core::RequestOutcome;

/// How the driver ends a [`Response`]: the outcome, and the last part if it was still waiting
/// for room in the full queue when the request ended.
#[derive(Debug)]
pub(crate) struct ResponseEnd {
    pub last_part: Option<PayloadBuf>,
    pub outcome: RequestOutcome,
}

/// The driver's side of one [`Response`]: a bounded queue of parts and a slot for the end.
///
/// Ending closes the parts queue after the end is in its slot, so a reader that finds the
/// queue closed and empty always finds the end (or the driver gone).
#[derive(Debug, Clone)]
pub(crate) struct ResponseFeed {
    pub parts: Sender<PayloadBuf>,
    pub end: Sender<ResponseEnd>,
}

impl ResponseFeed {
    /// Puts the end in its slot and closes the parts queue. Idempotent: only the first end
    /// counts.
    pub(crate) fn end(&self, last_part: Option<PayloadBuf>, outcome: RequestOutcome) {
        let _ = self.end.try_send(ResponseEnd { last_part, outcome });
        self.parts.close();
    }
}

/// The answer to a request, arriving in parts.
///
/// Read parts with [`Response::next_part`] until it returns `None`; the outcome is then in
/// [`Response::outcome`]. Parts wait in a queue of [`crate::ClientOptions::response_parts`]
/// entries; while it is full the client stops reading its connection (the server, and every
/// other response on the connection, wait too) until the application takes a part, so a
/// slow reader costs a bounded amount of memory. Dropping a response before its end cancels
/// the request, so the server can stop working on it.
#[derive(Debug)]
pub struct Response {
    id: RequestId,
    parts: Receiver<PayloadBuf>,
    end: Receiver<ResponseEnd>,
    calls: Sender<Call>,
    outcome: Option<RequestOutcome>,
}

impl Response {
    /// A response fed through the returned [`ResponseFeed`], queueing at most `capacity`
    /// parts.
    pub(crate) fn new(id: RequestId, capacity: usize, calls: Sender<Call>) -> (Self, ResponseFeed) {
        let (parts_tx, parts) = async_channel::bounded(capacity.max(1));
        let (end_tx, end) = async_channel::bounded(1);
        let response = Self {
            id,
            parts,
            end,
            calls,
            outcome: None,
        };
        let feed = ResponseFeed {
            parts: parts_tx,
            end: end_tx,
        };
        (response, feed)
    }

    /// The request's id on its connection.
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// The next streamed part, or `None` once the request has ended.
    pub async fn next_part(&mut self) -> Option<PayloadBuf> {
        if self.outcome.is_some() {
            return None;
        }
        if let Ok(part) = self.parts.recv().await {
            return Some(part);
        }
        // The queue is closed and empty: the end is in its slot, or the driver is gone
        // without ending this request because the client closed.
        let end = self.end.recv().await.unwrap_or(ResponseEnd {
            last_part: None,
            outcome: RequestOutcome::Closed,
        });
        // A part that waited for room when the request ended comes last, before `None`.
        self.outcome = Some(end.outcome);
        end.last_part
    }

    /// Parts received and waiting to be read: at most
    /// [`crate::ClientOptions::response_parts`] (and one more, handed out last, when the
    /// request ended while the queue was full).
    pub fn queued_parts(&self) -> usize {
        self.parts.len()
    }

    /// The final outcome, once [`Self::next_part`] has returned `None`.
    pub fn outcome(&self) -> Option<&RequestOutcome> {
        self.outcome.as_ref()
    }

    /// Waits for the end, discarding parts not read yet, and returns the outcome.
    pub async fn finish(mut self) -> RequestOutcome {
        while self.next_part().await.is_some() {}
        self.outcome.take().unwrap_or(RequestOutcome::Closed)
    }

    /// Asks to stop the request. It then ends with [`RequestOutcome::Cancelled`] unless its
    /// end was already on the way.
    pub fn cancel(&self) {
        if self.outcome.is_none() {
            let _ = self.calls.try_send(Call::Cancel { id: self.id });
        }
    }
}

impl Drop for Response {
    fn drop(&mut self) {
        if self.outcome.is_none() && !self.parts.is_closed() {
            let _ = self.calls.try_send(Call::Cancel { id: self.id });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::block_on;
    use sentelite_core::Status;

    fn pair(capacity: usize) -> (ResponseFeed, Response, Receiver<Call>) {
        let (calls_tx, calls) = async_channel::unbounded();
        let (response, feed) = Response::new(7, capacity, calls_tx);
        (feed, response, calls)
    }

    fn part(b: u8) -> PayloadBuf {
        PayloadBuf::Bytes(vec![b])
    }

    #[test]
    fn parts_then_exactly_one_end() {
        let (feed, mut response, _calls) = pair(4);
        feed.parts.try_send(part(1)).unwrap();
        feed.parts.try_send(part(2)).unwrap();
        feed.end(
            None,
            RequestOutcome::Completed {
                status: Status::OK,
                payload: PayloadBuf::Empty,
            },
        );
        block_on(async {
            assert_eq!(response.next_part().await, Some(part(1)));
            assert_eq!(response.next_part().await, Some(part(2)));
            assert_eq!(response.next_part().await, None);
            assert_eq!(response.next_part().await, None);
        });
        assert_eq!(
            response.outcome(),
            Some(&RequestOutcome::Completed {
                status: Status::OK,
                payload: PayloadBuf::Empty,
            })
        );
        // Nothing more can be delivered once the end was given.
        assert!(feed.parts.try_send(part(3)).is_err());
    }

    #[test]
    fn the_queue_holds_its_capacity_and_the_end_carries_one_more_part() {
        let (feed, mut response, _calls) = pair(2);
        feed.parts.try_send(part(1)).unwrap();
        feed.parts.try_send(part(2)).unwrap();
        assert!(
            feed.parts.try_send(part(3)).is_err(),
            "the queue is bounded"
        );
        assert_eq!(response.queued_parts(), 2);
        // The request ended while part 3 waited for room: it comes after the others.
        feed.end(Some(part(3)), RequestOutcome::TimedOut);
        block_on(async {
            assert_eq!(response.next_part().await, Some(part(1)));
            assert_eq!(response.next_part().await, Some(part(2)));
            assert_eq!(response.next_part().await, Some(part(3)));
            assert_eq!(response.next_part().await, None);
        });
        assert_eq!(response.outcome(), Some(&RequestOutcome::TimedOut));
    }

    #[test]
    fn a_vanished_driver_reads_as_closed() {
        let (feed, response, _calls) = pair(4);
        feed.parts.try_send(PayloadBuf::Empty).unwrap();
        drop(feed);
        assert_eq!(block_on(response.finish()), RequestOutcome::Closed);
    }

    #[test]
    fn dropping_before_the_end_cancels_but_not_after() {
        let (_feed, response, calls) = pair(4);
        drop(response);
        assert!(matches!(calls.try_recv(), Ok(Call::Cancel { id: 7 })));

        let (feed, response, calls) = pair(4);
        feed.end(None, RequestOutcome::TimedOut);
        assert_eq!(block_on(response.finish()), RequestOutcome::TimedOut);
        assert!(calls.try_recv().is_err());
    }
}
