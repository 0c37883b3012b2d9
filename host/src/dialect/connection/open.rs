//! Opening a text connection: the token, registration as a normal `ConnEntry`, the
//! handshake, and Sente's uidport.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use sentelite_core::{CloseCode, Stats};

use super::TextConnection;
use super::close::{TextClose, ws};
use super::outbox::Item;
use crate::connection::{same_secret, unix_millis};
use crate::dialect::Dialect;
use crate::lifecycle::LifecycleEvent;
use crate::registry::{ConnEntry, Refused, lock};

impl TextConnection {
    /// Token, registration, handshake.
    pub(super) fn open(&mut self) {
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
        crate::registry::close_replaced(replaced, self.id);
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
}
