//! HTTP routes: `/ws` upgrades to the native protocol or a text dialect ([`crate::dialect`]),
//! `/health` answers `ok`. Every route
//! refuses browser origins that the settings do not allow.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use std::collections::HashMap;

use axum::extract::{ConnectInfo, Query, Request, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};

use crate::admission::HandshakeSlot;
use crate::dialect::connection::upgrade::{self, Wanted};
use crate::server::Shared;

pub(crate) fn router(shared: Arc<Shared>, modules: Vec<Router>) -> Router {
    let own = Router::new()
        .route("/ws", get(upgrade))
        .route("/health", get(health))
        .with_state(shared.clone());
    // The origin check goes in front of the modules' routes too (the log API, …).
    modules
        .into_iter()
        .fold(own, Router::merge)
        // Modules' routes that act on connections (pushing a blob directive) find the
        // server here.
        .layer(Extension(crate::ServerHandle {
            shared: shared.clone(),
        }))
        .layer(middleware::from_fn_with_state(shared, check_origin))
}

/// Browsers attach `Origin` to every WebSocket upgrade (and cross-site request); a page on
/// any site could otherwise reach a server on the user's own machine. Devices and tools send
/// no `Origin` and pass; so does an empty one, which no browser sends (an opaque origin is
/// `null`) but a device's WebSocket library does (`embedded-websocket` always writes the
/// header).
async fn check_origin(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    if let Some(origin) = request.headers().get(header::ORIGIN)
        && !origin.is_empty()
        && !shared.settings.allows_origin(origin.as_bytes())
    {
        tracing::debug!(?origin, "refusing a request from an origin not allowed");
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    next.run(request).await
}

async fn health() -> &'static str {
    "ok"
}

async fn upgrade(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    slot: Option<Extension<Arc<HandshakeSlot>>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if shared.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let wanted = match Wanted::from_request(&query, &headers, &shared.settings) {
        Ok(wanted) => wanted,
        Err(reason) => return (StatusCode::BAD_REQUEST, reason).into_response(),
    };
    let Some(permit) = HandshakePermit::acquire(&shared, slot.map(|Extension(slot)| slot)) else {
        tracing::warn!(%remote, "refusing upgrade: too many connections in handshake");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many pending handshakes",
        )
            .into_response();
    };
    let settings = &shared.settings;
    // The WebSocket layer admits up to twice the frame limit so that a moderately oversize
    // frame is read whole and refused by the session with a typed FRAME_TOO_LARGE close: the
    // client then reads that close cleanly. A frame the WebSocket layer refuses mid-read
    // leaves unread bytes behind, and closing a socket with unread bytes resets it, which can
    // destroy the close message in flight.
    let ws_limit = (settings.max_frame_bytes as usize).saturating_mul(2);
    ws.read_buffer_size(settings.read_buffer_bytes)
        .write_buffer_size(settings.write_buffer_bytes)
        .max_message_size(ws_limit)
        .max_frame_size(ws_limit)
        .on_upgrade(move |socket| {
            let tracker = shared.tracker.clone();
            tracker.track_future(upgrade::serve(shared, remote, permit, socket, wanted))
        })
}

/// Counts a connection that has not finished its handshake, globally and against its
/// address's cap (the slot taken at the accept); both released on drop.
pub(crate) struct HandshakePermit {
    shared: Arc<Shared>,
    _address: Option<Arc<HandshakeSlot>>,
}

impl HandshakePermit {
    fn acquire(shared: &Arc<Shared>, address: Option<Arc<HandshakeSlot>>) -> Option<Self> {
        let max = shared.settings.max_handshaking;
        shared
            .handshaking
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        Some(Self {
            shared: shared.clone(),
            _address: address,
        })
    }
}

impl Drop for HandshakePermit {
    fn drop(&mut self) {
        self.shared.handshaking.fetch_sub(1, Ordering::AcqRel);
    }
}
