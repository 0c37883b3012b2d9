//! Frames from the client: handshake, events and requests for handlers, answers to the
//! server's requests, and pub/sub.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use sentelite_core::frame::{self, Frame, Hello, Payload};
use sentelite_core::{CloseCode, Status};
use tokio_util::sync::CancellationToken;

use super::Connection;
use crate::handler::{EventContext, RequestContext, Responder};
use crate::lifecycle::LifecycleEvent;
use crate::registry::{ConnEntry, lock};
use crate::request::{ReplyItem, RequestOutcome};

impl Connection {
    pub(super) fn on_binary(&mut self, bytes: &[u8]) {
        let now = self.shared.clock.now();
        match self.session.handle_frame(now, bytes) {
            Ok(Some(frame)) => self.on_frame(frame),
            Ok(None) => {}
            // The session already queued its Close frame.
            Err(e) => tracing::debug!(connection = self.id, error = %e, "protocol error"),
        }
    }

    fn on_frame(&mut self, frame: Frame<'_>) {
        match frame {
            Frame::Hello(hello) => self.on_hello(hello),
            Frame::Close(close) => {
                self.close = Some((close.code, close.reason.to_owned()));
            }
            Frame::Event(event) => self.on_event(event),
            Frame::Request(request) => self.on_request(request),
            Frame::Cancel(cancel) => {
                if let Some(token) = self.inbound.remove(&cancel.id) {
                    token.cancel();
                    self.send_end(cancel.id, Status::CANCELLED, Payload::Empty);
                }
            }
            Frame::Reply(reply) => {
                if let Some(replies) = self.outbound.get(&reply.id).cloned() {
                    let item = ReplyItem::Part {
                        seq: reply.seq,
                        payload: reply.payload.into(),
                    };
                    self.deliver(reply.id, replies, item);
                }
            }
            Frame::End(end) => {
                if let Some(replies) = self.outbound.remove(&end.id) {
                    let outcome = RequestOutcome::Completed {
                        status: end.status,
                        payload: end.payload.into(),
                    };
                    self.deliver(end.id, replies, ReplyItem::End(outcome));
                }
            }
            Frame::Subscribe(r) => {
                // The session delivers Subscribe only once open, when the entry exists.
                let Some(entry) = &self.entry else { return };
                let result = lock(&self.shared.channels).subscribe(entry, r.channel);
                self.send_ack(r.channel, result.is_ok(), result.err());
            }
            Frame::Unsubscribe(r) => {
                let result = lock(&self.shared.channels).unsubscribe(self.id, r.channel);
                self.send_ack(r.channel, false, result.err());
            }
            Frame::Publish(p) => self.on_publish(p),
            // The session refuses every other frame before it gets here.
            _ => {}
        }
    }

    /// Token, then the connection limit, then the Welcome.
    fn on_hello(&mut self, hello: Hello<'_>) {
        let settings = &self.shared.settings;
        if let Some(expected) = settings.token.as_deref()
            && !hello.token.is_some_and(|t| same_secret(t, expected))
        {
            self.session
                .reject(CloseCode::AUTH_FAILED, "missing or wrong token");
            return;
        }
        let entry = Arc::new(ConnEntry {
            id: self.id,
            uid: format!("conn-{}-{}", unix_millis(), self.id).into(),
            client_id: hello.client_id.into(),
            boot_id: hello.boot_id,
            firmware: hello.firmware.map(Arc::from),
            capabilities: hello.capabilities,
            remote: self.remote,
            connected_since: SystemTime::now(),
            peer_max_frame: hello.max_frame as usize,
            commands: self.commands_tx.clone(),
            stats: Mutex::new(self.session.stats()),
            channel_drops: Default::default(),
        });
        let registered =
            lock(&self.shared.registry).try_insert(entry.clone(), settings.max_connections);
        if registered.is_err() {
            self.session.reject(
                CloseCode::TOO_MANY_CONNECTIONS,
                "server is at its connection limit",
            );
            return;
        }
        let now = self.shared.clock.now();
        let id = self.id;
        let accepted = self.encode(|s, buf| s.accept(now, &entry.uid, id, buf).map(|n| ((), n)));
        if let Err(e) = accepted {
            tracing::debug!(connection = id, error = %e, "welcome not sent");
            lock(&self.shared.registry).remove(id);
            self.session.close(
                CloseCode::PROTOCOL_ERROR,
                "welcome does not fit the client's max frame",
            );
            return;
        }
        self.permit = None;
        self.shared.lifecycle.emit(LifecycleEvent::Handshake {
            connection_id: id,
            uid: entry.uid.clone(),
            client_id: entry.client_id.clone(),
            boot_id: entry.boot_id,
            firmware: entry.firmware.clone(),
        });
        self.entry = Some(entry);
    }

    fn on_event(&mut self, event: frame::Event<'_>) {
        let (Some(entry), Some((name, handler))) = (
            self.entry.as_ref(),
            self.shared.handlers.events.get_key_value(event.event),
        ) else {
            tracing::debug!(
                connection = self.id,
                event = event.event,
                "event without handler"
            );
            return;
        };
        let ctx = EventContext {
            connection_id: self.id,
            uid: entry.uid.clone(),
            client_id: entry.client_id.clone(),
            event: name.clone(),
            payload: event.payload.into(),
            server: self.handle(),
        };
        tokio::spawn(handler(ctx));
    }

    fn on_request(&mut self, request: frame::Request<'_>) {
        let found = self.shared.handlers.requests.get_key_value(request.event);
        let (Some(entry), Some((name, handler))) = (self.entry.clone(), found) else {
            self.send_end(request.id, Status::UNSUPPORTED, Payload::Empty);
            return;
        };
        if self.inbound.contains_key(&request.id) {
            self.session
                .close(CloseCode::PROTOCOL_ERROR, "request id already in flight");
            return;
        }
        if self.inbound.len() >= usize::from(self.shared.settings.max_pending) {
            self.send_end(request.id, Status::BUSY, Payload::Empty);
            return;
        }
        let token = CancellationToken::new();
        self.inbound.insert(request.id, token.clone());
        let responder = Responder::new(
            self.id,
            request.id,
            self.commands_tx.clone(),
            token,
            entry.peer_max_frame,
        );
        let ctx = RequestContext {
            connection_id: self.id,
            uid: entry.uid.clone(),
            client_id: entry.client_id.clone(),
            event: name.clone(),
            request_id: request.id,
            timeout: (request.timeout_ms > 0)
                .then(|| std::time::Duration::from_millis(u64::from(request.timeout_ms))),
            payload: request.payload.into(),
            server: self.handle(),
        };
        tokio::spawn(handler(ctx, responder));
    }
}

/// Compares secrets in time independent of where they differ.
fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, &x) in b.iter().enumerate() {
        let y = a.get(i).copied().unwrap_or(!x);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

fn unix_millis() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abd", "abc"));
        assert!(!same_secret("ab", "abc"));
        assert!(!same_secret("abcd", "abc"));
        assert!(!same_secret("", "abc"));
    }
}
