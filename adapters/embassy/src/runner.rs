//! The runner: one loop that owns the socket and drives the core's [`ClientSession`] with
//! embassy-time, following the core's calling pattern. After every input (bytes, a timer,
//! a message from the handle) it writes what `poll_transmit` and the log shipper produce,
//! hands `poll_event` to the application, and waits on the socket, the earliest deadline
//! and the outbox at once. Reconnect pacing, heartbeats, request deadlines and log batching
//! are the core's decisions; this loop only carries them out.

use core::future::poll_fn;
use core::task::{Poll, ready};

use embassy_futures::select::{Either3, select3};
use embassy_net::Stack;
use embassy_net::dns::DnsQueryType;
use embassy_net::tcp::TcpSocket;
use embassy_time::{Duration as EmbassyDuration, Timer, with_deadline, with_timeout};
use embedded_io_async::Write as _;
use heapless::Vec;
use sentelite_core::log::ShippingLink;
use sentelite_core::session::State;
use sentelite_core::{
    ClientSession, CloseCode, Duration, Frame, Instant, Payload, RequestId, SessionEvent, Status,
};

#[cfg(feature = "requests")]
use crate::handle::REQUEST_SLOTS;
use crate::handle::Shared;
use crate::logging::Logger;
#[cfg(feature = "requests")]
use crate::message::{Answer, Ticketed};
use crate::message::{Incoming, Outgoing, OwnedPayload, name};
use crate::outline::outlined;
use crate::upgrade;
use crate::url::WsUrl;
use crate::ws::{Framing, Kind, SendKind, WsError};

/// Requests in flight at once: the application's slots and the log batch.
#[cfg(feature = "requests")]
const PENDING: usize = REQUEST_SLOTS + 1;
/// Requests in flight at once: the log batch.
#[cfg(not(feature = "requests"))]
const PENDING: usize = 1;
/// Channels the client can want at once.
#[cfg(feature = "channels")]
const CHANNELS: usize = 4;
/// No channels: the session's subscription table is empty and stays so.
#[cfg(not(feature = "channels"))]
const CHANNELS: usize = 0;
/// Server requests answered at once (more are answered BUSY by the core).
const ANSWERING: usize = 4;
/// How often queued log records are looked at while nothing else wakes the loop, so a
/// batch that filled up goes out without waiting for its timeout.
const LOG_POLL: Duration = Duration::from_millis(250);
/// A write the server does not take within this long counts as a lost connection.
const WRITE_TIMEOUT: EmbassyDuration = EmbassyDuration::from_secs(10);
/// Time given to the closing handshake before the socket is dropped.
const CLOSE_GRACE: EmbassyDuration = EmbassyDuration::from_secs(1);

type Session = ClientSession<PENDING, CHANNELS, ANSWERING>;

/// The clock the session runs on.
fn now() -> Instant {
    Instant::from_micros(embassy_time::Instant::now().as_micros())
}

fn at(instant: Instant) -> embassy_time::Instant {
    embassy_time::Instant::from_micros(instant.as_micros())
}

/// One of the application's requests on the wire.
#[cfg(feature = "requests")]
#[derive(Debug, Clone, Copy)]
struct Asked {
    id: RequestId,
    slot: usize,
    ticket: u32,
    parts: u32,
}

/// The buffers one connection works in.
struct Buffers<'a> {
    ws_in: &'a mut [u8],
    message: &'a mut [u8],
    frame: &'a mut [u8],
    ws_out: &'a mut [u8],
    batch: &'a mut [u8],
}

/// Everything but the socket and the buffers: what the loop decides with.
struct Client<'a> {
    session: Session,
    shared: &'a Shared,
    logger: Option<&'static Logger>,
    shipping: ShippingLink,
    #[cfg(feature = "requests")]
    asked: Vec<Asked, REQUEST_SLOTS>,
    /// Server requests refused for lack of room in the inbox, answered BUSY on the next
    /// flush.
    refused: Vec<RequestId, 4>,
}

/// Runs the connection; spawn [`Runner::run`] as a task of its own.
pub struct Runner<'a> {
    stack: Stack<'a>,
    url: WsUrl<'a>,
    tcp_rx: &'a mut [u8],
    tcp_tx: &'a mut [u8],
    buffers: Buffers<'a>,
    client: Client<'a>,
    seed: u64,
}

/// Why a connection ended, for the loop.
enum Gone {
    /// The socket failed, ended or stalled.
    Lost,
}

