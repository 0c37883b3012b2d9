//! What client and server connections share.

use heapless::Deque;

use super::{Initiator, ProtocolError, SendError, SessionEvent, State, Stats, count};
use crate::answering::{Admission, Answering, DEFAULT_ANSWERING};
use crate::codec::{self, EncodeError, Sent};
use crate::correlate::{Pending, RequestId};
use crate::frame::{
    Cancel, Close, CloseCode, End, Event, Frame, Payload, Ping, Reply, Request, Status,
};
use crate::heartbeat::{Heartbeat, HeartbeatAction};
use crate::time::{Duration, Instant, earliest};

/// A frame the session itself decided to send.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Control {
    Ping(u32),
    Pong(u32),
    /// The session refused a peer request beyond its limit (`End` with `BUSY`).
    Busy(RequestId),
    /// The Close frame; its code and reason are `local_close`, so each queue entry stays
    /// 8 bytes.
    Close,
}

/// Where a received frame goes after the shared checks.
pub(crate) enum Routed<'a> {
    /// Fully handled here (ping, pong, a late reply).
    Consumed,
    /// Hand to the application.
    Deliver(Frame<'a>),
    /// Role-specific: the client or server session decides.
    Role(Frame<'a>),
    /// A kind this role never receives, left undecoded: the role refuses it.
    Foreign,
}

/// The role-independent half of a session: heartbeat, request tables, send calls, close,
/// events and stats. `P` is the number of requests this side may have in flight; `R` the
/// number of the peer's requests it answers at once (see [`crate::answering`]).
pub struct Endpoint<const P: usize, const R: usize = DEFAULT_ANSWERING> {
    pub(crate) state: State,
    pub(crate) heartbeat: Option<Heartbeat>,
    pub(crate) pending: Pending<P>,
    pub(crate) answering: Answering<R>,
    control: Deque<Control, 8>,
    events: Deque<SessionEvent, 8>,
    #[cfg(feature = "session-stats")]
    stats: Stats,
    pub(crate) local_max_frame: usize,
    pub(crate) peer_max_frame: usize,
    pub(crate) close_reason: Option<(CloseCode, Initiator)>,
    /// The close this side decided, with its reason, until the transport is gone.
    local_close: Option<(CloseCode, &'static str)>,
    /// The adapter stopped reading its transport on purpose; see [`Self::set_read_paused`].
    read_paused: bool,
}

impl<const P: usize, const R: usize> Endpoint<P, R> {
    /// `answer_limit` bounds the peer's requests answered at once (capped at `R`).
    pub(crate) fn new(state: State, local_max_frame: usize, answer_limit: usize) -> Self {
        Self {
            state,
            heartbeat: None,
            pending: Pending::new(),
            answering: Answering::new(answer_limit),
            control: Deque::new(),
            events: Deque::new(),
            #[cfg(feature = "session-stats")]
            stats: Stats::default(),
            local_max_frame,
            // Until the handshake says otherwise, assume the smallest sensible peer.
            peer_max_frame: 512,
            close_reason: None,
            local_close: None,
            read_paused: false,
        }
    }

    /// Where the connection is.
    pub fn state(&self) -> State {
        self.state
    }

    /// True once the handshake is done and until a close is decided.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// True when the adapter should drop the transport: a close was decided and every queued
    /// frame (including the Close frame) has been taken by `poll_transmit`.
    pub fn wants_disconnect(&self) -> bool {
        self.state == State::Closing && self.control.is_empty()
    }

    /// The close this side decided (application close, timeout, protocol error) with its
    /// reason, from the decision until the transport is gone. Adapters put it in the
    /// transport's own close (the WebSocket close frame).
    pub fn local_close(&self) -> Option<(CloseCode, &'static str)> {
        self.local_close
    }

    /// Tells the session that the adapter stopped (`paused`) or resumed reading its
    /// transport on purpose, at `now`: the application is not taking what was already read,
    /// so the peer's frames, its pings among them, wait unread.
    ///
    /// While paused the peer cannot be judged by its silence: the heartbeat timeout is
    /// suspended and counts again from the moment reading resumes. The session still sends a
    /// Ping at least once per heartbeat interval (a server, which otherwise only answers, as
    /// well), so the peer keeps hearing from us and does not blame us either. Re-arm the
    /// timer from `poll_timeout` afterwards. Repeating the current state changes nothing; a
    /// new transport starts unpaused.
    pub fn set_read_paused(&mut self, now: Instant, paused: bool) {
        if self.read_paused == paused {
            return;
        }
        self.read_paused = paused;
        if !paused && let Some(hb) = self.heartbeat.as_mut() {
            hb.on_read_resumed(now);
        }
    }

    /// True while the adapter has paused reading (see [`Self::set_read_paused`]).
    pub fn is_read_paused(&self) -> bool {
        self.read_paused
    }

    /// Counters.
    #[cfg(feature = "session-stats")]
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Smoothed round-trip time (RFC 6298: each pong moves it an eighth of the way to the
    /// new sample), measured on the client side, which sends the pings. `None` until the
    /// first pong of the current connection.
    #[cfg(feature = "session-stats")]
    pub fn rtt(&self) -> Option<Duration> {
        self.heartbeat.as_ref().and_then(Heartbeat::smoothed_rtt)
    }

    /// Requests of ours still awaiting their end.
    pub fn requests_in_flight(&self) -> usize {
        self.pending.in_flight()
    }

    /// Peer requests being answered (admitted and not yet ended), cancelled ones included.
    pub fn requests_answering(&self) -> usize {
        self.answering.in_flight()
    }

    /// True while the peer's request `id` is admitted and its End not yet sent.
    pub fn is_answering(&self, id: RequestId) -> bool {
        self.answering.contains(id)
    }

    /// Most peer requests answered at once; more are answered `BUSY` by the session.
    pub fn answer_limit(&self) -> usize {
        self.answering.limit()
    }

    /// Largest frame the peer accepts.
    pub fn peer_max_frame(&self) -> usize {
        self.peer_max_frame
    }

    /// Takes the next event. Drain after every input.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        if let Some(ev) = self.events.pop_front() {
            return Some(ev);
        }
        self.pending
            .poll_ended()
            .map(|(id, end)| SessionEvent::RequestEnded { id, end })
    }

    /// Sends a one-way event.
    pub fn send_event(
        &mut self,
        event: &str,
        payload: Payload<'_>,
        buf: &mut [u8],
    ) -> Result<usize, SendError> {
        self.encode_app(&Sent::Event(Event { event, payload }), buf)
    }

    /// Starts a request; its parts arrive as `Frame::Reply`, its end as `Frame::End` or as a
    /// [`SessionEvent::RequestEnded`] (timeout, cancel, close). `timeout` of `None` waits
    /// until the connection ends.
    pub fn request(
        &mut self,
        now: Instant,
        event: &str,
        payload: Payload<'_>,
        timeout: Option<Duration>,
        buf: &mut [u8],
    ) -> Result<(RequestId, usize), SendError> {
        if !self.is_open() {
            return Err(SendError::NotOpen);
        }
        let id = self
            .pending
            .insert(now, timeout)
            .map_err(|_| SendError::PendingFull)?;
        let timeout_ms = timeout.map_or(0, |t| u32::try_from(t.as_millis()).unwrap_or(u32::MAX));
        let frame = Sent::Request(Request {
            id,
            event,
            timeout_ms,
            payload,
        });
        match self.encode_app(&frame, buf) {
            Ok(n) => Ok((id, n)),
            Err(e) => {
                self.pending.forget(id);
                Err(e)
            }
        }
    }

    /// Sends one streamed part of our answer to the peer's request `id`. A request that is
    /// not being answered (never admitted, or already ended) is `UnknownRequest`.
    pub fn reply(
        &mut self,
        id: RequestId,
        seq: u32,
        payload: Payload<'_>,
        buf: &mut [u8],
    ) -> Result<usize, SendError> {
        if !self.answering.contains(id) {
            return Err(SendError::UnknownRequest);
        }
        self.encode_app(&Sent::Reply(Reply { id, seq, payload }), buf)
    }

    /// Sends the final status of our answer to the peer's request `id` and frees its slot.
    /// A request that is not being answered is `UnknownRequest`. When the frame cannot be
    /// encoded the request stays in flight, so the caller can still end it (say with an
    /// empty `ERROR`).
    pub fn end(
        &mut self,
        id: RequestId,
        status: Status,
        payload: Payload<'_>,
        buf: &mut [u8],
    ) -> Result<usize, SendError> {
        let Some(slot) = self.answering.slot_of(id) else {
            return Err(SendError::UnknownRequest);
        };
        let n = self.encode_app(
            &Sent::End(End {
                id,
                status,
                payload,
            }),
            buf,
        )?;
        self.answering.remove(slot);
        Ok(n)
    }

    /// Cancels one of our requests. It ends at once (reported as `Cancelled`); the Cancel
    /// frame asks the peer to stop working on it. Returns the frame length, or 0 when the
    /// session is not open and only the local end was recorded.
    pub fn cancel(&mut self, id: RequestId, buf: &mut [u8]) -> Result<usize, SendError> {
        self.pending
            .cancel(id)
            .map_err(|_| SendError::UnknownRequest)?;
        if !self.is_open() {
            return Ok(0);
        }
        self.encode_app(&Sent::Cancel(Cancel { id }), buf)
    }

    /// Closes the connection with `code`; the Close frame comes out of `poll_transmit`.
    /// Not inlined: an adapter closes from several places.
    #[inline(never)]
    pub fn close(&mut self, code: CloseCode, reason: &'static str) {
        match self.state {
            State::Open | State::Handshaking => self.begin_close(code, reason, true),
            State::Connecting => self.begin_close(code, reason, false),
            _ => {}
        }
    }

    /// Encodes an application frame if the session is open and the frame fits the peer.
    /// A [`Sent`] for the kinds both roles send (and the client's); a [`Frame`] for the
    /// server's own.
    pub(crate) fn encode_app<F: codec::Encode>(
        &mut self,
        frame: &F,
        buf: &mut [u8],
    ) -> Result<usize, SendError> {
        if !self.is_open() {
            return Err(SendError::NotOpen);
        }
        let n = frame.encode_into(buf, self.peer_max_frame)?;
        self.count_sent(n);
        Ok(n)
    }

    /// Not inlined: four send paths share it, and its two 64-bit additions are long on a
    /// 32-bit core.
    #[cfg_attr(feature = "session-stats", inline(never))]
    pub(crate) fn count_sent(&mut self, bytes: usize) {
        self.tally(|s| {
            s.frames_sent += 1;
            s.bytes_sent += bytes as u64;
        });
    }

    /// Applies `update` to the counters; without the `session-stats` feature there are none
    /// and nothing is counted.
    #[inline(always)]
    pub(crate) fn tally(&mut self, update: impl FnOnce(&mut Stats)) {
        #[cfg(feature = "session-stats")]
        update(&mut self.stats);
        #[cfg(not(feature = "session-stats"))]
        let _ = update;
    }

    pub(crate) fn push_event(&mut self, event: SessionEvent) {
        // Event kinds besides request ends are rare (a handful per connection); if the
        // application does not drain, keep the newest close/open information.
        if self.events.is_full() {
            self.events.pop_front();
            self.tally(|s| count(&mut s.events_dropped));
        }
        let _ = self.events.push_back(event);
    }

    /// Decides to close: queue a Close frame (if the transport can carry it) and remember why.
    pub(crate) fn begin_close(&mut self, code: CloseCode, reason: &'static str, send_frame: bool) {
        if matches!(self.state, State::Closing | State::Closed) {
            return;
        }
        debug!("closing: {}", code.name());
        self.state = State::Closing;
        self.close_reason = Some((code, Initiator::Local));
        self.local_close = Some((code, reason));
        if send_frame {
            // Pings and pongs are pointless once closing; make room for the Close frame.
            self.control.clear();
            let _ = self.control.push_back(Control::Close);
        }
    }

    /// Tears down per-connection state after the transport is gone.
    pub(crate) fn on_transport_gone(&mut self) -> (CloseCode, Initiator) {
        let (code, initiator) = self
            .close_reason
            .take()
            .unwrap_or((CloseCode::GOING_AWAY, Initiator::Transport));
        self.pending.close_all();
        self.answering.clear();
        self.control.clear();
        self.heartbeat = None;
        self.local_close = None;
        self.read_paused = false;
        self.push_event(SessionEvent::Closed { code, initiator });
        (code, initiator)
    }

    /// Takes the next control frame, encoded.
    pub(crate) fn poll_control(&mut self, buf: &mut [u8]) -> Result<Option<usize>, EncodeError> {
        let Some(control) = self.control.front().copied() else {
            return Ok(None);
        };
        let frame = match control {
            Control::Ping(nonce) => Sent::Ping(Ping { nonce }),
            Control::Pong(nonce) => Sent::Pong(Ping { nonce }),
            Control::Busy(id) => Sent::End(End {
                id,
                status: Status::BUSY,
                payload: Payload::Empty,
            }),
            Control::Close => {
                let (code, reason) = self.local_close.unwrap_or((CloseCode::GOING_AWAY, ""));
                Sent::Close(Close { code, reason })
            }
        };
        let n = codec::encode_sent(&frame, buf, usize::MAX)?;
        self.control.pop_front();
        self.count_sent(n);
        Ok(Some(n))
    }

    /// Decodes and applies the checks every role shares.
    /// `decode` is the role's decoder: `None` for a kind the role never receives.
    pub(crate) fn route<'a>(
        &mut self,
        now: Instant,
        bytes: &'a [u8],
        decode: impl FnOnce(&'a [u8], usize) -> Result<Option<Frame<'a>>, codec::DecodeError>,
    ) -> Result<Routed<'a>, ProtocolError> {
        if matches!(
            self.state,
            State::Closing | State::Closed | State::Idle | State::Connecting
        ) {
            // After a close decision nothing more is processed; the transport is going away.
            return Ok(Routed::Consumed);
        }
        self.tally(|s| s.bytes_received += bytes.len() as u64);
        let frame = match decode(bytes, self.local_max_frame) {
            Ok(f) => f,
            Err(e) => return Err(self.protocol_error(e.close_code(), e.reason())),
        };
        self.tally(|s| count(&mut s.frames_received));
        if let Some(hb) = self.heartbeat.as_mut() {
            hb.on_receive(now);
        }
        let Some(frame) = frame else {
            return Ok(Routed::Foreign);
        };
        // Whether the application gets the frame, decided first and the frame moved at one
        // place: each arm's own `Routed::Deliver(frame)` would be another copy of it.
        let deliver = match frame {
            Frame::Ping(Ping { nonce }) => {
                if self.state == State::Open
                    && self.control.push_back(Control::Pong(nonce)).is_err()
                {
                    self.tally(|s| count(&mut s.control_dropped));
                }
                false
            }
            Frame::Pong(Ping { nonce }) => {
                if let Some(hb) = self.heartbeat.as_mut() {
                    hb.on_pong(now, nonce);
                }
                false
            }
            Frame::Close(close) => {
                self.state = State::Closing;
                self.close_reason = Some((close.code, Initiator::Peer));
                self.control.clear();
                true
            }
            Frame::Event(_) if self.state == State::Open => true,
            Frame::Request(request) if self.state == State::Open => {
                match self.answering.admit(request.id) {
                    Admission::Admitted => true,
                    // A repeat of a request being answered: answering it once is what the
                    // peer asked for, so the copy is dropped (and counted), not fatal.
                    Admission::Duplicate => {
                        self.tally(|s| count(&mut s.duplicate_requests));
                        false
                    }
                    Admission::Busy => {
                        self.refuse_busy(request.id);
                        false
                    }
                }
            }
            Frame::Cancel(cancel) if self.state == State::Open => {
                let live = self.answering.cancel(cancel.id);
                if !live {
                    // Ended already (the End crossed the Cancel) or cancelled twice.
                    self.tally(|s| count(&mut s.late_cancels));
                }
                live
            }
            Frame::Reply(reply) if self.state == State::Open => {
                match self.pending.on_part(reply.id, reply.seq) {
                    Ok(expected) => {
                        if expected != reply.seq {
                            self.tally(|s| count(&mut s.reply_gaps));
                        }
                        true
                    }
                    Err(_) => {
                        self.tally(|s| count(&mut s.late_replies));
                        false
                    }
                }
            }
            Frame::End(end) if self.state == State::Open => {
                let known = self.pending.complete(end.id).is_ok();
                if !known {
                    self.tally(|s| count(&mut s.late_replies));
                }
                known
            }
            Frame::Event(_)
            | Frame::Request(_)
            | Frame::Cancel(_)
            | Frame::Reply(_)
            | Frame::End(_) => {
                return Err(self.protocol_error(
                    CloseCode::PROTOCOL_ERROR,
                    "application frame before handshake",
                ));
            }
            other => return Ok(Routed::Role(other)),
        };
        Ok(if deliver {
            Routed::Deliver(frame)
        } else {
            Routed::Consumed
        })
    }

    /// Answers a request beyond the limit with `BUSY`. The answer waits in the control queue;
    /// a peer that keeps sending past the limit faster than the answers are transmitted
    /// leaves no room, and is closed rather than queued for.
    fn refuse_busy(&mut self, id: RequestId) {
        self.tally(|s| count(&mut s.requests_refused));
        if self.control.push_back(Control::Busy(id)).is_err() {
            self.begin_close(
                CloseCode::LIMIT_EXCEEDED,
                "requests beyond max-pending faster than refused",
                true,
            );
        }
    }

    /// Records a protocol violation: queue a Close frame and report it.
    pub(crate) fn protocol_error(
        &mut self,
        code: CloseCode,
        reason: &'static str,
    ) -> ProtocolError {
        warn!("protocol error: {}", reason);
        self.begin_close(code, reason, true);
        ProtocolError { code, reason }
    }

    /// Heartbeat and request deadlines.
    pub(crate) fn handle_timers(&mut self, now: Instant) {
        self.pending.expire(now);
        if self.state != State::Open {
            return;
        }
        let Some(hb) = self.heartbeat.as_mut() else {
            return;
        };
        match hb.poll(now, self.read_paused) {
            HeartbeatAction::Idle => {}
            HeartbeatAction::SendPing(nonce) => {
                if self.control.push_back(Control::Ping(nonce)).is_err() {
                    self.tally(|s| count(&mut s.control_dropped));
                }
            }
            HeartbeatAction::PeerDead => {
                self.begin_close(
                    CloseCode::HEARTBEAT_TIMEOUT,
                    "peer silent past heartbeat timeout",
                    true,
                );
            }
        }
    }

    /// The earliest timer the shared parts need.
    pub(crate) fn next_timer(&self) -> Option<Instant> {
        let hb = match (self.state, self.heartbeat.as_ref()) {
            (State::Open, Some(hb)) => Some(hb.next_deadline(self.read_paused)),
            _ => None,
        };
        earliest(hb, self.pending.next_deadline())
    }
}
