//! The requester's view of one request: streamed parts, then exactly one final outcome.

use async_channel::{Receiver, Sender};
use sentelite_core::frame::PayloadBuf;
use sentelite_core::{RequestId, Status};

use crate::call::Call;

/// How one of our requests ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestOutcome {
    /// The server sent its final frame.
    Completed(Status, PayloadBuf),
    /// Our deadline passed first.
    TimedOut,
    /// We cancelled it.
    Cancelled,
    /// The connection (or the client) closed before it completed.
    Closed,
}

/// What the driver feeds a [`Response`].
#[derive(Debug)]
pub(crate) enum ResponseItem {
    Part(PayloadBuf),
    End(RequestOutcome),
}

/// The answer to a request, arriving in parts.
///
/// Read parts with [`Response::next_part`] until it returns `None`; the outcome is then in
/// [`Response::outcome`]. Dropping a response before its end cancels the request, so the
/// server can stop working on it.
#[derive(Debug)]
pub struct Response {
    id: RequestId,
    items: Receiver<ResponseItem>,
    calls: Sender<Call>,
    outcome: Option<RequestOutcome>,
}

impl Response {
    pub(crate) fn new(id: RequestId, items: Receiver<ResponseItem>, calls: Sender<Call>) -> Self {
        Self {
            id,
            items,
            calls,
            outcome: None,
        }
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
        match self.items.recv().await {
            Ok(ResponseItem::Part(payload)) => Some(payload),
            Ok(ResponseItem::End(outcome)) => {
                self.finish_with(outcome);
                None
            }
            // The driver is gone without ending this request: the client closed.
            Err(_) => {
                self.finish_with(RequestOutcome::Closed);
                None
            }
        }
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

    fn finish_with(&mut self, outcome: RequestOutcome) {
        self.outcome = Some(outcome);
        // Anything queued behind the end is not part of this request's answer.
        self.items.close();
    }
}

impl Drop for Response {
    fn drop(&mut self) {
        if self.outcome.is_none() && !self.items.is_closed() {
            let _ = self.calls.try_send(Call::Cancel { id: self.id });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::block_on;

    fn pair() -> (Sender<ResponseItem>, Response, Receiver<Call>) {
        let (tx, rx) = async_channel::unbounded();
        let (ctx, crx) = async_channel::unbounded();
        (tx, Response::new(7, rx, ctx), crx)
    }

    #[test]
    fn parts_then_exactly_one_end() {
        let (tx, mut response, _calls) = pair();
        tx.try_send(ResponseItem::Part(PayloadBuf::Bytes(vec![1])))
            .unwrap();
        tx.try_send(ResponseItem::Part(PayloadBuf::Bytes(vec![2])))
            .unwrap();
        tx.try_send(ResponseItem::End(RequestOutcome::Completed(
            Status::OK,
            PayloadBuf::Empty,
        )))
        .unwrap();
        block_on(async {
            assert_eq!(response.next_part().await, Some(PayloadBuf::Bytes(vec![1])));
            assert_eq!(response.next_part().await, Some(PayloadBuf::Bytes(vec![2])));
            assert_eq!(response.next_part().await, None);
            assert_eq!(response.next_part().await, None);
        });
        assert_eq!(
            response.outcome(),
            Some(&RequestOutcome::Completed(Status::OK, PayloadBuf::Empty))
        );
        // Nothing more can be delivered once the end was taken.
        assert!(
            tx.try_send(ResponseItem::End(RequestOutcome::TimedOut))
                .is_err()
        );
    }

    #[test]
    fn a_vanished_driver_reads_as_closed() {
        let (tx, response, _calls) = pair();
        tx.try_send(ResponseItem::Part(PayloadBuf::Empty)).unwrap();
        drop(tx);
        assert_eq!(block_on(response.finish()), RequestOutcome::Closed);
    }

    #[test]
    fn dropping_before_the_end_cancels_but_not_after() {
        let (_tx, response, calls) = pair();
        drop(response);
        assert!(matches!(calls.try_recv(), Ok(Call::Cancel { id: 7 })));

        let (tx, response, calls) = pair();
        tx.try_send(ResponseItem::End(RequestOutcome::TimedOut))
            .unwrap();
        assert_eq!(block_on(response.finish()), RequestOutcome::TimedOut);
        assert!(calls.try_recv().is_err());
    }
}
