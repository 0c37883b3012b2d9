//! Messages from a text client: pings, pub/sub, and events for handlers, the same tables and
//! handlers native frames reach.

use std::sync::Arc;

use sentelite_core::frame::{PayloadBuf, SubscribeError};
use tokio::time::Instant;

use super::TextConnection;
use super::outbox::Item;
use crate::connection::count_unhandled;
use crate::dialect::{CallbackError, Dialect, Inbound, Refusal};
use crate::handler::{EventContext, EventHandler, RequestContext, Responder};
use crate::registry::lock;

impl TextConnection {
    pub(super) fn on_inbound(&mut self, inbound: Inbound) {
        // Only a registered connection reads messages.
        let Some(entry) = self.entry.clone() else {
            return;
        };
        match inbound {
            Inbound::Ping { cb } => self.outbox.push(Item::Pong { cb }),
            // Any message already counted as a sign of life.
            Inbound::Pong => {}
            Inbound::Subscribe { channel } => {
                let result = lock(&self.shared.channels).subscribe(&entry, &channel);
                self.outbox.push(Item::Subscribed {
                    refusal: result.err().map(refusal),
                    channel,
                });
            }
            Inbound::Unsubscribe { channel } => {
                let result = lock(&self.shared.channels).unsubscribe(self.id, &channel);
                self.outbox.push(Item::Unsubscribed {
                    refusal: result.err().map(refusal),
                    channel,
                });
            }
            Inbound::Publish {
                channel,
                data,
                exclude_sender,
            } => {
                let exclude = exclude_sender.then_some(self.id);
                let mut failed = 0u64;
                let result = self.handle().publish_from(
                    &channel,
                    entry.uid.clone(),
                    data,
                    exclude,
                    |_, _| failed += 1,
                );
                match result {
                    Err(e) => tracing::debug!(connection = self.id, error = %e, "publish refused"),
                    Ok(_) if failed > 0 => entry.channel_drops.count_undelivered(failed),
                    Ok(_) => {}
                }
            }
            Inbound::Event { event, data, cb } => match cb {
                Some(cb) => self.on_callback(event, data, cb),
                None => self.on_event(event, data),
            },
        }
    }

    /// A one-way event: its handler, else an echo (sente-lite, JSON) and the count of
    /// unhandled events.
    fn on_event(&mut self, event: String, data: PayloadBuf) {
        if let Some((name, handler)) = self.shared.handlers.events.get_key_value(event.as_str()) {
            let (name, handler) = (name.clone(), handler.clone());
            self.dispatch(name, handler, data);
            return;
        }
        if let Some(entry) = &self.entry
            && let Some(total) = count_unhandled(&entry.events_unhandled)
        {
            tracing::debug!(
                connection = self.id,
                event,
                total,
                "events without a handler (logged at totals 1, 2, 4, 8, …)"
            );
        }
        if self.dialect != Dialect::Sente {
            self.outbox.push(Item::Echo {
                event,
                data,
                timestamp_ms: u64::try_from(crate::connection::unix_millis()).unwrap_or(u64::MAX),
            });
        }
    }

    /// A Sente event with a callback: answered by its request handler. Without one, an event
    /// handler still sees the event, and the callback gets `:chsk/error`.
    fn on_callback(&mut self, event: String, data: PayloadBuf, cb: String) {
        let found = self.shared.handlers.requests.get_key_value(event.as_str());
        let Some((name, handler)) = found.map(|(n, h)| (n.clone(), h.clone())) else {
            if let Some((name, handler)) = self.shared.handlers.events.get_key_value(event.as_str())
            {
                let (name, handler) = (name.clone(), handler.clone());
                self.dispatch(name, handler, data);
            }
            self.outbox.push(Item::CallbackError {
                cb,
                error: CallbackError::Error,
            });
            return;
        };
        let Some(entry) = self.entry.clone() else {
            return;
        };
        if self.callbacks.len() >= usize::from(self.shared.settings.max_pending) {
            self.outbox.push(Item::CallbackError {
                cb,
                error: CallbackError::Error,
            });
            return;
        }
        let timeout = self.shared.settings.callback_timeout();
        let (request_id, token) = self.callbacks.start(cb, Instant::now(), timeout);
        let responder = Responder::new(
            self.id,
            request_id,
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
            event: name,
            request_id,
            timeout: Some(timeout),
            payload: data,
            server: self.handle(),
        };
        tokio::spawn(handler(ctx, responder));
    }

    fn dispatch(&mut self, event: Arc<str>, handler: EventHandler, payload: PayloadBuf) {
        let Some(entry) = &self.entry else {
            return;
        };
        let ctx = EventContext {
            connection_id: self.id,
            uid: entry.uid.clone(),
            client_id: entry.client_id.clone(),
            boot_id: entry.boot_id,
            event,
            payload,
            server: self.handle(),
        };
        let max_tasks = self.shared.settings.max_event_tasks_per_conn;
        self.client_events.dispatch(max_tasks, handler, ctx);
    }
}

/// The dialect's name for a subscription refusal.
fn refusal(error: SubscribeError) -> Refusal {
    match error {
        SubscribeError::MAX_SUBSCRIPTIONS_PER_CONN => Refusal::MaxSubscriptionsPerConn,
        SubscribeError::MAX_SUBSCRIBERS_REACHED => Refusal::MaxSubscribersReached,
        SubscribeError::CHANNEL_NOT_FOUND => Refusal::ChannelNotFound,
        _ => Refusal::InvalidChannel,
    }
}
