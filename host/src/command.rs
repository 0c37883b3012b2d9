//! What other tasks ask of a connection task, through its bounded queue.

use std::sync::Arc;

use sentelite_core::frame::PayloadBuf;
use sentelite_core::{CloseCode, RequestId, Status};
use tokio::sync::{mpsc, oneshot};

use crate::error::DeliveryError;
use crate::request::ReplyItem;

/// One instruction for a connection task, queued boxed (see [`crate::queue`]). Fan-out
/// payloads are shared (`Arc`) so a broadcast to many connections holds one copy.
#[derive(Debug)]
pub(crate) enum Command {
    /// Push a one-way event.
    Event {
        event: Arc<str>,
        payload: Arc<PayloadBuf>,
    },
    /// Deliver a channel message.
    ChannelMsg {
        channel: Arc<str>,
        from: Arc<str>,
        payload: Arc<PayloadBuf>,
    },
    /// A streamed part of our answer to the client's request.
    Reply {
        id: RequestId,
        seq: u32,
        payload: PayloadBuf,
    },
    /// The final status of our answer to the client's request.
    End {
        id: RequestId,
        status: Status,
        payload: PayloadBuf,
    },
    /// Start a server→client request.
    Request(OutboundRequest),
    /// Cancel a server→client request.
    Cancel { id: RequestId },
    /// Close the connection.
    Close {
        code: CloseCode,
        reason: &'static str,
    },
}

/// A server→client request waiting to be sent.
#[derive(Debug)]
pub(crate) struct OutboundRequest {
    pub(crate) event: String,
    pub(crate) payload: PayloadBuf,
    pub(crate) timeout: Option<std::time::Duration>,
    /// Told the request id, or why the session refused.
    pub(crate) started: oneshot::Sender<Result<RequestId, DeliveryError>>,
    /// Where parts and the end go.
    pub(crate) replies: mpsc::Sender<ReplyItem>,
}
