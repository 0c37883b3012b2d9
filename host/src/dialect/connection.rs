//! The task of one text-dialect connection (sente-lite, Sente, JSON): it registers the client
//! like a native one, so pub/sub, pushes, handlers and the log pipeline work unchanged, and
//! speaks the dialect through the pure codec in [`crate::dialect`].
//!
//! The loop: write out what the last input produced (everything gathered in one turn goes
//! through one `encode_batch`), then wait for the next message, command or deadline
//! (heartbeat, callbacks, the server's requests).

mod callbacks;
mod heartbeat;
mod inbound;
mod outbox;
mod requests;
pub(crate) mod uidport;
pub(crate) mod upgrade;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::SinkExt;
use sentelite_core::{CloseCode, Initiator, Stats};
use tokio::time::Instant;

use callbacks::Callbacks;
use heartbeat::{Beat, Heartbeat};
use outbox::{Item, Outbox};
use requests::ServerRequests;

use super::Dialect;
use crate::ConnectionId;
use crate::command::{Command, OutboundRequest};
use crate::connection::{ClientEvents, is_too_large, same_secret, sleep_until, unix_millis};
use crate::error::DeliveryError;
use crate::handle::ServerHandle;
use crate::lifecycle::LifecycleEvent;
use crate::queue::{CommandRx, CommandTx, queue};
use crate::registry::{ConnEntry, Refused, lock};
use crate::request::RequestOutcome;
use crate::server::Shared;
use crate::transport::HandshakePermit;

/// WebSocket close codes text clients get (they know nothing of the native codes).
mod ws {
    /// The server shuts down, or the client went silent.
    pub(super) const GOING_AWAY: u16 = 1001;
    /// A binary message on a text connection.
    pub(super) const UNSUPPORTED_DATA: u16 = 1003;
    /// A text message the dialect cannot read.
    pub(super) const INVALID_PAYLOAD: u16 = 1007;
    /// Missing or wrong token.
    pub(super) const POLICY: u16 = 1008;
    /// A message over `max-frame-bytes`.
    pub(super) const TOO_BIG: u16 = 1009;
    /// The server is at its connection limit.
    pub(super) const TRY_AGAIN_LATER: u16 = 1013;
}

/// How a text connection is closed: the WebSocket code and reason its client reads, and the
/// native code the lifecycle reports.
#[derive(Debug, Clone)]
pub(crate) struct TextClose {
    ws_code: u16,
    code: CloseCode,
    reason: String,
}

impl TextClose {
    pub(crate) fn new(ws_code: u16, code: CloseCode, reason: impl Into<String>) -> Self {
        Self {
            ws_code,
            code,
            reason: reason.into(),
        }
    }

    /// A native close (`Command::Close`, shutdown) in its usual WebSocket form.
    fn native(code: CloseCode, reason: impl Into<String>) -> Self {
        Self::new(code.websocket_code(), code, reason)
    }

    /// A first text message that speaks no dialect.
    pub(crate) fn undetected() -> Self {
        Self::new(
            ws::INVALID_PAYLOAD,
            CloseCode::PROTOCOL_ERROR,
            "first message speaks no known dialect",
        )
    }
}

/// How the loop ended.
enum Ending {
    Decided,
    PeerClosed,
    Lost(String),
}

/// What the upgrade learned about a text client.
#[derive(Debug, Clone, Default)]
pub(crate) struct TextClient {
    /// Sente's `client-id` query parameter.
    pub(crate) client_id: Option<String>,
    /// `?token=` or `Authorization: Bearer`.
    pub(crate) token: Option<String>,
}

pub(crate) struct TextConnection {
    id: ConnectionId,
    remote: SocketAddr,
    shared: Arc<Shared>,
    dialect: Dialect,
    client: TextClient,
    commands_tx: CommandTx,
    commands: CommandRx,
    permit: Option<HandshakePermit>,
    entry: Option<Arc<ConnEntry>>,
    outbox: Outbox,
    heartbeat: Heartbeat,
    callbacks: Callbacks,
    server_requests: ServerRequests,
    client_events: ClientEvents,
    close: Option<TextClose>,
    peer_close: Option<(u16, String)>,
    /// The Sente uid whose port this connection holds open.
    uidport: Option<Arc<str>>,
    /// Messages received, for the connection's stats.
    received: u64,
}

