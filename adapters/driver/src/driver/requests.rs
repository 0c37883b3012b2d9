//! Requests in flight: ours, each feeding its [`Response`], and the server's, which the
//! application answers through [`crate::IncomingRequest`].

use std::collections::{HashMap, HashSet};

use async_channel::Sender;
use sentelite_core::RequestId;

use crate::RequestOutcome;
use crate::response::ResponseItem;

/// Our requests in flight, by id, with the queue of their [`crate::Response`].
#[derive(Default)]
pub(super) struct OurRequests {
    responses: HashMap<RequestId, Sender<ResponseItem>>,
}

/// Whether a part reached its response.
pub(super) enum PartQueued {
    /// Queued (or the request is not ours any more: a late part).
    Yes,
    /// The application dropped the response: the request should be cancelled.
    ResponseDropped,
}

impl OurRequests {
    pub(super) fn insert(&mut self, id: RequestId, response: Sender<ResponseItem>) {
        self.responses.insert(id, response);
    }

    pub(super) fn contains(&self, id: RequestId) -> bool {
        self.responses.contains_key(&id)
    }

    /// Hands one streamed part to the request's response.
    pub(super) fn queue_part(&mut self, id: RequestId, item: ResponseItem) -> PartQueued {
        match self.responses.get(&id).map(|to| to.try_send(item)) {
            Some(Err(_)) => PartQueued::ResponseDropped,
            _ => PartQueued::Yes,
        }
    }

    /// Ends one of our requests: delivers the outcome exactly once, then forgets the id.
    pub(super) fn end(&mut self, id: RequestId, outcome: RequestOutcome) {
        if let Some(to) = self.responses.remove(&id) {
            let _ = to.try_send(ResponseItem::End(outcome));
        }
    }
}

/// The server's requests on the current connection that we have not ended yet.
#[derive(Default)]
pub(super) struct ServerRequests {
    open: HashSet<RequestId>,
    /// Counts connections, so an answer meant for an earlier one is refused.
    generation: u64,
}

impl ServerRequests {
    /// A new connection: every earlier request is gone with its connection.
    pub(super) fn new_connection(&mut self) {
        self.generation += 1;
        self.open.clear();
    }

    /// The connection ended.
    pub(super) fn clear(&mut self) {
        self.open.clear();
    }

    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    pub(super) fn opened(&mut self, id: RequestId) {
        self.open.insert(id);
    }

    /// True if `id` is still open on the connection of `generation`.
    pub(super) fn is_open(&self, generation: u64, id: RequestId) -> bool {
        generation == self.generation && self.open.contains(&id)
    }

    pub(super) fn ended(&mut self, id: RequestId) {
        self.open.remove(&id);
    }
}
