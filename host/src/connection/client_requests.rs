//! The client's requests this connection is answering, as far as the host is concerned: the
//! cancellation token handed to each handler's responder. The limits (how many at once,
//! duplicate ids, unknown ids) are the session's; this table only exists to reach a handler
//! when its client cancels or the connection ends.

use std::collections::HashMap;

use sentelite_core::RequestId;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Default)]
pub(super) struct ClientRequests {
    tokens: HashMap<RequestId, CancellationToken>,
}

impl ClientRequests {
    /// A handler starts answering `id`; its responder watches the returned token.
    pub(super) fn start(&mut self, id: RequestId) -> CancellationToken {
        let token = CancellationToken::new();
        self.tokens.insert(id, token.clone());
        token
    }

    /// The client cancelled `id`: tell its handler. The entry stays until the handler's End
    /// is sent, like the session's slot.
    pub(super) fn cancel(&mut self, id: RequestId) {
        if let Some(token) = self.tokens.get(&id) {
            token.cancel();
        }
    }

    /// The End of `id` was sent.
    pub(super) fn finish(&mut self, id: RequestId) {
        self.tokens.remove(&id);
    }

    /// The connection ends: every handler still running is told to stop.
    pub(super) fn cancel_all(&mut self) {
        for (_, token) in self.tokens.drain() {
            token.cancel();
        }
    }
}