impl TextConnection {
    pub(crate) fn new(
        shared: Arc<Shared>,
        remote: SocketAddr,
        permit: HandshakePermit,
        dialect: Dialect,
        client: TextClient,
    ) -> Self {
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (commands_tx, commands) = queue(shared.settings.connection_queue);
        let heartbeat = Heartbeat::new(
            Instant::now(),
            shared.settings.heartbeat_interval(),
            shared.settings.heartbeat_timeout(),
        );
        Self {
            id,
            remote,
            shared,
            dialect,
            client,
            commands_tx,
            commands,
            permit: Some(permit),
            entry: None,
            outbox: Outbox::default(),
            heartbeat,
            callbacks: Callbacks::default(),
            server_requests: ServerRequests::default(),
            client_events: ClientEvents::default(),
            close: None,
            peer_close: None,
            uidport: None,
            received: 0,
        }
    }

    /// Serves the connection until it closes. `first` is the message detection read, `refuse`
    /// a close decided before the connection started.
    pub(crate) async fn run(
        mut self,
        mut socket: WebSocket,
        first: Option<String>,
        refuse: Option<TextClose>,
    ) {
        self.shared.lifecycle.emit(LifecycleEvent::Connected {
            connection_id: self.id,
            remote: self.remote,
        });
        self.close = refuse;
        if self.close.is_none() {
            self.open();
        }
        if let (None, Some(text)) = (&self.close, first) {
            self.on_text(&text);
            self.gather_commands();
        }
        let ending = self.drive(&mut socket).await;
        self.finish(&mut socket, ending).await;
    }

    /// Token, registration, handshake.
    fn open(&mut self) {
        let settings = &self.shared.settings;
        if let Some(expected) = settings.token.as_deref()
            && !self
                .client
                .token
                .as_deref()
                .is_some_and(|t| same_secret(t, expected))
        {
            self.close = Some(TextClose::new(
                ws::POLICY,
                CloseCode::AUTH_FAILED,
                "missing or wrong token",
            ));
            return;
        }
        // Sente's uid is its client id; the other dialects get a server-assigned one.
        let uid: Arc<str> = match (self.dialect, &self.client.client_id) {
            (Dialect::Sente, Some(client_id)) => client_id.as_str().into(),
            _ => format!("conn-{}-{}", unix_millis(), self.id).into(),
        };
        let client_id: Arc<str> = self
            .client
            .client_id
            .as_deref()
            .map_or_else(|| uid.clone(), Arc::from);
        let entry = Arc::new(ConnEntry {
            id: self.id,
            uid: uid.clone(),
            client_id,
            boot_id: 0,
            firmware: None,
            capabilities: 0,
            remote: self.remote,
            connected_since: SystemTime::now(),
            peer_max_frame: settings.max_frame_bytes as usize,
            commands: self.commands_tx.clone(),
            stats: Mutex::new(Stats::default()),
            events_unhandled: AtomicU64::new(0),
            channel_drops: Default::default(),
        });
        let registered = lock(&self.shared.registry).try_insert(
            entry.clone(),
            settings.max_connections,
            settings.duplicate_client_id,
        );
        let replaced = match registered {
            Ok(replaced) => replaced,
            Err(Refused::Full) => {
                self.close = Some(TextClose::new(
                    ws::TRY_AGAIN_LATER,
                    CloseCode::TOO_MANY_CONNECTIONS,
                    "server is at its connection limit",
                ));
                return;
            }
            Err(Refused::Duplicate) => {
                self.close = Some(TextClose::native(
                    CloseCode::DUPLICATE_CLIENT,
                    "client id already connected",
                ));
                return;
            }
        };
        for old in replaced {
            tracing::info!(
                connection = old.id,
                by = self.id,
                client_id = %old.client_id,
                "connection replaced by a newer one of its client"
            );
            let _ = old.commands.send_urgent(Box::new(Command::Close {
                code: CloseCode::REPLACED,
                reason: "replaced by a newer connection of this client",
            }));
        }
        self.outbox.push(Item::Handshake { uid: uid.clone() });
        self.permit = None;
        self.shared.lifecycle.emit(LifecycleEvent::Handshake {
            connection_id: self.id,
            uid: uid.clone(),
            client_id: entry.client_id.clone(),
            boot_id: 0,
            firmware: None,
        });
        self.entry = Some(entry);
        if self.dialect == Dialect::Sente {
            self.shared.uidports.open(&self.handle(), self.id, &uid);
            self.uidport = Some(uid);
        }
    }

