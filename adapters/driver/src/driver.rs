//! The one driver loop shared by every runtime.
//!
//! It follows the core's calling pattern: after every input (a received message, a timer, an
//! application command) it drains `poll_transmit` into the WebSocket and `poll_event` into the
//! application's event queue, then waits on three things at once: the next WebSocket message,
//! the session's `poll_timeout`, and the next command.

use std::collections::{HashMap, HashSet};
use std::future::{Future, pending};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use async_channel::{Receiver, Sender, TrySendError};
use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use async_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use async_tungstenite::tungstenite::{Error as WsError, Message};
use futures_lite::future;
use futures_util::{SinkExt, StreamExt};
use sentelite_core::codec::EncodeError;
use sentelite_core::frame::PayloadBuf;
use sentelite_core::{
    ClientConfig, ClientSession, CloseCode, Frame, Instant, RequestEnd, RequestId, SendError,
    SessionEvent, State, Status,
};

use crate::client::{ClientStats, Shared};
use crate::clock::{Clock, to_std_duration};
use crate::command::{Answer, Command};
use crate::response::{Response, ResponseItem};
use crate::target::Target;
use crate::transport::{self, Security};
use crate::{ClientError, ClientEvent, IncomingRequest, RequestOutcome, Runtime};

/// Requests of ours in flight at once.
const MAX_PENDING: usize = 64;
/// Channels the client can want at once.
const MAX_CHANNELS: usize = 32;
/// WebSocket read buffer: frames are small, and a host may run many clients.
const READ_BUFFER: usize = 4096;
/// First size of the encode buffer; it grows to the largest frame actually sent.
const INITIAL_BUFFER: usize = 4096;
/// How long a closing connection waits for the peer's WebSocket close.
const CLOSE_GRACE: StdDuration = StdDuration::from_secs(1);

type Session = ClientSession<MAX_PENDING, MAX_CHANNELS>;

/// The WebSocket over a plain or TLS stream: one type, so one loop serves `ws://` and `wss://`.
type Ws = WebSocketStream<transport::Stream>;

/// What ended a wait.
enum Wake<T> {
    Io(T),
    Timer,
    Command(Command),
}

/// Whether the transport is still usable after a received message.
enum Flow {
    Continue,
    Gone(String),
}

/// The driver task's state.
pub(crate) struct Driver<R: Runtime> {
    runtime: R,
    clock: Clock,
    target: Target,
    /// Plain or TLS, fixed for the client's life.
    security: Security,
    ws_config: WebSocketConfig,
    session: Session,
    buf: Vec<u8>,
    outbox: Vec<Message>,
    commands: Receiver<Command>,
    /// Handed to responses and incoming requests so they can reach the driver.
    command_tx: Sender<Command>,
    events: Sender<ClientEvent>,
    /// Dropped when the driver exits, which wakes [`crate::Client::close`].
    _done: Sender<()>,
    shared: Arc<Shared>,
    /// Our requests in flight, by id.
    requests: HashMap<RequestId, Sender<ResponseItem>>,
    /// Server requests on the current connection not yet ended by us.
    incoming: HashSet<RequestId>,
    /// Counts connections, so an answer meant for an earlier one is refused.
    generation: u64,
    /// The code of the Close frame sent or received on this connection.
    close_code: Option<CloseCode>,
    /// Why this connection is ending, for the Closed event and the WebSocket close frame.
    close_reason: Option<String>,
    events_dropped: u64,
}

