//! Commands from the connection's queue (pushes, channel messages, handlers' answers to
//! callbacks, the server's requests, closes), gathered per loop turn for one batch.

use std::sync::Arc;

use tokio::time::Instant;

use super::TextConnection;
use super::close::TextClose;
use super::outbox::Item;
use crate::command::{Command, OutboundRequest};
use crate::error::DeliveryError;
use crate::request::RequestOutcome;

impl TextConnection {
    /// Takes what else is queued, so it goes out in the same batch (Sente packs pushes).
    pub(super) fn gather_commands(&mut self) {
        for _ in 0..self.shared.settings.connection_queue {
            if self.close.is_some() {
                return;
            }
            match self.commands.try_recv() {
                Some(command) => self.on_command(*command),
                None => return,
            }
        }
    }

    pub(super) fn on_command(&mut self, command: Command) {
        match command {
            Command::Event { event, payload } => self.outbox.push(Item::Event {
                event,
                data: payload,
            }),
            Command::ChannelMsg {
                channel,
                from,
                payload,
            } => self.outbox.push(Item::ChannelMsg {
                channel,
                from,
                data: payload,
            }),
            Command::Reply { id, payload, .. } => self.callbacks.part(id, payload),
            Command::End {
                id,
                status,
                payload,
            } => {
                if let Some((cb, answer)) = self.callbacks.end(id, status, payload) {
                    self.outbox.push(match answer {
                        Ok(data) => Item::Reply { cb, data },
                        Err(error) => Item::CallbackError { cb, error },
                    });
                }
            }
            Command::Request(request) => self.start_request(request),
            Command::Cancel { id } => self.server_requests.end(id, RequestOutcome::Cancelled),
            Command::Close { code, reason } => self.close = Some(TextClose::native(code, reason)),
        }
    }

    /// A server request goes out as an event; see [`requests`].
    pub(super) fn start_request(&mut self, request: OutboundRequest) {
        let OutboundRequest {
            event,
            payload,
            timeout,
            started,
            replies,
        } = request;
        let deadline = timeout.map(|t| Instant::now() + t);
        let Some(id) = self.server_requests.open(replies, deadline) else {
            let _ = started.send(Err(DeliveryError::Refused {
                connection_id: self.id,
                reason: "too many requests in flight".to_owned(),
            }));
            return;
        };
        if started.send(Ok(id)).is_err() {
            // The requester gave up waiting for the id.
            self.server_requests.end(id, RequestOutcome::Cancelled);
            return;
        }
        self.outbox.push(Item::Event {
            event: event.into(),
            data: Arc::new(payload),
        });
    }
}
