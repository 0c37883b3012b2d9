//! Both ends of a connection. [`ClientSession`] and [`ServerSession`] own the handshake and
//! role-specific frames; everything the two roles share (heartbeat, the request table, the
//! application's send calls, closing, events and stats) lives in [`Endpoint`], which both
//! dereference to.
//!
//! The calling pattern is the same on both sides: after every `handle_*` call or send call,
//! drain [`ClientSession::poll_transmit`] / [`ServerSession::poll_transmit`] and
//! [`Endpoint::poll_event`], then arm a timer for `poll_timeout`.

mod client;
mod endpoint;
mod server;

pub use client::{
    ClientConfig, ClientSession, MAX_HEARTBEAT_INTERVAL, MAX_HEARTBEAT_TIMEOUT, MAX_ID_LEN,
    MIN_HEARTBEAT_INTERVAL, heartbeat_from_welcome,
};
pub use endpoint::Endpoint;
pub use server::{ServerConfig, ServerSession};

use core::ops::DerefMut;

use crate::answering::DEFAULT_ANSWERING;
use crate::codec::EncodeError;
use crate::correlate::{RequestEnd, RequestId};
use crate::frame::{CloseCode, Frame};
use crate::time::{Duration, Instant};

/// The calls an adapter or a test harness makes on a session, whatever its role, so code that
/// drives connections can be written once for clients and servers. Role-specific calls
/// (connecting, accepting a Hello, channel frames) stay on the concrete types.
pub trait Session<const P: usize, const R: usize = DEFAULT_ANSWERING>:
    DerefMut<Target = Endpoint<P, R>>
{
    /// Feeds one received frame; see [`ClientSession::handle_frame`].
    fn handle_frame<'a>(
        &mut self,
        now: Instant,
        bytes: &'a [u8],
    ) -> Result<Option<Frame<'a>>, ProtocolError>;
    /// Fires due timers.
    fn handle_timeout(&mut self, now: Instant);
    /// When `handle_timeout` next has work.
    fn poll_timeout(&self) -> Option<Instant>;
    /// The next frame the session itself wants sent.
    fn poll_transmit(&mut self, buf: &mut [u8]) -> Result<Option<usize>, EncodeError>;
    /// The transport is gone.
    fn handle_disconnected(&mut self, now: Instant);
}

impl<const P: usize, const S: usize, const R: usize> Session<P, R> for ClientSession<P, S, R> {
    fn handle_frame<'a>(
        &mut self,
        now: Instant,
        bytes: &'a [u8],
    ) -> Result<Option<Frame<'a>>, ProtocolError> {
        ClientSession::handle_frame(self, now, bytes)
    }
    fn handle_timeout(&mut self, now: Instant) {
        ClientSession::handle_timeout(self, now);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        ClientSession::poll_timeout(self)
    }
    fn poll_transmit(&mut self, buf: &mut [u8]) -> Result<Option<usize>, EncodeError> {
        ClientSession::poll_transmit(self, buf)
    }
    fn handle_disconnected(&mut self, now: Instant) {
        ClientSession::handle_disconnected(self, now);
    }
}

impl<const P: usize, const R: usize> Session<P, R> for ServerSession<P, R> {
    fn handle_frame<'a>(
        &mut self,
        now: Instant,
        bytes: &'a [u8],
    ) -> Result<Option<Frame<'a>>, ProtocolError> {
        ServerSession::handle_frame(self, now, bytes)
    }
    fn handle_timeout(&mut self, now: Instant) {
        ServerSession::handle_timeout(self, now);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        ServerSession::poll_timeout(self)
    }
    fn poll_transmit(&mut self, buf: &mut [u8]) -> Result<Option<usize>, EncodeError> {
        ServerSession::poll_transmit(self, buf)
    }
    fn handle_disconnected(&mut self, now: Instant) {
        ServerSession::handle_disconnected(self, now);
    }
}

/// Adds one to a 64-bit counter of [`Stats`]. Not inlined: an increment of a 64-bit value
/// in memory is a long sequence on a 32-bit core, and a session counts in a dozen places.
#[inline(never)]
pub(crate) fn count(counter: &mut u64) {
    *counter += 1;
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum State {
    /// Client: no transport; waiting for the reconnect timer.
    Idle,
    /// Client: the adapter is opening the transport.
    Connecting,
    /// Transport up, Hello/Welcome not yet exchanged.
    Handshaking,
    /// Handshake done; application frames may flow.
    Open,
    /// A close was decided; transmit what is queued, then drop the transport.
    Closing,
    /// Finished for good (client shut down, or a server-side connection ended).
    Closed,
}

/// Who ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Initiator {
    /// This side decided (application close, timeout, protocol error).
    Local,
    /// The peer sent a Close frame.
    Peer,
    /// The transport vanished without a Close frame.
    Transport,
}