impl<'a> Runner<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        stack: Stack<'a>,
        url: WsUrl<'a>,
        mut config: sentelite_core::ClientConfig,
        logger: Option<&'static Logger>,
        shared: &'a Shared,
        tcp: (&'a mut [u8], &'a mut [u8]),
        ws_in: &'a mut [u8],
        message: &'a mut [u8],
        frame: &'a mut [u8],
        ws_out: &'a mut [u8],
        batch: &'a mut [u8],
    ) -> Self {
        // The largest message this client takes is what its buffer reassembles.
        config.max_frame = config.max_frame.min(message.len() as u32);
        let seed = config.rng_seed ^ u64::from(config.boot_id);
        Self {
            stack,
            url,
            tcp_rx: tcp.0,
            tcp_tx: tcp.1,
            buffers: Buffers {
                ws_in,
                message,
                frame,
                ws_out,
                batch,
            },
            client: Client {
                session: Session::new(config, now()),
                shared,
                logger,
                shipping: ShippingLink::new(),
                #[cfg(feature = "requests")]
                asked: Vec::new(),
                refused: Vec::new(),
            },
            seed,
        }
    }

    /// Connects, serves the connection, reconnects with the core's backoff; forever.
    ///
    /// It borrows the runner rather than taking it: an `async fn` that takes a value keeps
    /// it twice in its future (the argument and its local binding), which for a runner is
    /// 1.3 KB of RAM.
    pub async fn run(&mut self) -> ! {
        loop {
            let t = now();
            self.client.session.handle_timeout(t);
            self.client.drain_events();
            if self.client.session.poll_connect(t) {
                self.connect_and_serve().await;
                continue;
            }
            let wake = self
                .client
                .session
                .poll_timeout()
                .unwrap_or(t + Duration::from_secs(60));
            Timer::at(at(wake)).await;
        }
    }

    /// One connection attempt and, when it opens, the connection's whole life.
    async fn connect_and_serve(&mut self) {
        let (mut framing, mut turn, timeout) = self.attempt();
        let mut socket = TcpSocket::new(self.stack, self.tcp_rx, self.tcp_tx);
        let connected = outlined!(with_timeout(
            timeout,
            open(self.stack, &self.url, &mut socket)
        ));
        if connected == Ok(Ok(())) && turn.request > 0 {
            // A decided close (`Ok`) had its close frame and FIN flushed by `serve`; any
            // other end is a lost connection. Either way the socket goes.
            let _ = outlined!(serve(
                &mut self.client,
                &mut socket,
                &mut framing,
                &mut self.buffers,
                &mut turn,
            ));
        }
        socket.abort();
        self.client.ended(turn.upgrade.is_none());
    }

    /// A new attempt's framing, its upgrade request written into `buffers.ws_out` (none,
    /// `request` 0, when it does not fit), and the time DNS and TCP may take. The request
    /// is written before the connect, so the key lives on only in `Turn`.
    fn attempt(&mut self) -> (Framing, Turn, EmbassyDuration) {
        self.seed = self.seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let key = upgrade::key(crate::rng::nonce(self.seed));
        let turn = Turn {
            upgrade: Some(key),
            request: upgrade::request(&self.url, &key, self.buffers.ws_out).unwrap_or(0),
            ..Turn::default()
        };
        let timeout = self.client.session.config().handshake_timeout;
        (
            Framing::new(self.seed),
            turn,
            EmbassyDuration::from_micros(timeout.as_micros()),
        )
    }
}

impl Client<'_> {
    /// The attempt is over: the connection, when `upgraded`, ended; otherwise DNS, TCP or
    /// the WebSocket upgrade failed. A function of its own rather than code in the task's
    /// state machine.
    #[inline(never)]
    fn ended(&mut self, upgraded: bool) {
        let t = now();
        if upgraded {
            self.session.handle_disconnected(t);
        } else {
            self.session.handle_connect_failed(t);
        }
        self.drain_events();
    }
}

/// DNS and TCP (the caller bounds them with the handshake timeout). The WebSocket upgrade
/// follows in [`serve`], through the same write and read as every frame after it.
async fn open(stack: Stack<'_>, url: &WsUrl<'_>, socket: &mut TcpSocket<'_>) -> Result<(), ()> {
    let addresses = stack
        .dns_query(url.host, DnsQueryType::A)
        .await
        .map_err(drop)?;
    let address = addresses.first().ok_or(())?;
    socket.connect((*address, url.port)).await.map_err(drop)
}

