//! What the connection sends on behalf of others: commands from its queue, server requests
//! and their reply streams, and answers to client requests.

use sentelite_core::frame::{Payload, SubscribeError};
use sentelite_core::{RequestEnd, RequestId, SendError, Status};
use tokio::sync::mpsc;

use super::{Connection, Stalled};
use crate::clock::to_core;
use crate::command::{Command, OutboundRequest};
use crate::error::DeliveryError;
use crate::request::{ReplyItem, RequestOutcome};

impl Connection {
    pub(super) fn on_command(&mut self, command: Command) {
        match command {
            Command::Event { event, payload } => {
                let payload = payload.as_payload();
                self.encode_or_log("event", |s, buf| {
                    s.send_event(&event, payload, buf).map(|n| ((), n))
                });
            }
            Command::ChannelMsg {
                channel,
                from,
                payload,
            } => {
                let payload = payload.as_payload();
                self.encode_or_log("channel message", |s, buf| {
                    s.channel_msg(&channel, &from, payload, buf)
                        .map(|n| ((), n))
                });
            }
            Command::Reply { id, seq, payload } => {
                if self.inbound.contains_key(&id) {
                    self.encode_or_log("reply", |s, buf| {
                        s.reply(id, seq, payload.as_payload(), buf).map(|n| ((), n))
                    });
                }
            }
            Command::End {
                id,
                status,
                payload,
            } => {
                if self.inbound.remove(&id).is_some() {
                    self.send_end(id, status, payload.as_payload());
                }
            }
            Command::Request(request) => self.start_request(request),
            Command::Cancel { id } => {
                if self.outbound.contains_key(&id) {
                    self.cancel_outbound(id);
                }
            }
            Command::Close { code, reason } => self.session.close(code, reason),
        }
    }

    fn start_request(&mut self, request: OutboundRequest) {
        let OutboundRequest {
            event,
            payload,
            timeout,
            started,
            replies,
        } = request;
        let now = self.shared.clock.now();
        let timeout = timeout.map(to_core);
        let result =
            self.encode(|s, buf| s.request(now, &event, payload.as_payload(), timeout, buf));
        match result {
            Ok(id) => {
                self.outbound.insert(id, replies);
                if started.send(Ok(id)).is_err() {
                    // The requester gave up waiting for the id.
                    self.outbound.remove(&id);
                    self.cancel_outbound(id);
                }
            }
            Err(e) => {
                let _ = started.send(Err(DeliveryError::Refused {
                    connection_id: self.id,
                    reason: e.to_string(),
                }));
            }
        }
    }

    /// Cancels a server request: the session records the end (reported as `Cancelled`) and
    /// queues the Cancel frame.
    fn cancel_outbound(&mut self, id: RequestId) {
        self.encode_or_log("cancel", |s, buf| s.cancel(id, buf).map(|n| ((), n)));
    }

    /// A server request ended without a final frame from the client.
    pub(super) fn request_ended(&mut self, id: RequestId, end: RequestEnd) {
        let Some(replies) = self.outbound.remove(&id) else {
            return;
        };
        self.deliver(id, replies, ReplyItem::End(RequestOutcome::from(end)));
    }

    /// Hands a reply item to its stream, or queues it when the stream is full. Items keep
    /// their order: once one waits, every later one waits behind it.
    pub(super) fn deliver(&mut self, id: RequestId, to: mpsc::Sender<ReplyItem>, item: ReplyItem) {
        if !self.stalled.is_empty() {
            self.stalled.push_back(Stalled { id, to, item });
            return;
        }
        match to.try_send(item) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(item)) => {
                self.stalled.push_back(Stalled { id, to, item });
            }
            Err(mpsc::error::TrySendError::Closed(item)) => self.stream_gone(id, &item),
        }
    }

    /// The oldest stalled item's stream has room (`true`) or is gone (`false`).
    pub(super) fn unstall(&mut self, room: bool) {
        let Some(Stalled { id, to, item }) = self.stalled.pop_front() else {
            return;
        };
        if !room {
            self.stream_gone(id, &item);
            return;
        }
        match to.try_send(item) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(item)) => {
                self.stalled.push_front(Stalled { id, to, item });
            }
            Err(mpsc::error::TrySendError::Closed(item)) => self.stream_gone(id, &item),
        }
    }

    /// Nobody reads a request's replies any more: stop the client working on it.
    fn stream_gone(&mut self, id: RequestId, item: &ReplyItem) {
        if matches!(item, ReplyItem::Part { .. }) && self.outbound.remove(&id).is_some() {
            self.cancel_outbound(id);
        }
    }

    pub(super) fn send_end(&mut self, id: RequestId, status: Status, payload: Payload<'_>) {
        let sent = self.encode(|s, buf| s.end(id, status, payload, buf).map(|n| ((), n)));
        if let Err(SendError::Encode(_)) = sent {
            // The final status must reach the client even when its payload cannot.
            self.encode_or_log("end", |s, buf| {
                s.end(id, Status::ERROR, Payload::Empty, buf)
                    .map(|n| ((), n))
            });
        }
    }

    pub(super) fn send_ack(
        &mut self,
        channel: &str,
        subscribed: bool,
        error: Option<SubscribeError>,
    ) {
        let error = error.unwrap_or(SubscribeError::NONE);
        self.encode_or_log("subscribe ack", |s, buf| {
            s.subscribe_ack(channel, subscribed, error, buf)
                .map(|n| ((), n))
        });
    }
}
