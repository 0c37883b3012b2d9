//! Sending the log shipper's batches: one `telemetry/log-batch` request at a time, its End
//! the ack, anything else a failure the core puts back in line.

use sentelite_core::frame::Payload;
use sentelite_core::log::{BATCH_EVENT, BatchId, CONTROL_EVENT, LogControl};
use sentelite_core::{Duration, Instant, RequestId, Status};

use super::Driver;
use crate::Runtime;
use crate::logs::{SharedShipper, lock};

/// How long the server has to store a batch before it counts as failed.
const BATCH_TIMEOUT: Duration = Duration::from_secs(30);
/// Room for the request frame around a batch.
const FRAME_OVERHEAD: usize = 64;
/// Largest batch payload, so a batch stays a modest frame even for a server that accepts more.
const MAX_BATCH_BYTES: usize = 32 * 1024;

/// The driver's side of logging: the shared shipper and the batch in flight.
pub(super) struct Shipping {
    shipper: SharedShipper,
    in_flight: Option<(RequestId, BatchId)>,
    buf: Vec<u8>,
}

impl Shipping {
    pub(super) fn new(shipper: SharedShipper) -> Self {
        Self {
            shipper,
            in_flight: None,
            buf: Vec::new(),
        }
    }

    /// When a batch falls due by time (or the breaker lets a probe through).
    pub(super) fn next_timer(&self) -> Option<Instant> {
        lock(&self.shipper).poll_timeout()
    }
}

impl<R: Runtime> Driver<R> {
    /// The handshake completed: queued records are due.
    pub(super) fn logs_opened(&mut self, now: Instant) {
        if let Some(shipping) = &mut self.shipping {
            shipping.in_flight = None;
            lock(&shipping.shipper).on_connected(now);
        }
    }

    /// The connection ended: the batch in flight goes again on the next one.
    pub(super) fn logs_closed(&mut self) {
        if let Some(shipping) = &mut self.shipping {
            shipping.in_flight = None;
            lock(&shipping.shipper).on_disconnected();
        }
    }

    /// Sends a batch if one is due and none is in flight.
    pub(super) fn ship_logs(&mut self, now: Instant) {
        let Some(shipping) = self.shipping.as_mut() else {
            return;
        };
        if shipping.in_flight.is_some() || !self.session.is_open() {
            return;
        }
        let budget = self
            .session
            .peer_max_frame()
            .saturating_sub(FRAME_OVERHEAD)
            .min(MAX_BATCH_BYTES);
        shipping.buf.resize(budget, 0);
        let ready = lock(&shipping.shipper).poll_batch(now, &mut shipping.buf);
        let Some(ready) = ready else {
            return;
        };
        let payload = &shipping.buf[..ready.len];
        let sent = self.outbox.encode(&mut self.session, |s, buf| {
            s.request(
                now,
                BATCH_EVENT,
                Payload::Bytes(payload),
                Some(BATCH_TIMEOUT),
                buf,
            )
        });
        match sent {
            Ok(request) => {
                // With the `tracing` layer installed this event must not become a record:
                // the driver runs silenced (see `crate::logs::silent`).
                #[cfg(feature = "tracing")]
                tracing::trace!(
                    target: "sentelite_driver::logs",
                    records = ready.records,
                    bytes = ready.len,
                    "log batch sent"
                );
                shipping.in_flight = Some((request, ready.id));
            }
            Err(_) => {
                lock(&shipping.shipper).on_failed(now, ready.id);
            }
        }
    }

    /// An End arrived or the session ended request `id`; true when it was a log batch.
    pub(super) fn log_batch_ended(&mut self, now: Instant, id: RequestId, ok: bool) -> bool {
        let Some(shipping) = self.shipping.as_mut() else {
            return false;
        };
        let Some((_, batch)) = shipping.in_flight.filter(|(request, _)| *request == id) else {
            return false;
        };
        shipping.in_flight = None;
        let mut shipper = lock(&shipping.shipper);
        if ok {
            shipper.on_ack(batch);
        } else {
            shipper.on_failed(now, batch);
        }
        true
    }

    /// True for a part of the log batch in flight (the server sends none; ignore any).
    pub(super) fn is_log_batch(&self, id: RequestId) -> bool {
        self.shipping
            .as_ref()
            .and_then(|s| s.in_flight)
            .is_some_and(|(r, _)| r == id)
    }

    /// A `telemetry/log-control` event: applied, not shown to the application. False for
    /// any other event.
    pub(super) fn log_control(&mut self, event: &str, payload: Payload<'_>) -> bool {
        if event != CONTROL_EVENT {
            return false;
        }
        let Some(shipping) = &self.shipping else {
            return false;
        };
        if let Payload::Bytes(bytes) = payload
            && let Some(control) = LogControl::decode(bytes)
        {
            lock(&shipping.shipper).apply(control);
        }
        true
    }
}

/// Whether an End's status acknowledges a batch.
pub(super) fn acked(status: Status) -> bool {
    status == Status::OK
}
