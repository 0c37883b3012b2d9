//! The requester's side of a server→client request: a stream of reply parts ending in exactly
//! one [`RequestOutcome`].

use sentelite_core::RequestId;
use sentelite_core::frame::PayloadBuf;
use tokio::sync::mpsc;

use crate::ConnectionId;
use crate::command::Command;
use crate::error::DeliveryError;
use crate::queue::{CommandTx, TrySendError};

/// Parts buffered between the connection task and a slow consumer before the connection
/// stops reading from its client (backpressure rather than unbounded memory).
pub(crate) const REPLY_BUFFER: usize = 64;

/// How a server→client request ended: the core's one outcome type, shared with the client
/// driver.
pub use sentelite_core::RequestOutcome;

/// One item of a reply stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyItem {
    /// A streamed part.
    Part {
        /// Part number from the client (0, 1, …).
        seq: u32,
        /// Part data.
        payload: PayloadBuf,
    },
    /// The end; nothing follows.
    End(RequestOutcome),
}

/// The replies to one server→client request. Dropping it before the end cancels the request.
#[derive(Debug)]
pub struct ReplyStream {
    connection_id: ConnectionId,
    id: RequestId,
    rx: mpsc::Receiver<ReplyItem>,
    commands: CommandTx,
    finished: bool,
}

impl ReplyStream {
    pub(crate) fn new(
        connection_id: ConnectionId,
        id: RequestId,
        rx: mpsc::Receiver<ReplyItem>,
        commands: CommandTx,
    ) -> Self {
        Self {
            connection_id,
            id,
            rx,
            commands,
            finished: false,
        }
    }

    /// The request's id on its connection.
    pub fn request_id(&self) -> RequestId {
        self.id
    }

    /// The connection the request went to.
    pub fn connection_id(&self) -> ConnectionId {
        self.connection_id
    }

    /// The next part, or the end. Returns `None` only after the end was returned.
    pub async fn next(&mut self) -> Option<ReplyItem> {
        if self.finished {
            return None;
        }
        // The connection task always sends an end; a vanished sender means it died.
        let item = self
            .rx
            .recv()
            .await
            .unwrap_or(ReplyItem::End(RequestOutcome::Closed));
        if matches!(item, ReplyItem::End(_)) {
            self.finished = true;
        }
        Some(item)
    }

    /// Waits for the end, returning every part's payload in arrival order and the outcome.
    pub async fn collect(mut self) -> (Vec<PayloadBuf>, RequestOutcome) {
        let mut parts = Vec::new();
        while let Some(item) = self.next().await {
            match item {
                ReplyItem::Part { payload, .. } => parts.push(payload),
                ReplyItem::End(outcome) => return (parts, outcome),
            }
        }
        (parts, RequestOutcome::Closed)
    }

    /// Cancels the request: the client is told to stop, and the stream ends `Cancelled`.
    pub fn cancel(&mut self) -> Result<(), DeliveryError> {
        if self.finished {
            return Ok(());
        }
        self.commands
            .try_send(Box::new(Command::Cancel { id: self.id }))
            .map_err(|e| match e {
                TrySendError::Full(_) => DeliveryError::QueueFull(self.connection_id),
                TrySendError::Closed(_) => DeliveryError::Closed(self.connection_id),
            })
    }
}

impl Drop for ReplyStream {
    fn drop(&mut self) {
        if !self.finished {
            // Nobody will read the rest. If the queue is full the request still ends when the
            // connection task finds the stream gone on the next part or at the deadline.
            let _ = self
                .commands
                .try_send(Box::new(Command::Cancel { id: self.id }));
        }
    }
}