/// What the connection does next, decided without awaiting anything.
enum Next {
    /// Write the frame of `n` bytes in `buffers.ws_out`, then do what [`After`] says.
    Write(usize, After),
    /// Nothing to write: wait for input, a message from the handle or this deadline.
    Wait(Instant),
}

/// What follows a write.
#[derive(Clone, Copy, PartialEq, Eq)]
enum After {
    /// Go on serving.
    Serve,
    /// The client's own close went out: the connection ends, decided.
    Closed,
    /// The answer to the server's close went out: the connection is over.
    Over,
}

/// What a turn of the loop still has to look at.
#[derive(Default)]
struct Turn {
    /// Until the server accepted the WebSocket upgrade: the key it must answer.
    upgrade: Option<upgrade::Key>,
    /// The upgrade request is in `buffers.ws_out`, this many bytes, not yet written.
    request: usize,
    /// The framing holds input not yet taken apart into messages.
    received: bool,
    /// A frame of this many bytes from the handle's message is in `buffers.frame`.
    called: Option<usize>,
    /// The log shipper has had its turn since the loop last waited.
    logs_looked_at: bool,
}

/// Serves one open socket until the session or the socket ends it.
///
/// Every frame goes out through the one write below: each `.await` of a write is a copy
/// of the socket's write machine in the firmware image, so what to write next is decided
/// first ([`Client::next`]), and then written.
async fn serve(
    client: &mut Client<'_>,
    socket: &mut TcpSocket<'_>,
    framing: &mut Framing,
    buffers: &mut Buffers<'_>,
    turn: &mut Turn,
) -> Result<(), Gone> {
    loop {
        let t = now();
        let (n, after) = match client.next(t, framing, buffers, turn)? {
            Next::Write(n, after) => (n, after),
            Next::Wait(deadline) => {
                let open = client.session.is_open();
                // The message from the handle (up to 584 B) is encoded into
                // `buffers.frame` as soon as it arrives, so it does not stay in this
                // future's state.
                // The framing takes every byte it is given, so there is always room: a
                // full buffer would read 0 bytes and end the connection, not stall it.
                let read = socket.read(framing.spare(buffers.ws_in));
                // The handle's message is carried out as it is taken, inside the poll: the
                // message itself never becomes this future's output.
                let call = poll_fn(|cx| {
                    if !open {
                        return Poll::Pending;
                    }
                    let call = ready!(client.shared.outbox.poll_receive(cx));
                    Poll::Ready(client.on_call(now(), call, buffers.frame))
                });
                match select3(read, Timer::at(at(deadline)), call).await {
                    Either3::First(Ok(0) | Err(_)) => return Err(Gone::Lost),
                    Either3::First(Ok(n)) => {
                        framing.filled(n);
                        turn.received = true;
                    }
                    Either3::Second(()) => {}
                    Either3::Third(called) => turn.called = called,
                }
                continue;
            }
        };
        let frame = buffers.ws_out.get(..n).ok_or(Gone::Lost)?;
        let closing = after == After::Closed;
        // The upgrade request, like the Hello after it, has the write timeout; the attempt's
        // handshake deadline is looked at once it is written (`Client::next`).
        let deadline = at(t) + if closing { CLOSE_GRACE } else { WRITE_TIMEOUT };
        let mut written = matches!(
            with_deadline(deadline, socket.write_all(frame)).await,
            Ok(Ok(()))
        );
        if written {
            if closing {
                // The FIN follows the close frame, within the same grace.
                socket.close();
            }
            written = matches!(with_deadline(deadline, socket.flush()).await, Ok(Ok(())));
        }
        match after {
            After::Serve if written => {}
            After::Closed => return Ok(()),
            _ => return Err(Gone::Lost),
        }
    }
}

/// The first `n` bytes of the frame buffer, which the encoder just filled; a length beyond
/// the buffer (a bug) ends the connection rather than panicking.
fn encoded(frame: &[u8], n: usize) -> Result<&[u8], Gone> {
    frame.get(..n).ok_or(Gone::Lost)
}

