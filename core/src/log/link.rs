//! Log shipping on one connection, the part every adapter's loop would otherwise repeat:
//! which request carries the batch in flight, when a batch goes out, what its end means,
//! and recognising the server's `telemetry/log-control` events. Sans-IO like the rest: the
//! adapter hands in the session, the shipper and two buffers, and writes the frame it gets.

use super::queue::BatchId;
use super::shipper::{BATCH_EVENT, CONTROL_EVENT, LogControl, LogShipper};
use crate::correlate::RequestId;
use crate::frame::{Payload, Status};
use crate::session::Endpoint;
use crate::time::{Duration, Instant};

/// How long the server has to store a batch before it counts as failed.
pub const BATCH_TIMEOUT: Duration = Duration::from_secs(30);
/// Room for the request frame around a batch payload.
pub const FRAME_OVERHEAD: usize = 64;

/// The batch in flight on the current connection, if any. One per client.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ShippingLink {
    in_flight: Option<(RequestId, BatchId)>,
}

/// A batch request encoded and ready to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Shipped {
    /// Frame bytes written to the frame buffer.
    pub frame_len: usize,
    /// Records in the batch.
    pub records: usize,
}

impl ShippingLink {
    /// No batch in flight.
    pub const fn new() -> Self {
        Self { in_flight: None }
    }

    /// The handshake completed: what is queued is due.
    pub fn opened<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        shipper: &mut LogShipper<B>,
        now: Instant,
    ) {
        self.in_flight = None;
        shipper.on_connected(now);
    }

    /// The connection ended: the batch in flight goes again on the next one.
    pub fn closed<B: AsRef<[u8]> + AsMut<[u8]>>(&mut self, shipper: &mut LogShipper<B>) {
        self.in_flight = None;
        shipper.on_disconnected();
    }

    /// True while a batch waits for its end.
    pub fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// If the session is open, no batch is in flight and one is due, encodes it into
    /// `scratch` and its request frame into `frame`. The batch is kept to what fits both
    /// `scratch` and the peer's frame limit. A request that cannot be encoded puts the
    /// batch back in line.
    pub fn ship<B: AsRef<[u8]> + AsMut<[u8]>, const P: usize, const R: usize>(
        &mut self,
        now: Instant,
        session: &mut Endpoint<P, R>,
        shipper: &mut LogShipper<B>,
        scratch: &mut [u8],
        frame: &mut [u8],
    ) -> Option<Shipped> {
        if self.in_flight.is_some() || !session.is_open() {
            return None;
        }
        let budget = session
            .peer_max_frame()
            .min(frame.len())
            .saturating_sub(FRAME_OVERHEAD)
            .min(scratch.len());
        let (scratch, _) = scratch.split_at_mut_checked(budget)?;
        let ready = shipper.poll_batch(now, scratch)?;
        let sent = scratch.get(..ready.len).map(|batch| {
            session.request(
                now,
                BATCH_EVENT,
                Payload::Bytes(batch),
                Some(BATCH_TIMEOUT),
                frame,
            )
        });
        match sent {
            Some(Ok((id, frame_len))) => {
                self.in_flight = Some((id, ready.id));
                Some(Shipped {
                    frame_len,
                    records: ready.records,
                })
            }
            // Not encoded, or (a bug) a length beyond what `poll_batch` wrote: the batch
            // goes back in line.
            _ => {
                shipper.on_failed(now, ready.id);
                None
            }
        }
    }

    /// Request `id` ended (an End with `status`, or `None` when the session ended it:
    /// timeout, close). True when it was the batch in flight, which is then acknowledged
    /// (status OK) or put back in line.
    pub fn ended<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        shipper: &mut LogShipper<B>,
        now: Instant,
        id: RequestId,
        status: Option<Status>,
    ) -> bool {
        let Some((_, batch)) = self.in_flight.filter(|(request, _)| *request == id) else {
            return false;
        };
        self.in_flight = None;
        if status == Some(Status::OK) {
            shipper.on_ack(batch);
        } else {
            shipper.on_failed(now, batch);
        }
        true
    }

    /// True for a part of the batch in flight (the server sends none; ignore any).
    pub fn carries(&self, id: RequestId) -> bool {
        self.in_flight.is_some_and(|(request, _)| request == id)
    }
}

/// What an event from the server means for logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ControlEvent {
    /// Not a log-control event: the application's.
    NotControl,
    /// A log-control event whose payload is not one this client understands (ignored).
    Unknown,
    /// A change to apply with [`LogShipper::apply`].
    Control(LogControl),
}

