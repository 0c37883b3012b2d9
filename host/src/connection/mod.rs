//! One connection's task: owns the [`ServerSession`], reads the WebSocket, runs the
//! session's timers, executes commands from its queue, and tells the rest of the server
//! about the handshake and the close.
//!
//! The loop is the sans-IO pattern: after every input, write out what the session produced
//! (application frames first, then the session's own pongs and Close), then sleep until the
//! next input or the session's next deadline.
//!
//! The task's future is allocated once per connection and lives as long as it, so it is kept
//! small: the handlers of single inputs are synchronous, and the close path, which runs once,
//! is boxed.

mod client_events;
mod client_requests;
mod commands;
mod publishing;
mod receive;
mod server_requests;
pub(crate) mod shared_read;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{FutureExt, SinkExt};
use sentelite_core::codec::encode_to_vec;
use sentelite_core::{
    CloseCode, Initiator, SendError, ServerSession, SessionEvent, State, websocket,
};

pub(crate) use client_events::{ClientEvents, count_unhandled};
use client_requests::ClientRequests;
pub(crate) use receive::{same_secret, unix_millis};
use server_requests::ServerRequests;

use crate::ConnectionId;
use crate::handle::ServerHandle;
use crate::lifecycle::LifecycleEvent;
use crate::pubsub::drops::DropReports;
use crate::queue::{CommandRx, CommandTx, queue};
use crate::registry::{ConnEntry, lock};
use crate::server::Shared;
use crate::settings::MAX_PENDING_CAPACITY;
use crate::transport::HandshakePermit;

/// Room for the session's own frames (pongs, Close with a short static reason).
const CONTROL_FRAME_BUF: usize = 256;
/// Application frames up to this size are encoded on the stack, larger ones in a fresh
/// buffer of exactly the needed size.
const SMALL_FRAME_BUF: usize = 512;

/// WebSocket control frames (pings, unsolicited pongs) a connection may send before its
/// Hello. A device has no reason to send any; a peer spending them is closed with
/// `LIMIT_EXCEEDED` long before the handshake timeout.
const WS_CONTROL_BEFORE_HELLO: u8 = 8;

/// Messages handled straight after the one `select!` woke for, when the WebSocket already
/// holds them (see `read_burst`); also the most encoded frames waiting before the loop
/// writes them out.
const READ_BURST: usize = 64;

/// Commands taken from the queue per wake-up before the loop reads its socket again.
const COMMAND_BURST: usize = 64;

/// Server→client requests one connection may have in flight. The request table is part of
/// every idle connection's memory; a full table refuses further requests with a typed error.
pub(crate) const MAX_SERVER_REQUESTS: usize = 8;

/// The session type of one connection. The table of client requests being answered holds up
/// to the largest accepted `max-pending`; the setting decides how much of it is used.
type Session = ServerSession<MAX_SERVER_REQUESTS, MAX_PENDING_CAPACITY>;

/// How the main loop ended.
enum Ending {
    /// The session decided to close (either side's Close frame, a timeout, an error).
    Decided,
    /// The client closed the WebSocket without a native Close frame.
    PeerClosed,
    /// The transport failed.
    Lost(String),
}

pub(crate) struct Connection {
    id: ConnectionId,
    remote: SocketAddr,
    shared: Arc<Shared>,
    session: Session,
    commands_tx: CommandTx,
    commands: CommandRx,
    permit: Option<HandshakePermit>,
    entry: Option<Arc<ConnEntry>>,
    /// Encoded application frames waiting to be written.
    outbox: VecDeque<Bytes>,
    /// Client requests being answered by handlers.
    client_requests: ClientRequests,
    /// Server requests waiting for the client's answer, and their reply items.
    server_requests: ServerRequests,
    /// Client events on their way to handler tasks.
    client_events: ClientEvents,
    /// The native close decided on this connection: code and reason.
    close: Option<(CloseCode, String)>,
    /// The client's WebSocket close frame, if it sent one.
    peer_ws_close: Option<(u16, String)>,
    /// WebSocket control frames received before the Hello was accepted.
    ws_control_before_hello: u8,
    /// Reports of this client's channel messages that did not arrive.
    drop_reports: DropReports,
}

