//! Which dialect a `/ws` connection speaks: `?dialect=` wins; a `client-id` query means
//! Sente; otherwise the first message within `dialect-detect-ms` decides (binary: native,
//! text: its shape), and silence means a sente-lite client waiting for the server's
//! handshake.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket};
use axum::http::{HeaderMap, header};
use futures_util::SinkExt;

use super::{TextClient, TextClose, TextConnection};
use crate::connection::{Connection, is_too_large};
use crate::dialect::{Dialect, detect};
use crate::server::Shared;
use crate::settings::ServerSettings;
use crate::transport::HandshakePermit;

/// What the upgrade request asked for.
#[derive(Debug)]
pub(crate) struct Wanted {
    /// `None`: detect from the first message.
    speaks: Option<Speaks>,
    client: TextClient,
}

#[derive(Debug, Clone, Copy)]
enum Speaks {
    Native,
    Text(Dialect),
}

impl Wanted {
    /// Reads `?dialect=`, `client-id`, `?token=` and `Authorization: Bearer`. An unknown
    /// dialect, a blank or overlong client id is refused (HTTP 400) with the reason.
    pub(crate) fn from_request(
        query: &HashMap<String, String>,
        headers: &HeaderMap,
        settings: &ServerSettings,
    ) -> Result<Self, String> {
        let client_id = match query.get("client-id") {
            Some(id) if id.trim().is_empty() => return Err("blank client-id".to_owned()),
            Some(id) if id.len() > settings.max_client_id_bytes => {
                return Err("client-id longer than max-client-id-bytes".to_owned());
            }
            other => other.cloned(),
        };
        let speaks = match query.get("dialect").map(String::as_str) {
            Some("native") => Some(Speaks::Native),
            Some(name) => match Dialect::from_query(name) {
                Some(dialect) => Some(Speaks::Text(dialect)),
                None => return Err(format!("unknown dialect {name:?}")),
            },
            None if client_id.is_some() => Some(Speaks::Text(Dialect::Sente)),
            None => None,
        };
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_owned());
        let token = query.get("token").cloned().or(bearer);
        Ok(Self {
            speaks,
            client: TextClient { client_id, token },
        })
    }
}

/// What arrived in the detection window.
enum First {
    Binary(Bytes),
    Text(String),
    Nothing,
    /// A first message over the WebSocket layer's limit.
    TooLarge,
    /// The client left, failed, or began with a control frame: the native connection takes
    /// it, and ends it (or serves it) the way it does any connection before its Hello,
    /// lifecycle events included.
    Gone,
}

/// Serves an upgraded `/ws` connection in the dialect it speaks.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    remote: SocketAddr,
    permit: HandshakePermit,
    mut socket: WebSocket,
    wanted: Wanted,
) {
    let Wanted { speaks, client } = wanted;
    let (dialect, first, refuse) = match speaks {
        Some(Speaks::Native) => return spawn_native(shared, remote, permit, socket, None, false),
        Some(Speaks::Text(dialect)) => (dialect, None, None),
        None => match first_message(&mut socket, &shared.settings).await {
            First::Binary(bytes) => {
                return spawn_native(shared, remote, permit, socket, Some(bytes), false);
            }
            First::TooLarge => return spawn_native(shared, remote, permit, socket, None, true),
            First::Gone => return spawn_native(shared, remote, permit, socket, None, false),
            First::Text(text) => match detect(&text) {
                Some(dialect) => (dialect, Some(text), None),
                None => (Dialect::SenteLite, None, Some(TextClose::undetected())),
            },
            First::Nothing => (Dialect::SenteLite, None, None),
        },
    };
    let tracker = shared.tracker.clone();
    let connection = TextConnection::new(shared, remote, permit, dialect, client);
    tokio::spawn(tracker.track_future(connection.run(socket, first, refuse)));
}

/// Runs a native connection as a task of its own. Awaited in place, its future would live
/// inside this one, which also holds the socket it moved out and the detection's timer: an
/// idle native connection cost about 2.2 KB more that way (`sentelite-bench idle`: 11.7 KB
/// against 9.5 KB each at 19,000 connections). As its own task it holds only its own state,
/// and this task ends at once.
fn spawn_native(
    shared: Arc<Shared>,
    remote: SocketAddr,
    permit: HandshakePermit,
    socket: WebSocket,
    first: Option<Bytes>,
    oversize: bool,
) {
    let tracker = shared.tracker.clone();
    let mut connection = Connection::new(shared, remote, permit);
    if oversize {
        connection.refuse_oversize();
    }
    tokio::spawn(tracker.track_future(connection.run(socket, first)));
}

/// Waits up to `dialect-detect-ms` for the first data message. A WebSocket ping or pong first
/// is no text client's way (browsers never send one): the native connection takes over and
/// applies its budget of control frames before the Hello.
async fn first_message(socket: &mut WebSocket, settings: &ServerSettings) -> First {
    match tokio::time::timeout(settings.dialect_detect(), socket.recv()).await {
        Err(_) => First::Nothing,
        Ok(Some(Ok(Message::Binary(bytes)))) => First::Binary(bytes),
        Ok(Some(Ok(Message::Text(text)))) => First::Text(text.as_str().to_owned()),
        Ok(Some(Ok(Message::Ping(_)))) => {
            // The pong tungstenite queued goes out now, as the native task does.
            let _ = tokio::time::timeout(settings.write_timeout(), socket.flush()).await;
            First::Gone
        }
        Ok(Some(Err(e))) if is_too_large(&e) => First::TooLarge,
        Ok(_) => First::Gone,
    }
}