/// Sorts an event from the server: a `telemetry/log-control` event with a bytes payload
/// carries a [`LogControl`].
#[inline(never)]
pub fn control_event(event: &str, payload: Payload<'_>) -> ControlEvent {
    if event != CONTROL_EVENT {
        return ControlEvent::NotControl;
    }
    match payload {
        Payload::Bytes(bytes) => match LogControl::decode(bytes) {
            Some(control) => ControlEvent::Control(control),
            None => ControlEvent::Unknown,
        },
        _ => ControlEvent::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode, encode};
    use crate::frame::{End, Frame, Welcome};
    use crate::log::{FilterConfig, Level, LevelSet, LogConfig, NewRecord, decode_batch};
    use crate::{ClientConfig, ClientSession};

    type Client = ClientSession<4, 2>;

    fn first_seq(batch: &crate::log::DecodedBatch<'_>) -> u32 {
        batch.records().next().unwrap().unwrap().seq
    }

    fn open_client() -> Client {
        let mut client = Client::new(ClientConfig::new("dev").unwrap(), Instant::ZERO);
        assert!(client.poll_connect(Instant::ZERO));
        client.handle_connected(Instant::ZERO);
        let mut buf = [0u8; 256];
        while client.poll_transmit(&mut buf).unwrap().is_some() {}
        let n = encode(
            &Frame::Welcome(Welcome {
                uid: "u",
                connection_id: 1,
                max_frame: 4096,
                heartbeat_ms: 30_000,
                heartbeat_timeout_ms: 60_000,
                max_pending: 4,
                max_subscriptions: 2,
            }),
            &mut buf,
        )
        .unwrap();
        client.handle_frame(Instant::ZERO, &buf[..n]).unwrap();
        assert!(client.is_open());
        client
    }

    fn record(message: &str) -> NewRecord<'_> {
        NewRecord {
            time_ms: 1,
            level: Level::Warn,
            namespace: "t",
            id: None,
            message,
            data: &[],
        }
    }

    fn end_frame(id: RequestId, status: Status, buf: &mut [u8]) -> usize {
        encode(
            &Frame::End(End {
                id,
                status,
                payload: Payload::Empty,
            }),
            buf,
        )
        .unwrap()
    }

    #[test]
    fn a_batch_goes_out_once_and_its_ok_end_acknowledges_it() {
        let mut client = open_client();
        let mut shipper = LogShipper::new([0u8; 1024], LogConfig::default(), 0);
        let mut link = ShippingLink::new();
        let (mut scratch, mut frame) = ([0u8; 512], [0u8; 600]);
        shipper.log(Instant::ZERO, &record("one"));
        link.opened(&mut shipper, Instant::ZERO);
        let shipped = link
            .ship(
                Instant::ZERO,
                &mut client,
                &mut shipper,
                &mut scratch,
                &mut frame,
            )
            .expect("queued records are due once connected");
        assert_eq!(shipped.records, 1);
        let Ok(Frame::Request(request)) = decode(&frame[..shipped.frame_len]) else {
            panic!("a request frame");
        };
        assert_eq!(request.event, BATCH_EVENT);
        let Payload::Bytes(batch) = request.payload else {
            panic!("bytes payload");
        };
        assert_eq!(first_seq(&decode_batch(batch).unwrap()), 0);
        let id = request.id;
        // One in flight at a time.
        shipper.log(Instant::ZERO, &record("two"));
        assert!(
            link.ship(
                Instant::ZERO,
                &mut client,
                &mut shipper,
                &mut scratch,
                &mut frame
            )
            .is_none()
        );
        assert!(link.carries(id));
        assert!(!link.ended(&mut shipper, Instant::ZERO, id + 1, Some(Status::OK)));
        let mut buf = [0u8; 64];
        let n = end_frame(id, Status::OK, &mut buf);
        assert!(client.handle_frame(Instant::ZERO, &buf[..n]).is_ok());
        assert!(link.ended(&mut shipper, Instant::ZERO, id, Some(Status::OK)));
        assert_eq!(shipper.queue().len(), 1, "only the second record is left");
    }

    #[test]
    fn a_failed_or_cut_batch_is_sent_again_with_the_same_records() {
        let mut client = open_client();
        let mut shipper = LogShipper::new([0u8; 1024], LogConfig::default(), 7);
        let mut link = ShippingLink::new();
        let (mut scratch, mut frame) = ([0u8; 512], [0u8; 600]);
        shipper.log(Instant::ZERO, &record("kept"));
        link.opened(&mut shipper, Instant::ZERO);
        let first = link
            .ship(
                Instant::ZERO,
                &mut client,
                &mut shipper,
                &mut scratch,
                &mut frame,
            )
            .unwrap();
        assert_eq!(first.records, 1);
        // The connection drops before the End.
        link.closed(&mut shipper);
        assert!(!link.in_flight());
        link.opened(&mut shipper, Instant::from_millis(10));
        let again = link
            .ship(
                Instant::from_millis(10),
                &mut client,
                &mut shipper,
                &mut scratch,
                &mut frame,
            )
            .expect("the batch is due again on the next connection");
        let Ok(Frame::Request(request)) = decode(&frame[..again.frame_len]) else {
            panic!("a request frame");
        };
        let Payload::Bytes(batch) = request.payload else {
            panic!("bytes payload");
        };
        assert_eq!(
            first_seq(&decode_batch(batch).unwrap()),
            7,
            "same records, same seq"
        );
    }

    #[test]
    fn log_control_events_are_recognised_and_others_left_alone() {
        let control = LogControl::SetFilter(FilterConfig {
            levels: LevelSet::at_least(Level::Debug),
            ..FilterConfig::default()
        });
        let mut buf = [0u8; 64];
        let n = control.encode(&mut buf).unwrap();
        assert_eq!(
            control_event(CONTROL_EVENT, Payload::Bytes(&buf[..n])),
            ControlEvent::Control(control)
        );
        assert_eq!(
            control_event(CONTROL_EVENT, Payload::Bytes(&[0xff, 0xff])),
            ControlEvent::Unknown
        );
        // Cut short, or a byte after the message: not one.
        for bytes in [&buf[..n - 1], &buf[..n + 1]] {
            assert_eq!(
                control_event(CONTROL_EVENT, Payload::Bytes(bytes)),
                ControlEvent::Unknown
            );
        }
        assert_eq!(
            control_event("app/other", Payload::Bytes(&buf[..n])),
            ControlEvent::NotControl
        );
    }
}