impl Connection {
    pub(crate) fn new(shared: Arc<Shared>, remote: SocketAddr, permit: HandshakePermit) -> Self {
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (commands_tx, commands) = queue(shared.settings.connection_queue);
        let session = Session::new(shared.session_config, shared.clock.now());
        Self {
            id,
            remote,
            shared,
            session,
            commands_tx,
            commands,
            permit: Some(permit),
            entry: None,
            outbox: VecDeque::new(),
            client_requests: ClientRequests::default(),
            server_requests: ServerRequests::default(),
            client_events: ClientEvents::default(),
            close: None,
            peer_ws_close: None,
            ws_control_before_hello: 0,
            drop_reports: DropReports::default(),
        }
    }

    /// Serves the connection until it closes.
    ///
    /// Not an `async fn`: those copy their arguments into the future's body, and the future
    /// would hold the connection and the socket twice. The block below uses them in place.
    ///
    /// `first` is a message read before the connection started (while the dialect was being
    /// detected); it is handled before anything else.
    #[allow(clippy::manual_async_fn)]
    pub(crate) fn run(
        mut self,
        mut socket: WebSocket,
        first: Option<Bytes>,
    ) -> impl Future<Output = ()> + Send {
        async move {
            self.shared.lifecycle.emit(LifecycleEvent::Connected {
                connection_id: self.id,
                remote: self.remote,
            });
            if let Some(bytes) = first {
                self.on_binary(&bytes);
            }
            let ending = self.drive(&mut socket).await;
            Box::pin(self.finish(&mut socket, ending)).await;
        }
    }

    async fn drive(&mut self, socket: &mut WebSocket) -> Ending {
        // The shutdown wait, the timer and the command wait live across turns. Made afresh in
        // every `select!` they cost about half of each frame's time under load (registering
        // and removing a timer, a waiter on two `Notify`s); now a turn only polls them.
        let shutdown = self.shared.shutdown.clone().cancelled_owned();
        tokio::pin!(shutdown);
        let mut shutting_down = false;
        let timer = tokio::time::sleep_until(tokio::time::Instant::now());
        tokio::pin!(timer);
        let mut armed: Option<tokio::time::Instant> = None;
        let commands_ready = self.commands.ready();
        tokio::pin!(commands_ready);
        loop {
            self.drain_session_events();
            if let Err(e) = self.write_out(socket).await {
                return Ending::Lost(e);
            }
            if self.session.wants_disconnect() {
                if let Some((code, reason)) = self.session.local_close() {
                    self.close.get_or_insert_with(|| (code, reason.to_owned()));
                }
                return Ending::Decided;
            }
            self.publish_stats();
            let reading = self.sync_read_pause();
            let deadline = self
                .session
                .poll_timeout()
                .map(|t| self.shared.clock.deadline(t));
            let deadline = publishing::earliest(deadline, self.drop_reports.next_due());
            // The silence deadline moves later with every frame received. Re-arming only when
            // the deadline comes earlier (or the timer has fired) lets an armed timer go off
            // early now and then; the session then finds nothing due and the timer is re-armed.
            if let Some(at) = deadline
                && armed.is_none_or(|armed_at| at < armed_at)
            {
                timer.as_mut().reset(at);
                armed = Some(at);
            }
            tokio::select! {
                () = &mut shutdown, if !shutting_down => {
                    shutting_down = true;
                    self.session.close(CloseCode::GOING_AWAY, "server shutting down");
                }
                msg = socket.recv(), if reading => {
                    if let Some(ending) = self.on_message(socket, msg).await {
                        return ending;
                    }
                    if let Some(ending) = self.read_burst(socket).await {
                        return ending;
                    }
                }
                room = self.server_requests.room(), if self.server_requests.is_stalled() => {
                    self.unstall(room);
                }
                slot = self.client_events.slot(), if self.client_events.is_held() => {
                    self.client_events.run_held(slot);
                }
                () = &mut commands_ready => {
                    // A fresh wait before taking, so a command queued meanwhile wakes us again.
                    commands_ready.set(self.commands.ready());
                    self.take_commands();
                }
                () = &mut timer, if armed.is_some() => {
                    armed = None;
                    let now = self.shared.clock.now();
                    self.session.handle_timeout(now);
                    self.send_due_drop_reports();
                }
            }
        }
    }

