//! Event delivery: frames from the server and the session's own events become
//! [`ClientEvent`]s or response items, and counters are published for [`crate::Client`].

use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_channel::{Sender, TrySendError};
use sentelite_core::frame::SubscribeError;
use sentelite_core::{Frame, SessionEvent, Status, websocket};

use super::requests::PartQueued;
use super::{Driver, Session};
use crate::client::{ClientStats, Shared};
use crate::clock::to_std_duration;
use crate::{ClientEvent, IncomingRequest, RequestOutcome, Runtime};

/// The application's event queue and the state every handle can read.
pub(super) struct Notifier {
    events: Sender<ClientEvent>,
    pub(super) shared: Arc<Shared>,
    events_dropped: u64,
}

impl Notifier {
    pub(super) fn new(events: Sender<ClientEvent>, shared: Arc<Shared>) -> Self {
        Self {
            events,
            shared,
            events_dropped: 0,
        }
    }

    /// Queues an event without ever waiting: a reader that falls behind loses events (and
    /// they are counted) rather than stalling heartbeats for everyone.
    pub(super) fn emit(&mut self, event: ClientEvent) {
        match self.events.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(event) | TrySendError::Closed(event)) => {
                self.events_dropped += 1;
                if let ClientEvent::Request(mut request) = event {
                    // Dropping it answers the server; "busy" says why.
                    request.set_drop_status(Status::BUSY);
                }
            }
        }
    }

    /// Publishes the session's counters and whether it is open.
    pub(super) fn publish_state(&self, session: &Session) {
        let core = session.stats();
        let stats = ClientStats {
            frames_sent: core.frames_sent,
            frames_received: core.frames_received,
            bytes_sent: core.bytes_sent,
            bytes_received: core.bytes_received,
            reconnects: core.reconnects,
            handshakes: core.handshakes,
            rtt: session.rtt().map(to_std_duration),
            events_dropped: self.events_dropped,
        };
        *self
            .shared
            .stats
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = stats;
        self.shared.open.store(session.is_open(), Ordering::Release);
    }
}

impl<R: Runtime> Driver<R> {
    /// Turns an application frame from the server into an event or a response item.
    pub(super) fn on_frame(&mut self, frame: Frame<'_>) {
        match frame {
            Frame::Close(close) => {
                self.close.code.get_or_insert(close.code);
                self.close.explain(close.reason);
            }
            // A log control event is applied by the driver, not shown to the application.
            Frame::Event(event) if self.log_control(event.event, event.payload) => {}
            Frame::Event(event) => self.app.emit(ClientEvent::Message {
                event: event.event.to_owned(),
                payload: event.payload.into(),
            }),
            Frame::Request(request) => {
                self.app.emit(ClientEvent::Request(IncomingRequest::new(
                    request.id,
                    request.event.to_owned(),
                    request.payload.into(),
                    request.timeout_ms,
                    self.theirs.generation(),
                    self.calls_tx.clone(),
                )));
            }
            Frame::Reply(reply) if self.is_log_batch(reply.id) => {}
            Frame::Reply(reply) => {
                match self.ours.queue_part(reply.id, reply.payload.into()) {
                    // A full queue: the connection loop stops reading until there is room.
                    PartQueued::Yes | PartQueued::Stalled => {}
                    // The response was dropped: stop the request.
                    PartQueued::ResponseDropped => self.cancel(reply.id),
                }
            }
            Frame::End(end) => {
                let now = self.clock.now();
                if !self.log_batch_ended(now, end.id, Some(end.status)) {
                    self.ours.end(end.id, RequestOutcome::from(&end));
                }
            }
            Frame::Cancel(cancel) => self.app.emit(ClientEvent::Cancelled { id: cancel.id }),
            Frame::ChannelMsg(msg) => self.app.emit(ClientEvent::ChannelMessage {
                channel: msg.channel.to_owned(),
                from: msg.from.to_owned(),
                payload: msg.payload.into(),
            }),
            Frame::SubscribeAck(ack) => self.app.emit(ClientEvent::SubscribeResult {
                channel: ack.channel.to_owned(),
                subscribed: ack.subscribed,
                error: (ack.error != SubscribeError::NONE).then_some(ack.error),
            }),
            Frame::PublishDropped(report) => self.app.emit(ClientEvent::PublishDropped {
                channel: report.channel.to_owned(),
                dropped: report.dropped,
            }),
            // Welcome is reported through SessionEvent::Opened; the core refuses the rest.
            _ => {}
        }
    }

    /// Drains the session's events into application events and publishes counters.
    pub(super) fn drain_session(&mut self) {
        // State first, so a reader woken by an event sees `is_open` already matching it.
        self.app.publish_state(&self.session);
        while let Some(event) = self.session.poll_event() {
            match event {
                SessionEvent::Opened { connection_id } => {
                    self.logs_opened(self.clock.now());
                    let uid = self.session.uid().unwrap_or_default().to_owned();
                    self.app.emit(ClientEvent::Opened { uid, connection_id });
                }
                SessionEvent::Closed { code, initiator } => {
                    self.logs_closed();
                    let peer = self.close.peer_websocket.take();
                    let (code, initiator, peer_reason) = websocket::closed_by_websocket(
                        code,
                        initiator,
                        peer.as_ref().map(|(c, r)| (*c, r.as_str())),
                    );
                    let detail = self.close.detail.take();
                    let reason = match peer_reason {
                        Some(reason) => reason.to_owned(),
                        None => detail.unwrap_or_default(),
                    };
                    self.app.emit(ClientEvent::Closed {
                        code,
                        reason,
                        initiator,
                    });
                }
                SessionEvent::RequestEnded { id, end } => {
                    if !self.log_batch_ended(self.clock.now(), id, None) {
                        self.ours.end(id, RequestOutcome::from(end));
                    }
                }
                SessionEvent::ReconnectScheduled { attempt, delay } => {
                    self.app.emit(ClientEvent::ReconnectScheduled {
                        attempt,
                        delay: to_std_duration(delay),
                    });
                }
            }
        }
        self.app.publish_state(&self.session);
    }
}
