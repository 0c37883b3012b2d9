//! What the client reports to the application, in owned types.

use std::fmt;
use std::time::Duration;

use async_channel::Sender;
use sentelite_core::frame::{PayloadBuf, SubscribeError};
use sentelite_core::{CloseCode, Initiator, RequestId, Status};

use crate::ClientError;
use crate::call::{AnswerPiece, Call, ask};

/// Something that happened on the client's connection.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The handshake completed.
    Opened {
        /// The server's id for this client's user.
        uid: String,
        /// The server's id for this connection.
        connection_id: u64,
    },
    /// An open (or handshaking) connection ended.
    Closed {
        /// Why.
        code: CloseCode,
        /// Detail: the close reason sent or received, or the transport error.
        reason: String,
        /// Who ended it.
        initiator: Initiator,
    },
    /// A connection attempt failed before the WebSocket was up: refused, a TLS error such as
    /// an untrusted certificate, a failed upgrade, or no connection within the handshake
    /// timeout. Another attempt follows after the backoff.
    ConnectFailed {
        /// The TCP, TLS or WebSocket handshake error, or the timeout.
        reason: String,
    },
    /// The next connection attempt is scheduled.
    ReconnectScheduled {
        /// Consecutive failed attempts so far.
        attempt: u32,
        /// Delay before the attempt.
        delay: Duration,
    },
    /// The server sent a one-way event.
    Message {
        /// Event id.
        event: String,
        /// Event data.
        payload: PayloadBuf,
    },
    /// A message on a subscribed channel.
    ChannelMessage {
        /// Channel id.
        channel: String,
        /// uid of the publisher (empty when the server published).
        from: String,
        /// Message data.
        payload: PayloadBuf,
    },
    /// The server answered a subscribe or unsubscribe.
    SubscribeResult {
        /// Channel id.
        channel: String,
        /// Whether this connection is now subscribed.
        subscribed: bool,
        /// Why it failed, if it did.
        error: Option<SubscribeError>,
    },
    /// Some of this client's channel messages did not reach every subscriber (a subscriber
    /// read too slowly or accepts smaller frames). The server sends at most one such report
    /// per channel per interval, and none while every delivery succeeds.
    PublishDropped {
        /// Channel id the messages were published to.
        channel: String,
        /// Failed deliveries since the previous report for this channel: one per subscriber
        /// that missed one message.
        dropped: u32,
    },
    /// The server asks something of this client; answer with [`IncomingRequest::part`] and
    /// [`IncomingRequest::end`].
    Request(IncomingRequest),
    /// The server cancelled one of its requests to this client.
    Cancelled {
        /// The request's id (see [`IncomingRequest::id`]).
        id: RequestId,
    },
}

/// A request from the server, answered in zero or more parts and one end.
///
/// Dropping it without calling [`IncomingRequest::end`] ends it with [`Status::ERROR`], so the
/// server never waits on a request nobody will answer.
pub struct IncomingRequest {
    /// Event id of the operation.
    pub event: String,
    /// Request data.
    pub payload: PayloadBuf,
    id: RequestId,
    timeout: Option<Duration>,
    generation: u64,
    next_seq: u32,
    calls: Sender<Call>,
    finished: bool,
    drop_status: Status,
}

impl IncomingRequest {
    pub(crate) fn new(
        id: RequestId,
        event: String,
        payload: PayloadBuf,
        timeout_ms: u32,
        generation: u64,
        calls: Sender<Call>,
    ) -> Self {
        Self {
            event,
            payload,
            id,
            timeout: (timeout_ms > 0).then(|| Duration::from_millis(u64::from(timeout_ms))),
            generation,
            next_seq: 0,
            calls,
            finished: false,
            drop_status: Status::ERROR,
        }
    }

    /// The server's id for this request (matches [`ClientEvent::Cancelled`]).
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// How long the server waits for the end, if it said.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Sends one streamed part of the answer.
    pub async fn part(&mut self, payload: PayloadBuf) -> Result<(), ClientError> {
        let seq = self.next_seq;
        self.answer(AnswerPiece::Part { seq, payload }).await?;
        self.next_seq = seq.wrapping_add(1);
        Ok(())
    }

    /// Sends the final status and data. If the data is too large for the server, the request
    /// still ends (with [`Status::ERROR`]) and the error comes back here.
    pub async fn end(mut self, status: Status, payload: PayloadBuf) -> Result<(), ClientError> {
        self.finished = true;
        self.answer(AnswerPiece::End { status, payload }).await
    }

    /// Used by the driver when the event could not be queued: the server hears "busy".
    pub(crate) fn set_drop_status(&mut self, status: Status) {
        self.drop_status = status;
    }

    async fn answer(&self, piece: AnswerPiece) -> Result<(), ClientError> {
        let (generation, id) = (self.generation, self.id);
        ask(&self.calls, |result| Call::Answer {
            generation,
            id,
            piece,
            result: Some(result),
        })
        .await
    }
}

impl Drop for IncomingRequest {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.calls.try_send(Call::Answer {
                generation: self.generation,
                id: self.id,
                piece: AnswerPiece::End {
                    status: self.drop_status,
                    payload: PayloadBuf::Empty,
                },
                result: None,
            });
        }
    }
}

impl fmt::Debug for IncomingRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IncomingRequest")
            .field("id", &self.id)
            .field("event", &self.event)
            .field("payload", &self.payload)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