/// Things that happened, drained with [`Endpoint::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SessionEvent {
    /// The handshake completed.
    Opened {
        /// The server's id for this connection.
        connection_id: u64,
    },
    /// The connection ended.
    Closed {
        /// Why.
        code: CloseCode,
        /// Who ended it.
        initiator: Initiator,
    },
    /// A request of ours ended without a final frame from the peer.
    RequestEnded {
        /// The request.
        id: RequestId,
        /// How it ended (timed out, cancelled or closed).
        end: RequestEnd,
    },
    /// Client: the next connection attempt is scheduled.
    ReconnectScheduled {
        /// Consecutive failed attempts so far.
        attempt: u32,
        /// Delay before the attempt.
        delay: Duration,
    },
}

/// Counters kept by a session built with the `session-stats` feature (the default); see
/// `Endpoint::stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Stats {
    /// Frames handed to the transport.
    pub frames_sent: u64,
    /// Frames received and decoded.
    pub frames_received: u64,
    /// Bytes handed to the transport.
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Completed handshakes.
    pub handshakes: u32,
    /// Reconnect attempts scheduled (client).
    pub reconnects: u32,
    /// Replies for requests that had already ended (late after timeout or cancel).
    pub late_replies: u64,
    /// Reply parts that skipped a part number.
    pub reply_gaps: u64,
    /// Control frames (pongs) not queued because the control queue was full.
    pub control_dropped: u64,
    /// Lifecycle events discarded because the application did not drain `poll_event`.
    pub events_dropped: u64,
    /// Peer requests answered `BUSY` by the session because its answering table was full.
    pub requests_refused: u64,
    /// Cancels for peer requests no longer in flight (crossed with our End, or repeated).
    pub late_cancels: u64,
    /// Requests ignored because a request with the same id was still in flight (a repeated
    /// frame on a link that duplicates; the first copy is the one answered).
    pub duplicate_requests: u64,
}

/// Why an application send was refused. Nothing was queued; the caller still owns its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SendError {
    /// The session is not open (handshaking, closing or disconnected).
    NotOpen,
    /// The request table is full.
    PendingFull,
    /// No request in flight has that id.
    UnknownRequest,
    /// The channel name is invalid or the subscription table is full.
    Channel(crate::channels::ChannelError),
    /// The frame does not fit the buffer or the peer's limit.
    Encode(EncodeError),
}

impl crate::codec::NeedsRoom for SendError {
    fn room_needed(&self) -> Option<usize> {
        match self {
            SendError::Encode(e) => e.room_needed(),
            _ => None,
        }
    }
}

impl From<EncodeError> for SendError {
    fn from(e: EncodeError) -> Self {
        SendError::Encode(e)
    }
}

impl core::fmt::Display for SendError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SendError::NotOpen => f.write_str("session is not open"),
            SendError::PendingFull => f.write_str("too many requests in flight"),
            SendError::UnknownRequest => f.write_str("no such request in flight"),
            SendError::Channel(e) => write!(f, "channel refused: {e:?}"),
            SendError::Encode(e) => write!(f, "{e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SendError {}

/// The peer broke the protocol. The session has queued a Close frame with `code` and moved to
/// [`State::Closing`]; the adapter transmits it and drops the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ProtocolError {
    /// The close code sent to the peer.
    pub code: CloseCode,
    /// What was wrong.
    pub reason: &'static str,
}