    async fn drive(&mut self, socket: &mut WebSocket) -> Ending {
        loop {
            if let Err(e) = self.write_out(socket).await {
                return Ending::Lost(e);
            }
            if self.close.is_some() {
                return Ending::Decided;
            }
            let reading = !self.client_events.is_held();
            let deadline = [
                Some(self.heartbeat.deadline()),
                self.callbacks.next_deadline(),
                self.server_requests.next_deadline(),
            ]
            .into_iter()
            .flatten()
            .min();
            tokio::select! {
                () = self.shared.shutdown.cancelled() => {
                    self.close = Some(TextClose::native(CloseCode::GOING_AWAY, "server shutting down"));
                }
                msg = socket.recv(), if reading => {
                    if let Some(ending) = self.on_message(socket, msg).await {
                        return ending;
                    }
                }
                slot = self.client_events.slot(), if !reading => {
                    self.client_events.run_held(slot);
                    // The client was not read meanwhile; its silence does not count.
                    self.heartbeat.heard(Instant::now());
                }
                command = self.commands.recv() => self.on_command(*command),
                () = sleep_until(deadline) => self.on_deadline(reading),
            }
            self.gather_commands();
        }
    }

    /// One WebSocket message; `Some` when the connection is over.
    async fn on_message(
        &mut self,
        socket: &mut WebSocket,
        msg: Option<Result<Message, axum::Error>>,
    ) -> Option<Ending> {
        let msg = match msg {
            Some(Ok(msg)) => msg,
            Some(Err(e)) if is_too_large(&e) => {
                self.close = Some(self.too_big());
                return None;
            }
            Some(Err(e)) => return Some(Ending::Lost(e.to_string())),
            None => return Some(Ending::Lost("connection lost".to_owned())),
        };
        self.heartbeat.heard(Instant::now());
        self.received += 1;
        match msg {
            Message::Text(text) => self.on_text(text.as_str()),
            Message::Binary(_) => {
                self.close = Some(TextClose::new(
                    ws::UNSUPPORTED_DATA,
                    CloseCode::PROTOCOL_ERROR,
                    "binary message on a text connection",
                ));
            }
            // The WebSocket layer queued the pong; sending it before reading on keeps a
            // peer that pings without reading from piling pongs up in memory.
            Message::Ping(_) => {
                let timeout = self.shared.settings.write_timeout();
                match tokio::time::timeout(timeout, socket.flush()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Some(Ending::Lost(e.to_string())),
                    Err(_) => return Some(Ending::Lost("write timed out".to_owned())),
                }
            }
            Message::Pong(_) => {}
            Message::Close(frame) => {
                self.peer_close = frame.map(|f| (f.code, f.reason.as_str().to_owned()));
                return Some(Ending::PeerClosed);
            }
        }
        None
    }

    fn too_big(&self) -> TextClose {
        TextClose::new(
            ws::TOO_BIG,
            CloseCode::FRAME_TOO_LARGE,
            "message larger than max-frame-bytes",
        )
    }

    /// One text message from the client.
    fn on_text(&mut self, text: &str) {
        if text.len() > self.shared.settings.max_frame_bytes as usize {
            self.close = Some(self.too_big());
            return;
        }
        match super::decode(self.dialect, text) {
            Ok(inbound) => self.on_inbound(inbound),
            Err(e) => {
                tracing::debug!(connection = self.id, error = %e, "malformed text message");
                self.close = Some(TextClose::new(
                    ws::INVALID_PAYLOAD,
                    CloseCode::PROTOCOL_ERROR,
                    e.to_string(),
                ));
            }
        }
    }

