//! Frames from the client: handshake (token, Hello limits, the client-id policy), events and
//! requests for handlers, answers to the server's requests, and pub/sub.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use sentelite_core::frame::{self, Frame, Hello, Payload};
use sentelite_core::{CloseCode, Status};

use super::Connection;
use super::client_events::count_unhandled;
use crate::handler::{EventContext, RequestContext, Responder};
use crate::lifecycle::LifecycleEvent;
use crate::registry::{ConnEntry, Refused, lock};
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
            // The session delivers a Cancel only for a request in flight, once. The handler is
            // told; its End (sent when it stops) frees the slot.
            Frame::Cancel(cancel) => self.client_requests.cancel(cancel.id),
            Frame::Reply(reply) => {
                let item = ReplyItem::Part {
                    seq: reply.seq,
                    payload: reply.payload.into(),
                };
                let abandoned = self.server_requests.part(reply.id, item);
                self.cancel_abandoned(abandoned);
            }
            Frame::End(end) => {
                let outcome = RequestOutcome::Completed {
                    status: end.status,
                    payload: end.payload.into(),
                };
                let abandoned = self.server_requests.end(end.id, outcome);
                self.cancel_abandoned(abandoned);
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

    /// Token, then the Hello's string limits, then the connection limit and the client-id
    /// policy, then the Welcome.
    fn on_hello(&mut self, hello: Hello<'_>) {
        let settings = &self.shared.settings;
        if let Some(expected) = settings.token.as_deref()
            && !hello.token.is_some_and(|t| same_secret(t, expected))
        {
            self.session
                .reject(CloseCode::AUTH_FAILED, "missing or wrong token");
            return;
        }
        if hello.client_id.len() > settings.max_client_id_bytes {
            self.session.reject(
                CloseCode::LIMIT_EXCEEDED,
                "client id longer than max-client-id-bytes",
            );
            return;
        }
        if hello
            .firmware
            .is_some_and(|f| f.len() > settings.max_firmware_bytes)
        {
            self.session.reject(
                CloseCode::LIMIT_EXCEEDED,
                "firmware id longer than max-firmware-bytes",
            );
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
            events_unhandled: AtomicU64::new(0),
            channel_drops: Default::default(),
        });
        let registered = lock(&self.shared.registry).try_insert(
            entry.clone(),
            settings.max_connections,
            settings.duplicate_client_id,
        );
        let replaced = match registered {
            Ok(replaced) => replaced,
            Err(Refused::Full) => {
                self.session.reject(
                    CloseCode::TOO_MANY_CONNECTIONS,
                    "server is at its connection limit",
                );
                return;
            }
            Err(Refused::Duplicate) => {
                self.session
                    .reject(CloseCode::DUPLICATE_CLIENT, "client id already connected");
                return;
            }
        };
        crate::registry::close_replaced(replaced, self.id);
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
        // Events flow only once the session is open, so the entry exists.
        let Some(entry) = self.entry.as_ref() else {
            return;
        };
        let Some((name, handler)) = self.shared.handlers.events.get_key_value(event.event) else {
            if let Some(total) = count_unhandled(&entry.events_unhandled) {
                tracing::debug!(
                    connection = self.id,
                    event = event.event,
                    total,
                    "events without a handler (logged at totals 1, 2, 4, 8, …)"
                );
            }
            return;
        };
        let ctx = EventContext {
            connection_id: self.id,
            uid: entry.uid.clone(),
            client_id: entry.client_id.clone(),
            boot_id: entry.boot_id,
            event: name.clone(),
            payload: event.payload.into(),
            server: self.handle(),
        };
        let (handler, max_tasks) = (
            handler.clone(),
            self.shared.settings.max_event_tasks_per_conn,
        );
        self.client_events.dispatch(max_tasks, handler, ctx);
    }

    fn on_request(&mut self, request: frame::Request<'_>) {
        let found = self.shared.handlers.requests.get_key_value(request.event);
        // The session admitted the request: within max-pending and not a duplicate id.
        let (Some(entry), Some((name, handler))) = (self.entry.clone(), found) else {
            self.send_end(request.id, Status::UNSUPPORTED, Payload::Empty);
            return;
        };
        let token = self.client_requests.start(request.id);
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
            boot_id: entry.boot_id,
            firmware: entry.firmware.clone(),
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
pub(crate) fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, &x) in b.iter().enumerate() {
        let y = a.get(i).copied().unwrap_or(!x);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

pub(crate) fn unix_millis() -> u128 {
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
