//! Connection lifecycle notifications: a connection arrived, finished its handshake, or
//! closed (with the close code and reason).
//!
//! They reach the application two ways: hooks registered with
//! [`crate::ServerBuilder::on_lifecycle`] run synchronously on the connection's task, in
//! order; [`crate::ServerHandle::lifecycle`] hands out broadcast receivers, which may lag and
//! skip events when they fall more than [`LIFECYCLE_BUFFER`] behind.

use std::net::SocketAddr;
use std::sync::Arc;

use sentelite_core::{CloseCode, Initiator};
use tokio::sync::broadcast;

use crate::ConnectionId;

/// Events a broadcast receiver may fall behind by before it starts losing them.
pub const LIFECYCLE_BUFFER: usize = 1024;

/// Something that happened to a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifecycleEvent {
    /// The WebSocket upgrade completed; no Hello yet.
    Connected {
        /// The connection.
        connection_id: ConnectionId,
        /// Where it comes from.
        remote: SocketAddr,
    },
    /// The Hello was accepted and the Welcome sent.
    Handshake {
        /// The connection.
        connection_id: ConnectionId,
        /// The uid the server gave it.
        uid: Arc<str>,
        /// The client's stable identity.
        client_id: Arc<str>,
        /// The client's boot id.
        boot_id: u32,
        /// The client's firmware or build id.
        firmware: Option<Arc<str>>,
    },
    /// The connection ended.
    Closed {
        /// The connection.
        connection_id: ConnectionId,
        /// Its uid, if it got as far as the handshake.
        uid: Option<Arc<str>>,
        /// Its client id, if it got as far as the handshake.
        client_id: Option<Arc<str>>,
        /// Why.
        code: CloseCode,
        /// Human-readable detail.
        reason: String,
        /// Who ended it.
        initiator: Initiator,
    },
}

impl LifecycleEvent {
    /// The connection the event is about.
    pub fn connection_id(&self) -> ConnectionId {
        match self {
            LifecycleEvent::Connected { connection_id, .. }
            | LifecycleEvent::Handshake { connection_id, .. }
            | LifecycleEvent::Closed { connection_id, .. } => *connection_id,
        }
    }

    /// The `Closed` event of a connection, with the identity its handshake gave it (none if
    /// it never got that far).
    pub(crate) fn closed(
        connection_id: ConnectionId,
        entry: Option<&crate::registry::ConnEntry>,
        code: CloseCode,
        reason: String,
        initiator: Initiator,
    ) -> Self {
        LifecycleEvent::Closed {
            connection_id,
            uid: entry.map(|e| e.uid.clone()),
            client_id: entry.map(|e| e.client_id.clone()),
            code,
            reason,
            initiator,
        }
    }
}

/// A synchronous lifecycle hook.
pub(crate) type LifecycleHook = Arc<dyn Fn(&LifecycleEvent) + Send + Sync>;

/// Fans lifecycle events out to hooks and broadcast receivers.
pub(crate) struct Lifecycle {
    hooks: Vec<LifecycleHook>,
    tx: broadcast::Sender<LifecycleEvent>,
}

impl Lifecycle {
    pub(crate) fn new(hooks: Vec<LifecycleHook>) -> Self {
        let (tx, _) = broadcast::channel(LIFECYCLE_BUFFER);
        Self { hooks, tx }
    }

    pub(crate) fn emit(&self, event: LifecycleEvent) {
        tracing::debug!(?event, "lifecycle");
        for hook in &self.hooks {
            hook(&event);
        }
        // No receivers is fine: nobody is listening.
        let _ = self.tx.send(event);
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<LifecycleEvent> {
        self.tx.subscribe()
    }
}
