//! The task of one text-dialect connection (sente-lite, Sente, JSON): it registers the client
//! like a native one, so pub/sub, pushes, handlers and the log pipeline work unchanged, and
//! speaks the dialect through the pure codec in [`crate::dialect`].
//!
//! The loop: write out what the last input produced (everything gathered in one turn goes
//! through one `encode_batch`), then wait for the next message, command or deadline
//! (heartbeat, callbacks, the server's requests).

mod callbacks;
mod close;
mod commands;
mod heartbeat;
mod inbound;
mod open;
mod outbox;
mod requests;
pub(crate) mod uidport;
pub(crate) mod upgrade;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::ws::{Message, WebSocket};
use futures_util::SinkExt;
use sentelite_core::CloseCode;
use tokio::time::Instant;

use callbacks::Callbacks;
pub(crate) use close::TextClose;
use close::{Ending, ws};
use heartbeat::{Beat, Heartbeat};
use outbox::{Item, Outbox};
use requests::ServerRequests;

use super::Dialect;
use crate::ConnectionId;
use crate::connection::{ClientEvents, is_too_large, sleep_until};
use crate::handle::ServerHandle;
use crate::lifecycle::LifecycleEvent;
use crate::queue::{CommandRx, CommandTx, queue};
use crate::registry::{ConnEntry, lock};
use crate::server::Shared;
use crate::transport::HandshakePermit;

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
}