    /// Takes what else is queued, so it goes out in the same batch (Sente packs pushes).
    fn gather_commands(&mut self) {
        for _ in 0..self.shared.settings.connection_queue {
            if self.close.is_some() {
                return;
            }
            match self.commands.try_recv() {
                Some(command) => self.on_command(*command),
                None => return,
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Event { event, payload } => self.outbox.push(Item::Event {
                event,
                data: payload,
            }),
            Command::ChannelMsg {
                channel,
                from,
                payload,
            } => self.outbox.push(Item::ChannelMsg {
                channel,
                from,
                data: payload,
            }),
            Command::Reply { id, payload, .. } => self.callbacks.part(id, payload),
            Command::End {
                id,
                status,
                payload,
            } => {
                if let Some((cb, answer)) = self.callbacks.end(id, status, payload) {
                    self.outbox.push(match answer {
                        Ok(data) => Item::Reply { cb, data },
                        Err(error) => Item::CallbackError { cb, error },
                    });
                }
            }
            Command::Request(request) => self.start_request(request),
            Command::Cancel { id } => self.server_requests.end(id, RequestOutcome::Cancelled),
            Command::Close { code, reason } => self.close = Some(TextClose::native(code, reason)),
        }
    }

    /// A server request goes out as an event; see [`requests`].
    fn start_request(&mut self, request: OutboundRequest) {
        let OutboundRequest {
            event,
            payload,
            timeout,
            started,
            replies,
        } = request;
        let deadline = timeout.map(|t| Instant::now() + t);
        let Some(id) = self.server_requests.open(replies, deadline) else {
            let _ = started.send(Err(DeliveryError::Refused {
                connection_id: self.id,
                reason: "too many requests in flight".to_owned(),
            }));
            return;
        };
        if started.send(Ok(id)).is_err() {
            // The requester gave up waiting for the id.
            self.server_requests.end(id, RequestOutcome::Cancelled);
            return;
        }
        self.outbox.push(Item::Event {
            event: event.into(),
            data: Arc::new(payload),
        });
    }

    fn on_deadline(&mut self, reading: bool) {
        let now = Instant::now();
        if !reading {
            self.heartbeat.heard(now);
        }
        match self.heartbeat.tick(now) {
            Beat::Silent => {
                let reason = format!(
                    "heartbeat timeout: nothing received for {} ms",
                    self.heartbeat.timeout().as_millis()
                );
                self.close = Some(TextClose::new(
                    ws::GOING_AWAY,
                    CloseCode::HEARTBEAT_TIMEOUT,
                    reason,
                ));
                return;
            }
            Beat::Ping => self.outbox.push(Item::Ping),
            Beat::Idle => {}
        }
        for cb in self.callbacks.expired(now) {
            self.outbox.push(Item::CallbackError {
                cb,
                error: super::CallbackError::Timeout,
            });
        }
        self.server_requests.expire(now);
    }

    /// Encodes what was gathered and writes it, bounded by the write timeout.
    async fn write_out(&mut self, socket: &mut WebSocket) -> Result<(), String> {
        if self.outbox.is_empty() {
            return Ok(());
        }
        let uid = self
            .entry
            .as_ref()
            .map(|e| e.uid.clone())
            .unwrap_or_default();
        let options = super::EncodeOptions {
            wrap_recv: self.shared.settings.sente_lite_wrap_recv,
        };
        let frames = self.outbox.take_frames(self.dialect, options, &uid);
        self.publish_stats(frames.len());
        let write = async {
            for frame in frames {
                socket
                    .feed(Message::Text(frame.into()))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            socket.flush().await.map_err(|e| e.to_string())
        };
        match tokio::time::timeout(self.shared.settings.write_timeout(), write).await {
            Ok(result) => result,
            Err(_) => Err("write timed out".to_owned()),
        }
    }

    fn publish_stats(&self, sent: usize) {
        if let Some(entry) = &self.entry {
            let mut stats = lock(&entry.stats);
            stats.handshakes = 1;
            stats.frames_received = self.received;
            stats.frames_sent += sent as u64;
        }
    }

    fn handle(&self) -> ServerHandle {
        ServerHandle {
            shared: self.shared.clone(),
        }
    }

    /// Closes the WebSocket, ends what is in flight, and reports the close.
    async fn finish(&mut self, socket: &mut WebSocket, ending: Ending) {
        let write_timeout = self.shared.settings.write_timeout();
        let (code, initiator, reason) = match ending {
            Ending::Decided => {
                let close = self
                    .close
                    .take()
                    .unwrap_or_else(|| TextClose::native(CloseCode::GOING_AWAY, ""));
                let frame = CloseFrame {
                    code: close.ws_code,
                    reason: CloseCode::websocket_reason(&close.reason).into(),
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
                (close.code, Initiator::Local, close.reason)
            }
            Ending::PeerClosed => {
                // Sends the automatic close answer queued by the WebSocket layer.
                let _ = tokio::time::timeout(write_timeout, socket.flush()).await;
                let (ws_code, why) = self.peer_close.take().unwrap_or((1005, String::new()));
                (
                    CloseCode::from_websocket_code(ws_code),
                    Initiator::Peer,
                    why,
                )
            }
            Ending::Lost(why) => (CloseCode::GOING_AWAY, Initiator::Transport, why),
        };
        self.forget();
        tracing::debug!(
            connection = self.id,
            dialect = ?self.dialect,
            code = code.name(),
            ?initiator,
            %reason,
            "connection closed"
        );
        self.shared.lifecycle.emit(LifecycleEvent::Closed {
            connection_id: self.id,
            uid: self.entry.as_ref().map(|e| e.uid.clone()),
            client_id: self.entry.as_ref().map(|e| e.client_id.clone()),
            code,
            reason,
            initiator,
        });
    }

    /// Removes every trace of the connection from the shared tables. Runs on the normal path
    /// and, through `Drop`, when the task is cancelled or panics.
    fn forget(&mut self) {
        self.callbacks.cancel_all();
        self.server_requests.close_all();
        lock(&self.shared.registry).remove(self.id);
        lock(&self.shared.channels).remove_connection(self.id);
        self.permit = None;
        if let Some(uid) = self.uidport.take() {
            self.shared.uidports.close(&self.handle(), self.id, &uid);
        }
    }
}

impl Drop for TextConnection {
    fn drop(&mut self) {
        self.forget();
    }
}
