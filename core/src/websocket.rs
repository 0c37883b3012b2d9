//! How a native close travels in a WebSocket close frame, both ways, for every adapter that
//! runs the protocol over WebSocket (the host server, the client driver).
//!
//! Sending: the close code maps to 1000/1001/4000+code ([`CloseCode::websocket_code`]) and the
//! reason is cut to what a close frame holds. Receiving: the session only knows native Close
//! frames, so a peer that closed the WebSocket without one (or a proxy that did) would read as
//! a lost transport; its WebSocket close frame still says who and why, and
//! [`closed_by_websocket`] turns that back into the peer's close.

use crate::frame::CloseCode;
use crate::session::Initiator;

/// The WebSocket close frame (code, reason) that carries a native close with `reason`.
pub fn close_frame(code: CloseCode, reason: &str) -> (u16, &str) {
    (code.websocket_code(), CloseCode::websocket_reason(reason))
}

/// How a connection ended, from the session's account (`code`, `initiator`) and the peer's
/// WebSocket close frame if one arrived (`peer`: code and reason). When the session saw only
/// the transport go but the peer did send a WebSocket close, that close counts: the code it
/// carried, initiated by the peer, with its reason (`Some`). Otherwise the session's account
/// stands and the reason is the adapter's own (`None`).
pub fn closed_by_websocket(
    code: CloseCode,
    initiator: Initiator,
    peer: Option<(u16, &str)>,
) -> (CloseCode, Initiator, Option<&str>) {
    match (initiator, peer) {
        (Initiator::Transport, Some((ws_code, reason))) => (
            CloseCode::from_websocket_code(ws_code),
            Initiator::Peer,
            Some(reason),
        ),
        _ => (code, initiator, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_close_frame_carries_the_code_and_a_reason_that_fits() {
        assert_eq!(close_frame(CloseCode::NORMAL, "bye"), (1000, "bye"));
        assert_eq!(
            close_frame(CloseCode::HEARTBEAT_TIMEOUT, "silent"),
            (4007, "silent")
        );
        let long = "é".repeat(100);
        let (_, reason) = close_frame(CloseCode::GOING_AWAY, &long);
        assert!(reason.len() <= 123 && long.starts_with(reason));
    }

    #[test]
    fn a_websocket_close_without_a_native_close_is_the_peers_close() {
        let (code, reason) = close_frame(CloseCode::AUTH_FAILED, "bad token");
        assert_eq!(
            closed_by_websocket(
                CloseCode::GOING_AWAY,
                Initiator::Transport,
                Some((code, reason))
            ),
            (CloseCode::AUTH_FAILED, Initiator::Peer, Some("bad token"))
        );
    }

    #[test]
    fn the_sessions_account_stands_otherwise() {
        // A native Close (or our own decision) already says everything.
        assert_eq!(
            closed_by_websocket(CloseCode::NORMAL, Initiator::Peer, Some((4003, "x"))),
            (CloseCode::NORMAL, Initiator::Peer, None)
        );
        assert_eq!(
            closed_by_websocket(CloseCode::LIMIT_EXCEEDED, Initiator::Local, None),
            (CloseCode::LIMIT_EXCEEDED, Initiator::Local, None)
        );
        // The transport just vanished.
        assert_eq!(
            closed_by_websocket(CloseCode::GOING_AWAY, Initiator::Transport, None),
            (CloseCode::GOING_AWAY, Initiator::Transport, None)
        );
    }
}