impl Client<'_> {
    /// The next frame to write, framed into `buffers.ws_out`, in order: the answer to a
    /// ping or close among the messages read (the ones before it are handled first), the
    /// handle's message, the session's own frames, refused requests' ends and a log batch,
    /// then the client's close when the session wants the connection gone.
    #[inline(never)]
    fn next(
        &mut self,
        t: Instant,
        framing: &mut Framing,
        buffers: &mut Buffers<'_>,
        turn: &mut Turn,
    ) -> Result<Next, Gone> {
        // Nothing to write: the loop waits until the session's or the shipper's next
        // deadline, at most `LOG_POLL`; the shipper gets its turn again after it.
        'wait: {
            if let Some(key) = &turn.upgrade {
                if turn.request > 0 {
                    return Ok(Next::Write(
                        core::mem::take(&mut turn.request),
                        After::Serve,
                    ));
                }
                // The core's handshake deadline, from the attempt's start, ends the attempt.
                self.session.handle_timeout(t);
                if self.session.state() != State::Connecting {
                    return Err(Gone::Lost);
                }
                if !core::mem::take(&mut turn.received) {
                    break 'wait;
                }
                match framing.upgraded(key, buffers.ws_in) {
                    upgrade::Answer::Accepted(_) => {
                        turn.upgrade = None;
                        // Frames may have come in the same read as the answer.
                        turn.received = true;
                        self.session.handle_connected(t);
                    }
                    upgrade::Answer::Partial => break 'wait,
                    upgrade::Answer::Refused => return Err(Gone::Lost),
                }
            }
            let (kind, payload, after) = 'found: {
                while turn.received {
                    let (code, reason) = match framing.next_message(buffers.ws_in, buffers.message)
                    {
                        Ok(Some(received)) => {
                            let bytes = received.bytes(buffers.message);
                            match received.kind {
                                Kind::Binary => self.on_message(bytes),
                                Kind::Text => self.session.close(
                                    CloseCode::PROTOCOL_ERROR,
                                    "text message on a binary link",
                                ),
                                Kind::Ping => break 'found (SendKind::Pong, bytes, After::Serve),
                                Kind::Pong => {}
                                Kind::Close => break 'found (SendKind::Close, bytes, After::Over),
                            }
                            continue;
                        }
                        Ok(None) => {
                            turn.received = false;
                            break;
                        }
                        Err(WsError::TooLarge) => {
                            (CloseCode::FRAME_TOO_LARGE, "message larger than max frame")
                        }
                        Err(_) => (CloseCode::PROTOCOL_ERROR, "websocket protocol error"),
                    };
                    turn.received = false;
                    self.session.close(code, reason);
                }
                let ready = match turn.called.take() {
                    Some(n) => Some(n),
                    None => {
                        self.session.handle_timeout(t);
                        self.drain_events();
                        self.next_outgoing(buffers, &mut turn.logs_looked_at)?
                    }
                };
                if let Some(n) = ready {
                    break 'found (SendKind::Binary, encoded(buffers.frame, n)?, After::Serve);
                }
                self.drain_events();
                if !self.session.wants_disconnect() {
                    break 'wait;
                }
                let normal = self
                    .session
                    .local_close()
                    .is_none_or(|(code, _)| code == CloseCode::NORMAL);
                let code: &[u8] = if normal { &[0x03, 0xe8] } else { &[0x03, 0xea] };
                (SendKind::Close, code, After::Closed)
            };
            let n = framing
                .encode(kind, payload, buffers.ws_out)
                .ok_or(Gone::Lost)?;
            return Ok(Next::Write(n, after));
        }
        turn.logs_looked_at = false;
        let deadline = [self.session.poll_timeout(), self.log_timer()]
            .into_iter()
            .flatten()
            .fold(t + LOG_POLL, Instant::min);
        Ok(Next::Wait(deadline))
    }

    /// The next frame to write into `buffers.frame`, in order: the session's own frames,
    /// `BUSY` ends for refused requests, then at most one log batch per flush
    /// (`logs_looked_at` remembers that the shipper had its turn).
    #[inline(never)]
    fn next_outgoing(
        &mut self,
        buffers: &mut Buffers<'_>,
        logs_looked_at: &mut bool,
    ) -> Result<Option<usize>, Gone> {
        match self.session.poll_transmit(buffers.frame) {
            Ok(Some(n)) => return Ok(Some(n)),
            Ok(None) => {}
            // A frame of the session's own that cannot be encoded is a bug in the sizes;
            // the connection cannot go on without it.
            Err(_) => return Err(Gone::Lost),
        }
        while let Some(id) = self.refused.pop() {
            if let Ok(n) = self
                .session
                .end(id, Status::BUSY, Payload::Empty, buffers.frame)
            {
                return Ok(Some(n));
            }
        }
        if core::mem::replace(logs_looked_at, true) {
            return Ok(None);
        }
        Ok(self.ship_logs(now(), buffers.batch, buffers.frame))
    }

    /// When the log shipper next wants a look.
    fn log_timer(&self) -> Option<Instant> {
        self.logger
            .and_then(|l| l.with(|s| s.poll_timeout()).flatten())
    }

    /// Encodes a due log batch as a request frame.
    fn ship_logs(&mut self, t: Instant, batch: &mut [u8], frame: &mut [u8]) -> Option<usize> {
        let logger = self.logger?;
        let (shipping, session) = (&mut self.shipping, &mut self.session);
        logger
            .with(|shipper| shipping.ship(t, session, shipper, batch, frame))
            .flatten()
            .map(|shipped| shipped.frame_len)
    }

    /// Hands the session's events to the application and the shipper.
    #[inline(never)]
    fn drain_events(&mut self) {
        while let Some(event) = self.session.poll_event() {
            let t = now();
            if let Some(logger) = self.logger {
                let shipping = &mut self.shipping;
                logger.with(|s| match event {
                    SessionEvent::Opened { .. } => shipping.opened(s, t),
                    SessionEvent::Closed { .. } => shipping.closed(s),
                    _ => {}
                });
            }
            let message = match event {
                SessionEvent::Opened { connection_id } => {
                    // Request ids start again on every connection: an earlier one's cancel
                    // must not stop a new request with the same id.
                    #[cfg(feature = "blob")]
                    self.shared.cancels.clear();
                    Incoming::Opened { connection_id }
                }
                SessionEvent::Closed { code, .. } => {
                    #[cfg(feature = "requests")]
                    while let Some(asked) = self.asked.pop() {
                        self.answer(asked, None, OwnedPayload::default());
                    }
                    Incoming::Closed { code: code.0 }
                }
                SessionEvent::RequestEnded { id, .. } => {
                    if !self.log_batch_ended(t, id, None) {
                        #[cfg(feature = "requests")]
                        self.end_asked(id, None, OwnedPayload::default());
                    }
                    continue;
                }
                SessionEvent::ReconnectScheduled { .. } => continue,
            };
            self.shared
                .set_open(matches!(message, Incoming::Opened { .. }));
            self.deliver(message);
        }
    }

    fn log_batch_ended(&mut self, t: Instant, id: RequestId, status: Option<Status>) -> bool {
        let Some(logger) = self.logger else {
            return false;
        };
        let shipping = &mut self.shipping;
        logger
            .with(|s| shipping.ended(s, t, id, status))
            .unwrap_or(false)
    }

    /// Queues `message` for the application; a server request that finds no room is
    /// answered BUSY instead.
    fn deliver(&mut self, message: Incoming) {
        if let Err(embassy_sync::channel::TrySendError::Full(message)) =
            self.shared.inbox.try_send(message)
        {
            self.shared.count_dropped();
            if let Incoming::Request { id, .. } = message {
                let _ = self.refused.push(id);
            }
        }
    }

    #[cfg(feature = "requests")]
    fn answer(&mut self, asked: Asked, status: Option<Status>, payload: OwnedPayload) {
        self.shared.put_answer(
            asked.slot,
            Ticketed {
                ticket: asked.ticket,
                answer: Answer {
                    status,
                    payload,
                    parts: asked.parts,
                },
            },
        );
    }

    #[cfg(feature = "requests")]
    fn end_asked(&mut self, id: RequestId, status: Option<Status>, payload: OwnedPayload) {
        if let Some(i) = self.asked.iter().position(|a| a.id == id) {
            let asked = self.asked.swap_remove(i);
            self.answer(asked, status, payload);
        }
    }

    /// A binary WebSocket message: one sentelite frame for the session.
    #[inline(never)]
    fn on_message(&mut self, bytes: &[u8]) {
        let t = now();
        if let Ok(Some(frame)) = self.session.handle_frame(t, bytes) {
            self.on_frame(t, frame);
        }
        self.drain_events();
    }

    /// An application frame from the server.
    fn on_frame(&mut self, t: Instant, frame: Frame<'_>) {
        use sentelite_core::log::{ControlEvent, LogControl, control_event};
        match frame {
            Frame::Event(event) => match control_event(event.event, event.payload) {
                ControlEvent::Control(control) => {
                    if let Some(logger) = self.logger {
                        logger.with(|s| s.apply(control));
                    }
                    if let LogControl::SetFilter(filter) = control {
                        self.deliver(Incoming::LogLevels {
                            levels: filter.levels,
                            enabled: filter.enabled,
                        });
                    }
                }
                ControlEvent::Unknown => {}
                ControlEvent::NotControl => self.hand_over(None, event.event, event.payload),
            },
            Frame::Request(request) => self.hand_over(
                Some((request.id, request.timeout_ms)),
                request.event,
                request.payload,
            ),
            #[cfg(feature = "requests")]
            Frame::Reply(reply) => {
                if let Some(asked) = self.asked.iter_mut().find(|a| a.id == reply.id) {
                    asked.parts = asked.parts.saturating_add(1);
                }
            }
            #[cfg(feature = "requests")]
            Frame::End(end) if !self.log_batch_ended(t, end.id, Some(end.status)) => {
                let payload = OwnedPayload::copy(end.payload).unwrap_or_default();
                self.end_asked(end.id, Some(end.status), payload);
            }
            // Without the application's requests an End can only be a log batch's.
            #[cfg(not(feature = "requests"))]
            Frame::End(end) => {
                self.log_batch_ended(t, end.id, Some(end.status));
            }
            Frame::Cancel(cancel) => {
                #[cfg(feature = "blob")]
                self.shared.put_cancel(cancel.id);
                self.deliver(Incoming::Cancelled { id: cancel.id });
            }
            #[cfg(feature = "channels")]
            Frame::ChannelMsg(msg) => {
                if let (Some(channel), Ok(payload)) =
                    (name(msg.channel), OwnedPayload::copy(msg.payload))
                {
                    self.deliver(Incoming::ChannelMessage { channel, payload });
                }
            }
            _ => {}
        }
    }

    /// A server event (`request` `None`) or request (its id and deadline) for the
    /// application. One too large to hand over is counted as dropped, or, a request,
    /// answered BUSY: the server hears at once rather than at its deadline.
    fn hand_over(&mut self, request: Option<(RequestId, u32)>, event: &str, payload: Payload<'_>) {
        match (name(event), OwnedPayload::copy(payload), request) {
            (Some(event), Ok(payload), None) => self.deliver(Incoming::Message { event, payload }),
            (Some(event), Ok(payload), Some((id, timeout_ms))) => {
                self.deliver(Incoming::Request {
                    id,
                    event,
                    payload,
                    timeout_ms,
                });
            }
            (_, _, None) => self.shared.count_dropped(),
            (_, _, Some((id, _))) => {
                let _ = self.refused.push(id);
            }
        }
    }

    /// Carries out one message from the handle; returns the length of the frame it encoded
    /// into `frame`, to be written now.
    #[inline(never)]
    fn on_call(&mut self, t: Instant, call: Outgoing, frame: &mut [u8]) -> Option<usize> {
        // Only a request of the application's has a deadline to start.
        #[cfg(not(feature = "requests"))]
        let _ = t;
        let session = &mut self.session;
        match call {
            Outgoing::Event { event, payload } => {
                session.send_event(&event, payload.as_payload(), frame).ok()
            }
            #[cfg(feature = "requests")]
            Outgoing::Request {
                slot,
                ticket,
                event,
                payload,
                timeout_ms,
            } => {
                let timeout = Duration::from_millis(u64::from(timeout_ms));
                match session.request(t, &event, payload.as_payload(), Some(timeout), frame) {
                    Ok((id, n)) => {
                        let asked = Asked {
                            id,
                            slot,
                            ticket,
                            parts: 0,
                        };
                        if self.asked.push(asked).is_err() {
                            // Cannot happen: one entry per slot. Answer rather than hang.
                            self.answer(asked, None, OwnedPayload::default());
                        }
                        Some(n)
                    }
                    Err(_) => {
                        let asked = Asked {
                            id: 0,
                            slot,
                            ticket,
                            parts: 0,
                        };
                        self.answer(asked, None, OwnedPayload::default());
                        None
                    }
                }
            }
            Outgoing::Reply { id, seq, payload } => {
                session.reply(id, seq, payload.as_payload(), frame).ok()
            }
            Outgoing::End {
                id,
                status,
                payload,
            } => session.end(id, status, payload.as_payload(), frame).ok(),
            #[cfg(feature = "channels")]
            Outgoing::Subscribe { channel } => {
                // The Subscribe frame comes out of `poll_transmit`.
                let _ = session.subscribe(&channel);
                None
            }
            #[cfg(feature = "channels")]
            Outgoing::Publish { channel, payload } => session
                .publish(&channel, payload.as_payload(), false, frame)
                .ok(),
        }
    }
}