    /// Whether the loop reads its socket now, telling the session when that changes.
    fn sync_read_pause(&mut self) -> bool {
        let reading = !self.server_requests.is_stalled() && !self.client_events.is_held();
        if self.session.is_read_paused() == reading {
            // Holding back reading for a full reply stream: the client's frames wait
            // unread, so its silence must not count against it, and it must keep
            // hearing our pings. Only on a change, so the common path costs a compare.
            let now = self.shared.clock.now();
            self.session.set_read_paused(now, !reading);
        }
        reading
    }

    /// Handles the messages the WebSocket can hand over without waiting, up to
    /// [`READ_BURST`], before the loop writes and selects again: a client streaming frames
    /// then costs one turn of the loop per burst instead of per frame. Stops early when the
    /// session wants to close or reading must pause.
    async fn read_burst(&mut self, socket: &mut WebSocket) -> Option<Ending> {
        for _ in 0..READ_BURST {
            // Once a close is decided the loop must write it out before reading on: the
            // next read of a refused stream may well be its end, which would drop the
            // transport without the close.
            if matches!(self.session.state(), State::Closing | State::Closed)
                || self.server_requests.is_stalled()
                || self.client_events.is_held()
                || self.outbox.len() >= READ_BURST
            {
                break;
            }
            // Polled once; a stream's `next` loses nothing when dropped unfinished.
            let msg = socket.recv().now_or_never()?;
            if let Some(ending) = self.on_message(socket, msg).await {
                return Some(ending);
            }
            // The session's own answers (BUSY ends, pongs) wait in a small control queue that
            // a burst would overflow; move them out after every message, as a turn would.
            self.take_session_frames();
        }
        None
    }

    /// Takes up to a queue's worth of commands; if more are left, wakes the loop again so a
    /// busy queue cannot keep the connection from reading.
    fn take_commands(&mut self) {
        for _ in 0..COMMAND_BURST {
            let Some(command) = self.commands.try_recv() else {
                return;
            };
            self.on_command(*command);
        }
        self.commands.wake_again();
    }

    /// One message from the WebSocket; `Some` when it ends the connection.
    async fn on_message(
        &mut self,
        socket: &mut WebSocket,
        msg: Option<Result<Message, axum::Error>>,
    ) -> Option<Ending> {
        match msg {
            Some(Ok(Message::Binary(bytes))) => self.on_binary(&bytes),
            Some(Ok(Message::Text(_))) => self.session.close(
                CloseCode::PROTOCOL_ERROR,
                "text messages are not supported on this endpoint",
            ),
            Some(Ok(Message::Ping(_))) => {
                if let Err(e) = self.on_ws_ping(socket).await {
                    return Some(Ending::Lost(e));
                }
            }
            Some(Ok(Message::Pong(_))) => self.count_ws_control(),
            Some(Ok(Message::Close(frame))) => {
                self.peer_ws_close = frame.map(|f| (f.code, f.reason.as_str().to_owned()));
                return Some(Ending::PeerClosed);
            }
            Some(Err(e)) if is_too_large(&e) => {
                self.session
                    .close(CloseCode::FRAME_TOO_LARGE, "frame too large");
            }
            Some(Err(e)) => return Some(Ending::Lost(e.to_string())),
            None => return Some(Ending::Lost("connection lost".to_owned())),
        }
        None
    }

