//! Which dialect a `/ws` connection speaks: `?dialect=`, `client-id`, the first message
//! within `dialect-detect-ms`, and the token for text clients.

mod support;

use std::time::{Duration, Instant};

use sentelite_host::ServerSettings;
use serde_json::json;
use support::text::{Heard, TextPeer, edn};
use support::{TestClient, quick_settings, start};

fn settings(detect_ms: u64) -> ServerSettings {
    ServerSettings {
        dialect_detect_ms: detect_ms,
        ..quick_settings()
    }
}

#[tokio::test]
async fn a_native_client_sending_its_hello_first_is_served_natively() {
    // A long window: a native client must not wait for it.
    let (server, _dir) = start(settings(3000)).await;
    let started = Instant::now();
    let mut device = TestClient::open(server.local_addr(), "dev-1").await;
    assert!(started.elapsed() < Duration::from_millis(2000));
    device.subscribe("c").await;
    assert!(matches!(
        device.next().await,
        support::Got::SubscribeAck {
            subscribed: true,
            ..
        }
    ));
    assert_eq!(server.handle().connections()[0].client_id.as_ref(), "dev-1");
    server.shutdown().await;
}

#[tokio::test]
async fn a_silent_client_gets_the_sente_lite_handshake_after_the_window() {
    let (server, _dir) = start(settings(300)).await;
    let started = Instant::now();
    let mut peer = TextPeer::connect(server.local_addr(), "").await;
    let handshake = edn(&peer.text().await);
    let waited = started.elapsed();
    assert_eq!(handshake[0], "chsk/handshake", "{handshake}");
    assert!(waited >= Duration::from_millis(250), "after {waited:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn the_query_overrides_detection_and_needs_no_window() {
    let (server, _dir) = start(settings(3000)).await;
    let started = Instant::now();
    let mut peer = TextPeer::connect(server.local_addr(), "?dialect=json").await;
    let handshake = support::text::json(&peer.text().await);
    assert!(started.elapsed() < Duration::from_millis(2000));
    assert_eq!(handshake[0], "chsk/handshake", "{handshake}");
    // `edn` is sente-lite.
    let mut peer = TextPeer::connect(server.local_addr(), "?dialect=edn").await;
    assert_eq!(edn(&peer.text().await)[0], "chsk/handshake");
    // A native client told to be native is not taken for a text one either.
    let mut native = TextPeer::connect(server.local_addr(), "?dialect=native").await;
    native.send("[:chsk/ws-ping]").await;
    assert_eq!(native.close_frame().await.0, 4002, "native refuses text");
    server.shutdown().await;
}

#[tokio::test]
async fn the_first_text_message_picks_the_dialect() {
    let (server, _dir) = start(settings(3000)).await;
    let mut lite = TextPeer::connect(server.local_addr(), "").await;
    lite.send("[:chsk/ws-ping]").await;
    assert_eq!(edn(&lite.text().await)[0], "chsk/handshake");
    assert_eq!(edn(&lite.text().await), json!(["chsk/ws-pong"]));

    let mut js = TextPeer::connect(server.local_addr(), "").await;
    js.send("[\"chsk/ws-ping\"]").await;
    assert_eq!(support::text::json(&js.text().await)[0], "chsk/handshake");
    assert_eq!(
        support::text::json(&js.text().await),
        json!(["chsk/ws-pong"])
    );
    server.shutdown().await;
}

#[tokio::test]
async fn an_undecidable_first_message_closes_with_1007() {
    let (server, _dir) = start(settings(3000)).await;
    let mut peer = TextPeer::connect(server.local_addr(), "").await;
    peer.send("hello there").await;
    let (code, reason) = peer.close_frame().await;
    assert_eq!(code, 1007);
    assert!(reason.contains("dialect"), "{reason}");
    assert!(server.handle().connections().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn text_clients_give_the_token_in_the_query_or_a_bearer_header() {
    let (server, _dir) = start(ServerSettings {
        token: Some("s3cret".into()),
        ..settings(100)
    })
    .await;
    let addr = server.local_addr();
    for query in ["?dialect=sente-lite", "?dialect=sente-lite&token=wrong", ""] {
        let mut peer = TextPeer::connect(addr, query).await;
        let heard = peer.hear_within(support::STEP).await;
        assert_eq!(
            heard,
            Some(Heard::Close(1008, "missing or wrong token".into())),
            "{query:?}"
        );
    }
    let mut peer = TextPeer::connect(addr, "?dialect=sente-lite&token=s3cret").await;
    assert_eq!(edn(&peer.text().await)[0], "chsk/handshake");
    let mut peer = TextPeer::connect_with(addr, "?dialect=json", Some("Bearer s3cret")).await;
    assert_eq!(support::text::json(&peer.text().await)[0], "chsk/handshake");
    server.shutdown().await;
}

#[tokio::test]
async fn bad_queries_are_refused_before_the_upgrade() {
    let (server, _dir) = start(settings(100)).await;
    for query in ["?client-id=", "?client-id=%20", "?dialect=klingon"] {
        let url = format!("ws://{}/ws{query}", server.local_addr());
        let err = tokio_tungstenite::connect_async(url).await.unwrap_err();
        let tokio_tungstenite::tungstenite::Error::Http(response) = err else {
            panic!("{query}: {err}");
        };
        assert_eq!(response.status(), 400, "{query}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_first_message_over_the_websocket_limit_gets_the_native_frame_too_large() {
    let (server, _dir) = start(ServerSettings {
        max_frame_bytes: 1024,
        ..settings(3000)
    })
    .await;
    let mut peer = TextPeer::connect(server.local_addr(), "").await;
    // Over twice max-frame-bytes: refused by the WebSocket layer itself.
    peer.send_binary(&[0u8; 5000]).await;
    let (code, _) = peer.close_frame().await;
    assert_eq!(
        code,
        sentelite_core::CloseCode::FRAME_TOO_LARGE.websocket_code()
    );
    server.shutdown().await;
}
