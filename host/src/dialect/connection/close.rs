//! How a text connection ends: the WebSocket close its client reads, the lifecycle event,
//! and the cleanup of every shared table.

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::SinkExt;
use sentelite_core::{CloseCode, Initiator};

use super::TextConnection;
use crate::lifecycle::LifecycleEvent;
use crate::registry::lock;

/// WebSocket close codes text clients get (they know nothing of the native codes).
pub(super) mod ws {
    /// The server shuts down, or the client went silent.
    pub(in crate::dialect::connection) const GOING_AWAY: u16 = 1001;
    /// A binary message on a text connection.
    pub(in crate::dialect::connection) const UNSUPPORTED_DATA: u16 = 1003;
    /// A text message the dialect cannot read.
    pub(in crate::dialect::connection) const INVALID_PAYLOAD: u16 = 1007;
    /// Missing or wrong token.
    pub(in crate::dialect::connection) const POLICY: u16 = 1008;
    /// A message over `max-frame-bytes`.
    pub(in crate::dialect::connection) const TOO_BIG: u16 = 1009;
    /// The server is at its connection limit.
    pub(in crate::dialect::connection) const TRY_AGAIN_LATER: u16 = 1013;
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
    pub(super) fn native(code: CloseCode, reason: impl Into<String>) -> Self {
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
pub(super) enum Ending {
    Decided,
    PeerClosed,
    Lost(String),
}

impl TextConnection {
    /// Closes the WebSocket, ends what is in flight, and reports the close.
    pub(super) async fn finish(&mut self, socket: &mut WebSocket, ending: Ending) {
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
        self.shared.lifecycle.emit(LifecycleEvent::closed(
            self.id,
            self.entry.as_deref(),
            code,
            reason,
            initiator,
        ));
    }

    /// Removes every trace of the connection from the shared tables. Runs on the normal path
    /// and, through `Drop`, when the task is cancelled or panics.
    pub(super) fn forget(&mut self) {
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