impl<R: Runtime> Driver<R> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        runtime: R,
        target: Target,
        security: Security,
        config: ClientConfig,
        commands: Receiver<Command>,
        command_tx: Sender<Command>,
        events: Sender<ClientEvent>,
        done: Sender<()>,
        shared: Arc<Shared>,
    ) -> Self {
        let clock = Clock::start();
        let max_frame = config.max_frame as usize;
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .max_message_size(Some(max_frame))
            .max_frame_size(Some(max_frame));
        Self {
            runtime,
            clock,
            target,
            security,
            ws_config,
            session: Session::new(config, clock.now()),
            buf: vec![0; INITIAL_BUFFER],
            outbox: Vec::new(),
            commands,
            command_tx,
            events,
            _done: done,
            shared,
            requests: HashMap::new(),
            incoming: HashSet::new(),
            generation: 0,
            close_code: None,
            close_reason: None,
            events_dropped: 0,
        }
    }

    /// Runs until the client is shut down.
    pub(crate) async fn run(mut self) {
        loop {
            let now = self.clock.now();
            self.expire(now);
            self.after_input();
            if self.session.state() == State::Closed {
                break;
            }
            if self.session.poll_connect(now) {
                if let Some(ws) = self.connect().await {
                    self.connected(ws).await;
                }
                continue;
            }
            // No transport: wait for the reconnect timer or a command.
            match self.wait(pending::<()>()).await {
                Wake::Command(command) => self.handle_command(self.clock.now(), command),
                Wake::Io(()) | Wake::Timer => {}
            }
        }
        self.shared.open.store(false, Ordering::Release);
    }

    /// Opens TCP, TLS for `wss://`, and the WebSocket, all bounded by the session's handshake
    /// deadline. Any step failing is one failed connect, retried after the session's backoff.
    async fn connect(&mut self) -> Option<Ws> {
        let runtime = self.runtime.clone();
        let target = self.target.clone();
        let security = self.security.clone();
        let config = self.ws_config;
        let mut attempt = pin!(async move {
            let stream = runtime
                .connect(target.host.clone(), target.port)
                .await
                .map_err(|e| format!("connect {}:{}: {e}", target.host, target.port))?;
            // Only TLS can fail here; its message names the cause (e.g. an untrusted
            // certificate).
            let stream = security
                .wrap(stream)
                .await
                .map_err(|e| format!("tls handshake with {}: {e}", target.host))?;
            let (ws, _) = async_tungstenite::client_async_with_config(
                target.url.as_str(),
                stream,
                Some(config),
            )
            .await
            .map_err(|e| format!("websocket handshake: {e}"))?;
            Ok::<_, String>(ws)
        });
        loop {
            let wake = self.wait(attempt.as_mut()).await;
            let now = self.clock.now();
            match wake {
                Wake::Io(Ok(ws)) => {
                    self.session.handle_connected(now);
                    self.generation += 1;
                    self.incoming.clear();
                    self.close_code = None;
                    self.close_reason = None;
                    return Some(ws);
                }
                Wake::Io(Err(reason)) => {
                    self.emit(ClientEvent::ConnectFailed { reason });
                    self.session.handle_connect_failed(now);
                    self.after_input();
                    return None;
                }
                Wake::Timer => {
                    self.expire(now);
                    if self.session.state() == State::Idle {
                        // The deadline passed mid-attempt (a silent server, a stuck TLS
                        // handshake): as much a failed connect as a refused one.
                        self.emit(ClientEvent::ConnectFailed {
                            reason: "no connection within the handshake timeout".into(),
                        });
                    }
                }
                Wake::Command(command) => self.handle_command(now, command),
            }
            self.after_input();
            if self.session.state() != State::Connecting {
                // Handshake deadline passed or shut down: abandon the attempt.
                return None;
            }
        }
    }

    /// Serves one WebSocket until the session or the transport ends it.
    async fn connected(&mut self, mut ws: Ws) {
        loop {
            self.expire(self.clock.now());
            if let Err(reason) = self.flush(&mut ws).await {
                self.lost(reason);
                return;
            }
            self.after_input();
            if self.session.wants_disconnect() {
                self.close_transport(&mut ws).await;
                self.session.handle_disconnected(self.clock.now());
                self.after_input();
                return;
            }
            let wake = self.wait(ws.next()).await;
            let now = self.clock.now();
            let flow = match wake {
                Wake::Io(Some(Ok(message))) => self.on_message(now, message),
                Wake::Io(Some(Err(error))) => self.on_ws_error(error),
                Wake::Io(None) => Flow::Gone("connection closed".into()),
                Wake::Timer => Flow::Continue,
                Wake::Command(command) => {
                    self.handle_command(now, command);
                    Flow::Continue
                }
            };
            if let Flow::Gone(reason) = flow {
                // Answer a WebSocket close if there was one; bounded, and harmless otherwise.
                self.close_transport(&mut ws).await;
                self.lost(reason);
                return;
            }
            self.after_input();
        }
    }

    /// The transport is gone: tell the session, which ends requests and plans a reconnect.
    fn lost(&mut self, reason: String) {
        if self.close_reason.is_none() {
            self.close_reason = Some(reason);
        }
        self.session.handle_disconnected(self.clock.now());
        self.after_input();
    }

    /// Waits for `io`, the session's next deadline or a command, whichever comes first.
    async fn wait<T>(&self, io: impl Future<Output = T>) -> Wake<T> {
        let deadline = self.session.poll_timeout();
        let timer = async {
            match deadline {
                Some(at) => self.runtime.sleep_until(self.clock.to_std(at)).await,
                None => pending::<()>().await,
            }
            Wake::Timer
        };
        let command = async {
            match self.commands.recv().await {
                Ok(command) => Wake::Command(command),
                // Cannot happen while the driver holds a sender; never wake for it.
                Err(_) => pending().await,
            }
        };
        let io = async { Wake::Io(io.await) };
        // `race` picks the first poll at random, so a flood on one input cannot starve
        // the others; overdue timers are also handled at the top of every loop turn.
        future::race(io, future::race(command, timer)).await
    }

    /// Runs `io` to completion unless the session's next deadline comes first (`None`).
    async fn wait_io_or_timer<T>(&self, io: impl Future<Output = T>) -> Option<T> {
        let deadline = self.session.poll_timeout();
        let timer = async {
            match deadline {
                Some(at) => self.runtime.sleep_until(self.clock.to_std(at)).await,
                None => pending::<()>().await,
            }
            None
        };
        future::or(async { Some(io.await) }, timer).await
    }

    /// Hands the session's timers their turn if one is due.
    fn expire(&mut self, now: Instant) {
        if self.session.poll_timeout().is_some_and(|at| at <= now) {
            self.session.handle_timeout(now);
        }
    }

    /// Writes everything the session and the application queued. Timers keep running while
    /// a write is stuck, so a peer that stops reading is still declared dead.
    async fn flush(&mut self, ws: &mut Ws) -> Result<(), String> {
        loop {
            self.collect_transmit();
            if self.outbox.is_empty() {
                return Ok(());
            }
            let batch = std::mem::take(&mut self.outbox);
            let state_before = self.session.state();
            let mut write = pin!(async {
                for message in batch {
                    ws.feed(message).await?;
                }
                ws.flush().await
            });
            loop {
                match self.wait_io_or_timer(write.as_mut()).await {
                    Some(Ok(())) => break,
                    Some(Err(error)) => return Err(format!("write failed: {error}")),
                    None => {
                        self.expire(self.clock.now());
                        self.after_input();
                        if state_before != State::Closing && self.session.state() == State::Closing
                        {
                            return Err("write stalled until the session gave up".into());
                        }
                    }
                }
            }
        }
    }

    /// Moves the session's own frames (Hello, pings, pongs, subscriptions, Close) to the
    /// outbox.
    fn collect_transmit(&mut self) {
        loop {
            match self.session.poll_transmit(&mut self.buf) {
                Ok(Some(n)) => self.outbox.push(Message::binary(self.buf[..n].to_vec())),
                Ok(None) => break,
                Err(EncodeError::BufferTooSmall { required }) if required > self.buf.len() => {
                    self.buf.resize(required, 0);
                }
                Err(_) => break,
            }
        }
        // A close this side decided names the WebSocket close that follows.
        if let Some((code, reason)) = self.session.local_close() {
            self.close_code.get_or_insert(code);
            if !reason.is_empty() {
                self.note_reason(reason);
            }
        }
    }

    /// Sends our WebSocket close (echoing the protocol close code) and waits briefly for the
    /// peer's.
    async fn close_transport(&mut self, ws: &mut Ws) {
        let code = self.close_code.unwrap_or(CloseCode::NORMAL);
        let reason = CloseCode::websocket_reason(self.close_reason.as_deref().unwrap_or(""));
        let frame = CloseFrame {
            code: WsCloseCode::from(code.websocket_code()),
            reason: reason.to_owned().into(),
        };
        let finish = async {
            if ws.close(Some(frame)).await.is_ok() {
                while let Some(Ok(_)) = ws.next().await {}
            }
        };
        let grace = self.runtime.sleep_until(StdInstant::now() + CLOSE_GRACE);
        future::or(finish, grace).await;
    }

    fn on_message(&mut self, now: Instant, message: Message) -> Flow {
        match message {
            Message::Binary(bytes) => {
                let handled = self.session.handle_frame(now, &bytes);
                // Counters first, so whoever the frame wakes reads them including this frame.
                self.publish_state();
                match handled {
                    Ok(Some(frame)) => self.deliver(frame),
                    Ok(None) => {}
                    Err(error) => self.note_reason(error.reason),
                }
                Flow::Continue
            }
            Message::Text(_) => {
                self.local_close(CloseCode::PROTOCOL_ERROR, "text message on a binary link");
                Flow::Continue
            }
            Message::Close(frame) => {
                let reason = frame.map_or_else(
                    || "websocket closed by peer".to_owned(),
                    |f| {
                        format!(
                            "websocket closed by peer: {} {}",
                            u16::from(f.code),
                            f.reason
                        )
                    },
                );
                Flow::Gone(reason)
            }
            // The WebSocket layer answers pings itself.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Flow::Continue,
        }
    }

    fn on_ws_error(&mut self, error: WsError) -> Flow {
        match error {
            WsError::ConnectionClosed | WsError::AlreadyClosed | WsError::Io(_) => {
                Flow::Gone(error.to_string())
            }
            WsError::Capacity(_) => {
                self.note_reason("message larger than max frame");
                self.local_close(CloseCode::FRAME_TOO_LARGE, "message larger than max frame");
                Flow::Continue
            }
            other => {
                self.close_reason.get_or_insert_with(|| other.to_string());
                self.local_close(CloseCode::PROTOCOL_ERROR, "websocket protocol error");
                Flow::Continue
            }
        }
    }

    fn local_close(&mut self, code: CloseCode, reason: &'static str) {
        self.note_reason(reason);
        self.session.close(code, reason);
    }

    fn note_reason(&mut self, reason: &str) {
        if self.close_reason.is_none() {
            self.close_reason = Some(reason.to_owned());
        }
    }

    /// Turns an application frame from the server into an event or a response item.
    fn deliver(&mut self, frame: Frame<'_>) {
        match frame {
            Frame::Close(close) => {
                self.close_code.get_or_insert(close.code);
                self.note_reason(close.reason);
            }
            Frame::Event(event) => self.emit(ClientEvent::Message {
                event: event.event.to_owned(),
                payload: event.payload.into(),
            }),
            Frame::Request(request) => {
                self.incoming.insert(request.id);
                self.emit(ClientEvent::Request(IncomingRequest::new(
                    request.id,
                    request.event.to_owned(),
                    request.payload.into(),
                    request.timeout_ms,
                    self.generation,
                    self.command_tx.clone(),
                )));
            }
            Frame::Reply(reply) => {
                let delivered = self
                    .requests
                    .get(&reply.id)
                    .map(|parts| parts.try_send(ResponseItem::Part(reply.payload.into())));
                if let Some(Err(_)) = delivered {
                    // The response was dropped: stop the request.
                    self.cancel(reply.id);
                }
            }
            Frame::End(end) => {
                self.finish_request(
                    end.id,
                    RequestOutcome::Completed(end.status, end.payload.into()),
                );
            }
            Frame::Cancel(cancel) => self.emit(ClientEvent::Cancelled { id: cancel.id }),
            Frame::ChannelMsg(msg) => self.emit(ClientEvent::ChannelMessage {
                channel: msg.channel.to_owned(),
                from: msg.from.to_owned(),
                payload: msg.payload.into(),
            }),
            Frame::SubscribeAck(ack) => self.emit(ClientEvent::SubscribeResult {
                channel: ack.channel.to_owned(),
                subscribed: ack.subscribed,
                error: (ack.error != sentelite_core::frame::SubscribeError::NONE)
                    .then_some(ack.error),
            }),
            Frame::PublishDropped(report) => self.emit(ClientEvent::PublishDropped {
                channel: report.channel.to_owned(),
                dropped: report.dropped,
            }),
            // Welcome is reported through SessionEvent::Opened; the core refuses the rest.
            _ => {}
        }
    }

    /// Ends one of our requests: delivers the outcome exactly once, then forgets the id.
    fn finish_request(&mut self, id: RequestId, outcome: RequestOutcome) {
        if let Some(parts) = self.requests.remove(&id) {
            let _ = parts.try_send(ResponseItem::End(outcome));
        }
    }

    fn cancel(&mut self, id: RequestId) {
        if self.requests.contains_key(&id) {
            let _ = self.encode(|s, buf| s.cancel(id, buf).map(|n| ((), n)));
        }
    }

    fn handle_command(&mut self, now: Instant, command: Command) {
        match command {
            Command::Send {
                event,
                payload,
                reply,
            } => {
                let result = self.encode(|s, buf| {
                    s.send_event(&event, payload.as_payload(), buf)
                        .map(|n| ((), n))
                });
                let _ = reply.try_send(result);
            }
            Command::Request {
                event,
                payload,
                timeout,
                reply,
            } => {
                let result = self.encode(|s, buf| {
                    s.request(now, &event, payload.as_payload(), Some(timeout), buf)
                });
                let result = result.map(|id| {
                    let (parts, items) = async_channel::unbounded();
                    self.requests.insert(id, parts);
                    Response::new(id, items, self.command_tx.clone())
                });
                // If the caller gave up waiting, the response is dropped here, which cancels.
                let _ = reply.try_send(result);
            }
            Command::Cancel { id } => self.cancel(id),
            Command::Respond {
                generation,
                id,
                answer,
                reply,
            } => {
                let result = self.respond(generation, id, answer);
                if let Some(reply) = reply {
                    let _ = reply.try_send(result);
                }
            }
            Command::Subscribe { channel, reply } => {
                let result = self.session.subscribe(&channel).map_err(ClientError::from);
                let _ = reply.try_send(result);
            }
            Command::Unsubscribe { channel, reply } => {
                let result = self.encode(|s, buf| s.unsubscribe(&channel, buf).map(|n| ((), n)));
                let _ = reply.try_send(result);
            }
            Command::Publish {
                channel,
                payload,
                exclude_sender,
                reply,
            } => {
                let result = self.encode(|s, buf| {
                    s.publish(&channel, payload.as_payload(), exclude_sender, buf)
                        .map(|n| ((), n))
                });
                let _ = reply.try_send(result);
            }
            Command::Shutdown => self.session.shutdown("client closed"),
        }
    }

    /// Our answer to a server request, if that request is still open on this connection.
    fn respond(
        &mut self,
        generation: u64,
        id: RequestId,
        answer: Answer,
    ) -> Result<(), ClientError> {
        if generation != self.generation || !self.incoming.contains(&id) {
            return Err(ClientError::UnknownRequest);
        }
        match answer {
            Answer::Part { seq, payload } => {
                self.encode(|s, buf| s.reply(id, seq, payload.as_payload(), buf).map(|n| ((), n)))
            }
            Answer::End { status, payload } => {
                let result = self.encode(|s, buf| {
                    s.end(id, status, payload.as_payload(), buf)
                        .map(|n| ((), n))
                });
                if matches!(result, Err(ClientError::TooLarge { .. })) {
                    // The request must still end; the caller hears why its data did not fit.
                    let _ = self.encode(|s, buf| {
                        s.end(id, Status::ERROR, PayloadBuf::Empty.as_payload(), buf)
                            .map(|n| ((), n))
                    });
                }
                self.incoming.remove(&id);
                result
            }
        }
    }

    /// Runs an encoding send call, growing the buffer if the frame needs more room, and
    /// queues the frame it produced.
    fn encode<T>(
        &mut self,
        mut call: impl FnMut(&mut Session, &mut [u8]) -> Result<(T, usize), SendError>,
    ) -> Result<T, ClientError> {
        loop {
            match call(&mut self.session, &mut self.buf) {
                Ok((value, n)) => {
                    if n > 0 {
                        self.outbox.push(Message::binary(self.buf[..n].to_vec()));
                    }
                    return Ok(value);
                }
                Err(SendError::Encode(EncodeError::BufferTooSmall { required }))
                    if required > self.buf.len() =>
                {
                    self.buf.resize(required, 0);
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Drains the session's events into application events and publishes counters.
    fn after_input(&mut self) {
        // State first, so a reader woken by an event sees `is_open` already matching it.
        self.publish_state();
        while let Some(event) = self.session.poll_event() {
            match event {
                SessionEvent::Opened { connection_id } => {
                    let uid = self.session.uid().unwrap_or_default().to_owned();
                    self.emit(ClientEvent::Opened { uid, connection_id });
                }
                SessionEvent::Closed { code, initiator } => {
                    self.incoming.clear();
                    let reason = self.close_reason.take().unwrap_or_default();
                    self.emit(ClientEvent::Closed {
                        code,
                        reason,
                        initiator,
                    });
                }
                SessionEvent::RequestEnded { id, end } => {
                    let outcome = match end {
                        RequestEnd::Completed(status) => {
                            RequestOutcome::Completed(status, PayloadBuf::Empty)
                        }
                        RequestEnd::TimedOut => RequestOutcome::TimedOut,
                        RequestEnd::Cancelled => RequestOutcome::Cancelled,
                        RequestEnd::Closed => RequestOutcome::Closed,
                    };
                    self.finish_request(id, outcome);
                }
                SessionEvent::ReconnectScheduled { attempt, delay } => {
                    self.emit(ClientEvent::ReconnectScheduled {
                        attempt,
                        delay: to_std_duration(delay),
                    });
                }
            }
        }
        self.publish_state();
    }

    fn publish_state(&self) {
        let core = self.session.stats();
        let stats = ClientStats {
            frames_sent: core.frames_sent,
            frames_received: core.frames_received,
            bytes_sent: core.bytes_sent,
            bytes_received: core.bytes_received,
            reconnects: core.reconnects,
            handshakes: core.handshakes,
            rtt: self.session.rtt().map(to_std_duration),
            events_dropped: self.events_dropped,
        };
        *self
            .shared
            .stats
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = stats;
        self.shared
            .open
            .store(self.session.is_open(), Ordering::Release);
    }

    /// Queues an event without ever waiting: a reader that falls behind loses events (and
    /// they are counted) rather than stalling heartbeats for everyone.
    fn emit(&mut self, event: ClientEvent) {
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
}
