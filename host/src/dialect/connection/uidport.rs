//! Sente's user-id ports: `chsk/uidport-open` when a uid's first connection opens,
//! `chsk/uidport-close` when its last one closed and none came back within
//! `uidport-close-grace-ms` (a page reload or a network blip is no close). Both go to the
//! event handlers registered for those ids, with the uid as a text payload.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sentelite_core::frame::PayloadBuf;

use crate::handle::ServerHandle;
use crate::handler::EventContext;
use crate::registry::lock;
use crate::{ConnectionId, translate};

/// Dispatched when a uid's first connection opens.
pub(crate) const OPEN_EVENT: &str = "chsk/uidport-open";
/// Dispatched when a uid's last connection closed and the grace passed.
pub(crate) const CLOSE_EVENT: &str = "chsk/uidport-close";

#[derive(Debug, Default)]
struct Port {
    /// Open connections of the uid.
    open: usize,
    /// Bumped at every last close, so a grace timer knows whether it is still the latest.
    closing: u64,
}

/// Open connections per Sente uid, shared by the server's connections.
#[derive(Debug, Default)]
pub(crate) struct UidPorts {
    ports: Mutex<HashMap<Arc<str>, Port>>,
}

impl UidPorts {
    /// A connection of `uid` opened. A uid seen for the first time, or back after its grace
    /// ran out, is announced.
    pub(crate) fn open(&self, server: &ServerHandle, connection_id: ConnectionId, uid: &Arc<str>) {
        let first = {
            let mut ports = lock(&self.ports);
            let port = ports.entry(uid.clone()).or_default();
            port.open += 1;
            // A port still in the table with no connection is inside its close grace:
            // the uid came back, which cancels the close and is no new open.
            port.open == 1 && port.closing == 0
        };
        if first {
            dispatch(server, OPEN_EVENT, connection_id, uid);
        }
    }

    /// A connection of `uid` closed. After the last one the grace starts; if nothing of the
    /// uid reopened when it ends, the port closes.
    pub(crate) fn close(&self, server: &ServerHandle, connection_id: ConnectionId, uid: &Arc<str>) {
        let generation = {
            let mut ports = lock(&self.ports);
            let Some(port) = ports.get_mut(uid) else {
                return;
            };
            port.open = port.open.saturating_sub(1);
            if port.open > 0 {
                return;
            }
            port.closing += 1;
            port.closing
        };
        let (server, uid) = (server.clone(), uid.clone());
        let grace = server.shared.settings.uidport_close_grace();
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(grace) => {}
                // Nobody reconnects to a server that stops.
                () = server.shared.shutdown.cancelled() => {}
            }
            let closed = {
                let mut ports = lock(&server.shared.uidports.ports);
                let still = ports
                    .get(&uid)
                    .is_some_and(|p| p.open == 0 && p.closing == generation);
                if still {
                    ports.remove(&uid);
                }
                still
            };
            if closed {
                dispatch(&server, CLOSE_EVENT, connection_id, &uid);
            }
        });
    }
}

fn dispatch(server: &ServerHandle, event: &str, connection_id: ConnectionId, uid: &Arc<str>) {
    let Some((name, handler)) = server.shared.handlers.events.get_key_value(event) else {
        return;
    };
    let payload = translate::json_to_cbor(&serde_json::Value::String(uid.to_string()));
    let ctx = EventContext {
        connection_id,
        uid: uid.clone(),
        client_id: uid.clone(),
        boot_id: 0,
        event: name.clone(),
        payload: PayloadBuf::Value(payload),
        server: server.clone(),
    };
    tokio::spawn(handler(ctx));
}