impl core::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({})", self.reason, self.code.name())
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ProtocolError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode;

    #[test]
    fn a_protocol_error_queues_a_typed_close_and_reports_it_once() {
        let mut server: ServerSession<4> =
            ServerSession::new(ServerConfig::default(), Instant::ZERO);
        let err = server
            .handle_frame(Instant::ZERO, &[1, 200, 7])
            .unwrap_err();
        assert_eq!(err.code, CloseCode::PROTOCOL_ERROR);
        assert_eq!(
            server.local_close(),
            Some((CloseCode::PROTOCOL_ERROR, "malformed frame"))
        );
        assert!(
            !server.wants_disconnect(),
            "the Close frame is still queued"
        );
        let mut buf = [0u8; 64];
        let n = server.poll_transmit(&mut buf).unwrap().unwrap();
        assert!(matches!(
            decode(&buf[..n]),
            Ok(crate::Frame::Close(c)) if c.code == CloseCode::PROTOCOL_ERROR && c.reason == "malformed frame"
        ));
        assert!(server.wants_disconnect());
        server.handle_disconnected(Instant::from_millis(1));
        assert_eq!(server.local_close(), None);
        assert_eq!(
            server.poll_event(),
            Some(SessionEvent::Closed {
                code: CloseCode::PROTOCOL_ERROR,
                initiator: Initiator::Local
            })
        );
        assert_eq!(server.poll_event(), None);
        assert_eq!(server.state(), State::Closed);
    }

    /// Times (ms) at which a session sent a Ping.
    type Pings = heapless::Vec<u64, 16>;

    /// A server session that accepted a Hello at `now`, with the default heartbeat (30 s
    /// interval, 60 s timeout), its Welcome already taken.
    fn open_server(now: Instant) -> ServerSession<4> {
        let mut server: ServerSession<4> = ServerSession::new(ServerConfig::default(), now);
        let mut buf = [0u8; 128];
        let hello = Frame::Hello(crate::frame::Hello {
            client_id: "dev",
            boot_id: 1,
            token: None,
            capabilities: 0,
            max_frame: 1024,
            firmware: None,
        });
        let n = crate::codec::encode(&hello, &mut buf).unwrap();
        assert!(matches!(
            server.handle_frame(now, &buf[..n]),
            Ok(Some(Frame::Hello(_)))
        ));
        server.accept(now, "u", 1, &mut buf).unwrap();
        assert_eq!(server.state(), State::Open);
        server
    }

    /// Runs the server's timers every 100 ms from `from` to `to`; returns the times at which
    /// it sent a Ping. Panics if it decides to close.
    fn pings_between(server: &mut ServerSession<4>, from: u64, to: u64) -> Pings {
        let mut pings = Pings::new();
        let mut buf = [0u8; 64];
        for ms in (from..=to).step_by(100) {
            server.handle_timeout(Instant::from_millis(ms));
            while let Some(n) = server.poll_transmit(&mut buf).unwrap() {
                match decode(&buf[..n]) {
                    Ok(Frame::Ping(_)) => pings.push(ms).expect("at most 16 pings"),
                    other => panic!("unexpected frame at {ms} ms: {other:?}"),
                }
            }
            assert_eq!(server.state(), State::Open, "closed at {ms} ms");
        }
        pings
    }

    #[test]
    fn paused_reading_never_declares_the_peer_dead_and_pings_it_every_interval() {
        let mut server = open_server(Instant::ZERO);
        // An unpaused server only answers pings: none of its own before the timeout.
        assert!(pings_between(&mut server, 0, 50_000).is_empty());
        server.set_read_paused(Instant::from_millis(50_000), true);
        assert!(server.is_read_paused());
        assert_eq!(server.poll_timeout(), Some(Instant::from_millis(30_000)));
        // Paused far beyond the 60 s timeout: a Ping at once, then every 30 s.
        let pings = pings_between(&mut server, 50_000, 400_000);
        let expected: Pings = (0..12).map(|i| 50_000 + i * 30_000).collect();
        assert_eq!(pings, expected);
    }

    #[test]
    fn resumed_reading_counts_the_timeout_from_the_resume() {
        let mut server = open_server(Instant::ZERO);
        server.set_read_paused(Instant::from_millis(10_000), true);
        pings_between(&mut server, 10_000, 200_000);
        server.set_read_paused(Instant::from_millis(200_000), false);
        assert!(!server.is_read_paused());
        assert_eq!(server.poll_timeout(), Some(Instant::from_millis(260_000)));
        assert!(pings_between(&mut server, 200_000, 259_900).is_empty());
        server.handle_timeout(Instant::from_millis(260_000));
        assert_eq!(
            server.local_close().map(|(code, _)| code),
            Some(CloseCode::HEARTBEAT_TIMEOUT)
        );
    }

    #[test]
    fn repeated_pauses_within_an_interval_send_one_ping() {
        let mut server = open_server(Instant::ZERO);
        let mut pings = Pings::new();
        for round in 0..10u64 {
            let start = 40_000 + round * 1000;
            server.set_read_paused(Instant::from_millis(start), true);
            for at in pings_between(&mut server, start, start + 500) {
                pings.push(at).expect("at most 16 pings");
            }
            server.set_read_paused(Instant::from_millis(start + 500), false);
        }
        assert_eq!(pings[..], [40_000], "no ping storm from pause flapping");
    }
}
