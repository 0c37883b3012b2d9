//! Sending the log shipper's batches: the core's [`ShippingLink`] decides when a batch goes
//! out as a `telemetry/log-batch` request and what its end means (the embassy runner uses
//! the same); this file only lends it buffers and queues the frame.

use sentelite_core::frame::Payload;
use sentelite_core::log::{ControlEvent, FRAME_OVERHEAD, ShippingLink, control_event};
use sentelite_core::{Instant, RequestId, Status};

use super::Driver;
use crate::Runtime;
use crate::logs::{SharedShipper, lock};

/// Largest batch payload, so a batch stays a modest frame even for a server that accepts more.
const MAX_BATCH_BYTES: usize = 32 * 1024;

/// The driver's side of logging: the shared shipper, the batch in flight and two buffers.
pub(super) struct Shipping {
    shipper: SharedShipper,
    link: ShippingLink,
    batch: Vec<u8>,
    frame: Vec<u8>,
}

impl Shipping {
    pub(super) fn new(shipper: SharedShipper) -> Self {
        Self {
            shipper,
            link: ShippingLink::new(),
            batch: Vec::new(),
            frame: Vec::new(),
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
            shipping.link.opened(&mut lock(&shipping.shipper), now);
        }
    }

    /// The connection ended: the batch in flight goes again on the next one.
    pub(super) fn logs_closed(&mut self) {
        if let Some(shipping) = &mut self.shipping {
            shipping.link.closed(&mut lock(&shipping.shipper));
        }
    }

    /// Sends a batch if one is due and none is in flight.
    pub(super) fn ship_logs(&mut self, now: Instant) {
        let Some(shipping) = self.shipping.as_mut() else {
            return;
        };
        if shipping.link.in_flight() || !self.session.is_open() {
            return;
        }
        let budget = self.session.peer_max_frame().min(MAX_BATCH_BYTES);
        shipping.batch.resize(budget, 0);
        shipping.frame.resize(budget + FRAME_OVERHEAD, 0);
        let shipped = shipping.link.ship(
            now,
            &mut self.session,
            &mut lock(&shipping.shipper),
            &mut shipping.batch,
            &mut shipping.frame,
        );
        if let Some(shipped) = shipped {
            // With the `tracing` layer installed this event must not become a record:
            // the driver runs silenced (see `crate::logs::silent`).
            #[cfg(feature = "tracing")]
            tracing::trace!(
                target: "sentelite_driver::logs",
                records = shipped.records,
                bytes = shipped.frame_len,
                "log batch sent"
            );
            self.outbox
                .push_frame(shipping.frame[..shipped.frame_len].to_vec());
        }
    }

    /// An End arrived (`status`) or the session ended request `id` (`None`); true when it
    /// was a log batch.
    pub(super) fn log_batch_ended(
        &mut self,
        now: Instant,
        id: RequestId,
        status: Option<Status>,
    ) -> bool {
        let Some(shipping) = self.shipping.as_mut() else {
            return false;
        };
        shipping
            .link
            .ended(&mut lock(&shipping.shipper), now, id, status)
    }

    /// True for a part of the log batch in flight (the server sends none; ignore any).
    pub(super) fn is_log_batch(&self, id: RequestId) -> bool {
        self.shipping.as_ref().is_some_and(|s| s.link.carries(id))
    }

    /// A `telemetry/log-control` event: applied, not shown to the application. False for
    /// any other event.
    pub(super) fn log_control(&mut self, event: &str, payload: Payload<'_>) -> bool {
        let Some(shipping) = &self.shipping else {
            return false;
        };
        match control_event(event, payload) {
            ControlEvent::NotControl => false,
            ControlEvent::Unknown => true,
            ControlEvent::Control(control) => {
                lock(&shipping.shipper).apply(control);
                true
            }
        }
    }
}
