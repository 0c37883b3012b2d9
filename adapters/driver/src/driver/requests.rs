//! Requests in flight: ours, each feeding its [`Response`], and the server's, which the
//! application answers through [`crate::IncomingRequest`].

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use async_channel::SendError;
use futures_util::FutureExt;
use sentelite_core::RequestId;
use sentelite_core::frame::PayloadBuf;

use crate::RequestOutcome;
use crate::response::ResponseFeed;

/// A part waiting for room in its response's full queue. It owns the part until the room
/// comes, so waiting for it can be interrupted (by a timer, a call) and resumed without
/// losing the part.
pub(super) struct Stalled {
    pub id: RequestId,
    pub delivery: Pin<Box<dyn Future<Output = Result<(), SendError<PayloadBuf>>> + Send + Sync>>,
}

/// Our requests in flight, by id, each feeding its [`crate::Response`].
///
/// At most one part waits for room at a time: while one does, the driver does not read the
/// connection (see [`Self::stalled`]), so no further part can arrive.
#[derive(Default)]
pub(super) struct OurRequests {
    responses: HashMap<RequestId, ResponseFeed>,
    stalled: Option<Stalled>,
}

/// What became of a part.
pub(super) enum PartQueued {
    /// In its response's queue (or dropped as late: the request is not ours any more).
    Yes,
    /// The queue is full: the part waits in [`OurRequests::take_stalled`] and reading stops.
    Stalled,
    /// The application dropped the response: the request should be cancelled.
    ResponseDropped,
}

impl OurRequests {
    pub(super) fn insert(&mut self, id: RequestId, feed: ResponseFeed) {
        self.responses.insert(id, feed);
    }

    pub(super) fn contains(&self, id: RequestId) -> bool {
        self.responses.contains_key(&id)
    }

    /// Hands one streamed part to the request's response.
    pub(super) fn queue_part(&mut self, id: RequestId, part: PayloadBuf) -> PartQueued {
        let Some(feed) = self.responses.get(&id) else {
            return PartQueued::Yes;
        };
        match feed.parts.try_send(part) {
            Ok(()) => PartQueued::Yes,
            Err(async_channel::TrySendError::Full(part)) => {
                let parts = feed.parts.clone();
                self.stalled = Some(Stalled {
                    id,
                    delivery: Box::pin(async move { parts.send(part).await }),
                });
                PartQueued::Stalled
            }
            Err(async_channel::TrySendError::Closed(_)) => PartQueued::ResponseDropped,
        }
    }

    /// Takes the waiting part out to wait for its room; give it back with
    /// [`Self::restore_stalled`] if the wait is interrupted.
    pub(super) fn take_stalled(&mut self) -> Option<Stalled> {
        self.stalled.take()
    }

    pub(super) fn restore_stalled(&mut self, stalled: Stalled) {
        self.stalled = Some(stalled);
    }

    /// Ends one of our requests: delivers the outcome exactly once, then forgets the id. A
    /// part of it still waiting for room goes with the end, after the queued parts.
    pub(super) fn end(&mut self, id: RequestId, outcome: RequestOutcome) {
        let Some(feed) = self.responses.remove(&id) else {
            return;
        };
        let mut last_part = None;
        if self.stalled.as_ref().is_some_and(|s| s.id == id)
            && let Some(mut stalled) = self.stalled.take()
        {
            // Closing the queue makes the waiting send give its part back at once.
            feed.parts.close();
            if let Some(Err(SendError(part))) = stalled.delivery.as_mut().now_or_never() {
                last_part = Some(part);
            }
        }
        feed.end(last_part, outcome);
    }
}

/// Which connection the server's requests belong to. Whether a request is still open is the
/// core's to say (its responder table admits each request, and `reply` / `end` refuse one it
/// is not answering); the driver only counts connections, so an answer meant for a request
/// of an earlier connection is refused even when the new one reuses its id.
#[derive(Default)]
pub(super) struct ServerRequests {
    generation: u64,
}

impl ServerRequests {
    /// A new connection: every earlier request is gone with its connection.
    pub(super) fn new_connection(&mut self) {
        self.generation += 1;
    }

    pub(super) fn generation(&self) -> u64 {
        self.generation
    }
}