    /// The WebSocket layer queued a pong for this ping. Sending it before reading on means a
    /// peer that pings without reading stops being read once its socket is full (and is
    /// dropped at the write timeout) instead of making pongs pile up in memory.
    async fn on_ws_ping(&mut self, socket: &mut WebSocket) -> Result<(), String> {
        self.count_ws_control();
        match tokio::time::timeout(self.shared.settings.write_timeout(), socket.flush()).await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err("write timed out".to_owned()),
        }
    }

    /// Closes with `FRAME_TOO_LARGE` once running: the WebSocket layer refused the first
    /// message while the dialect was being detected.
    pub(crate) fn refuse_oversize(&mut self) {
        self.session
            .close(CloseCode::FRAME_TOO_LARGE, "frame too large");
    }

    /// Spends the budget of control frames a connection has before its Hello.
    fn count_ws_control(&mut self) {
        if self.permit.is_none() {
            return;
        }
        self.ws_control_before_hello = self.ws_control_before_hello.saturating_add(1);
        if self.ws_control_before_hello > WS_CONTROL_BEFORE_HELLO {
            self.session.close(
                CloseCode::LIMIT_EXCEEDED,
                "too many WebSocket control frames before hello",
            );
        }
    }

    /// Closes the WebSocket, ends what is in flight, and reports the close.
    async fn finish(&mut self, socket: &mut WebSocket, ending: Ending) {
        let write_timeout = self.shared.settings.write_timeout();
        let mut lost_reason = None;
        match ending {
            Ending::Decided => {
                let (code, reason) = self
                    .close
                    .clone()
                    .unwrap_or((CloseCode::GOING_AWAY, String::new()));
                let (code, reason) = websocket::close_frame(code, &reason);
                let frame = CloseFrame {
                    code,
                    reason: reason.into(),
                };
                let sent =
                    tokio::time::timeout(write_timeout, socket.send(Message::Close(Some(frame))))
                        .await;
                if matches!(sent, Ok(Ok(()))) {
                    // Let the client answer the close so its side ends cleanly.
                    let linger = self.shared.settings.close_linger();
                    let _ = tokio::time::timeout(linger, async {
                        while let Some(Ok(_)) = socket.recv().await {}
                    })
                    .await;
                }
            }
            Ending::PeerClosed => {
                // Sends the automatic close answer queued by the WebSocket layer.
                let _ = tokio::time::timeout(write_timeout, socket.flush()).await;
            }
            Ending::Lost(reason) => lost_reason = Some(reason),
        }
        let now = self.shared.clock.now();
        self.session.handle_disconnected(now);
        let (mut code, mut initiator) = (CloseCode::GOING_AWAY, Initiator::Transport);
        while let Some(event) = self.session.poll_event() {
            match event {
                SessionEvent::Closed {
                    code: c,
                    initiator: i,
                } => (code, initiator) = (c, i),
                SessionEvent::RequestEnded { id, end } => self.request_ended(id, end),
                _ => {}
            }
        }
        self.server_requests.close_all();
        // Requesters still get every part and their end, as long as they keep reading.
        self.server_requests.flush_stalled(write_timeout).await;
        let peer = self.peer_ws_close.as_ref().map(|(c, r)| (*c, r.as_str()));
        let (code, initiator, peer_reason) = websocket::closed_by_websocket(code, initiator, peer);
        let reason = match (peer_reason, initiator) {
            (Some(reason), _) => reason.to_owned(),
            (None, Initiator::Transport) => lost_reason.unwrap_or_default(),
            (None, _) => self.close.take().map(|(_, r)| r).unwrap_or_default(),
        };
        self.forget();
        tracing::debug!(
            connection = self.id,
            code = code.name(),
            ?initiator,
            %reason,
            "connection closed"
        );
        self.shared.lifecycle.emit(LifecycleEvent::closed(
            self.id,
            self.entry.as_deref(),
            code,
            reason,
            initiator,
        ));
    }

    /// Request ends the session decided (deadline, cancel) go to their streams.
    fn drain_session_events(&mut self) {
        while let Some(event) = self.session.poll_event() {
            if let SessionEvent::RequestEnded { id, end } = event {
                self.request_ended(id, end);
            }
        }
    }

    /// Writes queued application frames, then the session's own frames. Bounded by the write
    /// timeout so a client that stops reading cannot hold the task forever.
    async fn write_out(&mut self, socket: &mut WebSocket) -> Result<(), String> {
        self.take_session_frames();
        if self.outbox.is_empty() {
            return Ok(());
        }
        let write_timeout = self.shared.settings.write_timeout();
        match tokio::time::timeout(write_timeout, self.write_frames(socket)).await {
            Ok(result) => result,
            Err(_) => Err("write timed out".to_owned()),
        }
    }

    /// Moves the session's own frames (pongs, Close) behind the application frames.
    fn take_session_frames(&mut self) {
        loop {
            let mut buf = [0u8; CONTROL_FRAME_BUF];
            match self.session.poll_transmit(&mut buf) {
                Ok(Some(n)) => self.outbox.push_back(Bytes::copy_from_slice(&buf[..n])),
                Ok(None) => break,
                Err(e) => {
                    // Only a Close with an overlong reason could get here; drop the transport.
                    tracing::error!(connection = self.id, error = %e, "session frame not encoded");
                    self.close
                        .get_or_insert((CloseCode::INTERNAL_ERROR, String::new()));
                    break;
                }
            }
        }
    }

    async fn write_frames(&mut self, socket: &mut WebSocket) -> Result<(), String> {
        while let Some(bytes) = self.outbox.pop_front() {
            socket
                .feed(Message::Binary(bytes))
                .await
                .map_err(|e| e.to_string())?;
        }
        socket.flush().await.map_err(|e| e.to_string())
    }

    /// Runs a session send call and queues the frame it encoded. Small frames are encoded on
    /// the stack; a frame that does not fit is encoded again into a buffer of its exact size.
    fn encode<T>(
        &mut self,
        mut op: impl FnMut(&mut Session, &mut [u8]) -> Result<(T, usize), SendError>,
    ) -> Result<T, SendError> {
        let mut small = [0u8; SMALL_FRAME_BUF];
        let session = &mut self.session;
        let (value, frame) = encode_to_vec(&mut small, |buf| op(session, buf))?;
        self.outbox.push_back(Bytes::from(frame));
        Ok(value)
    }

    fn encode_or_log<T>(
        &mut self,
        what: &str,
        op: impl FnMut(&mut Session, &mut [u8]) -> Result<(T, usize), SendError>,
    ) {
        if let Err(e) = self.encode(op) {
            tracing::debug!(connection = self.id, error = %e, "{what} not sent");
        }
    }

    fn publish_stats(&self) {
        if let Some(entry) = &self.entry {
            *lock(&entry.stats) = self.session.stats();
        }
    }

    fn handle(&self) -> ServerHandle {
        ServerHandle {
            shared: self.shared.clone(),
        }
    }

    /// Removes every trace of the connection from the shared tables. Runs on the normal path
    /// and, through `Drop`, when the task is cancelled or panics.
    fn forget(&mut self) {
        self.client_requests.cancel_all();
        lock(&self.shared.registry).remove(self.id);
        lock(&self.shared.channels).remove_connection(self.id);
        self.permit = None;
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.forget();
    }
}

/// Sleeps until `deadline`, or forever without one (the text connection's timer).
pub(crate) async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// True when the WebSocket layer refused a message for exceeding the size limits.
pub(crate) fn is_too_large(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(e) = source {
        if let Some(ws) = e.downcast_ref::<tungstenite::Error>() {
            return matches!(ws, tungstenite::Error::Capacity(_));
        }
        source = e.source();
    }
    false
}
