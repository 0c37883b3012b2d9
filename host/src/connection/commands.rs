//! Commands from the connection's queue (pushes, channel messages, handlers' answers, the
//! server's own requests, closes) and the send calls they turn into.

use sentelite_core::frame::{Payload, SubscribeError};
use sentelite_core::{RequestEnd, RequestId, SendError, Status};

use super::Connection;
use super::server_requests::Abandoned;
use crate::clock::to_core;
use crate::command::{Command, OutboundRequest};
use crate::error::DeliveryError;
use crate::request::RequestOutcome;

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
            // The session refuses answers for requests it is not answering (ended already).
            Command::Reply { id, seq, payload } => {
                self.encode_or_log("reply", |s, buf| {
                    s.reply(id, seq, payload.as_payload(), buf).map(|n| ((), n))
                });
            }
            Command::End {
                id,
                status,
                payload,
            } => self.send_end(id, status, payload.as_payload()),
            Command::Request(request) => self.start_request(request),
            Command::Cancel { id } => {
                if self.server_requests.contains(id) {
                    self.cancel_server_request(id);
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
                self.server_requests.insert(id, replies);
                if started.send(Ok(id)).is_err() {
                    // The requester gave up waiting for the id.
                    self.server_requests.remove(id);
                    self.cancel_server_request(id);
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
    fn cancel_server_request(&mut self, id: RequestId) {
        self.encode_or_log("cancel", |s, buf| s.cancel(id, buf).map(|n| ((), n)));
    }

    /// Cancels a server request whose requester stopped reading its replies.
    pub(super) fn cancel_abandoned(&mut self, abandoned: Abandoned) {
        if let Abandoned(Some(id)) = abandoned {
            self.cancel_server_request(id);
        }
    }

    /// A server request ended without a final frame from the client.
    pub(super) fn request_ended(&mut self, id: RequestId, end: RequestEnd) {
        let abandoned = self.server_requests.end(id, RequestOutcome::from(end));
        self.cancel_abandoned(abandoned);
    }

    /// The oldest waiting reply item's stream has room (`true`) or is gone (`false`).
    pub(super) fn unstall(&mut self, room: bool) {
        let abandoned = self.server_requests.unstall(room);
        self.cancel_abandoned(abandoned);
    }

    /// Sends the final status of a client request; the session frees its slot.
    pub(super) fn send_end(&mut self, id: RequestId, status: Status, payload: Payload<'_>) {
        let sent = self.encode(|s, buf| s.end(id, status, payload, buf).map(|n| ((), n)));
        match sent {
            Err(SendError::Encode(_)) => {
                // The final status must reach the client even when its payload cannot.
                self.encode_or_log("end", |s, buf| {
                    s.end(id, Status::ERROR, Payload::Empty, buf)
                        .map(|n| ((), n))
                });
            }
            Err(e) => tracing::debug!(connection = self.id, error = %e, "end not sent"),
            Ok(()) => {}
        }
        if !self.session.is_answering(id) {
            self.client_requests.finish(id);
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
