//! JSON clients on `/ws`: the sente-lite semantics with JSON arrays, and a JSON client and a
//! sente-lite client on one channel.

mod support;

use std::time::Duration;

use sentelite_host::{Server, ServerSettings};
use serde_json::{Value, json};
use support::text::{TextPeer, edn, server_noting};
use support::{quick_settings, start};

/// A JSON client and its uid from the handshake.
async fn json_client(server: &Server) -> (TextPeer, String) {
    let mut peer = TextPeer::connect(server.local_addr(), "?dialect=json").await;
    let handshake = support::text::json(&peer.text().await);
    assert_eq!(handshake[0], "chsk/handshake", "{handshake}");
    assert_eq!(handshake[1][1], Value::Null);
    assert_eq!(handshake[1][3], true);
    let uid = handshake[1][0].as_str().expect("uid").to_owned();
    assert!(uid.starts_with("conn-"), "{uid}");
    (peer, uid)
}

async fn next(peer: &mut TextPeer) -> Value {
    let text = peer
        .text_where(|t| support::text::json(t) != json!(["chsk/ws-ping"]))
        .await;
    support::text::json(&text)
}

#[tokio::test]
async fn handshake_and_pings_both_ways() {
    let (server, _dir) = start(ServerSettings {
        heartbeat_interval_ms: 100,
        ..quick_settings()
    })
    .await;
    let (mut peer, _) = json_client(&server).await;
    peer.send("[\"chsk/ws-ping\"]").await;
    assert_eq!(next(&mut peer).await, json!(["chsk/ws-pong"]));
    let ping = peer
        .text_where(|t| support::text::json(t) == json!(["chsk/ws-ping"]))
        .await;
    assert_eq!(ping, "[\"chsk/ws-ping\"]");
    server.shutdown().await;
}

#[tokio::test]
async fn channels_with_refusals_and_a_sente_lite_member() {
    let (server, _dir) = start(ServerSettings {
        max_subscriptions_per_conn: 1,
        ..quick_settings()
    })
    .await;
    let (mut js, uid) = json_client(&server).await;
    let mut lite = TextPeer::connect(server.local_addr(), "?dialect=sente-lite").await;
    assert_eq!(edn(&lite.text().await)[0], "chsk/handshake");
    lite.send("[:sente-lite/subscribe {:channel-id \"c1\"}]")
        .await;
    assert_eq!(edn(&lite.text().await)[1]["success"], true);

    js.send(r#"["sente-lite/subscribe", {"channel-id": "c1"}]"#)
        .await;
    assert_eq!(
        next(&mut js).await,
        json!(["sente-lite/subscribed", {"channel-id": "c1", "success": true}])
    );
    js.send(r#"["sente-lite/subscribe", {"channel-id": "c2"}]"#)
        .await;
    let refused = next(&mut js).await;
    assert_eq!(refused[1]["success"], false, "{refused}");
    assert_eq!(refused[1]["error"], "max-subscriptions-per-conn");

    js.send(r#"["sente-lite/publish", {"channel-id": "c1", "data": {"n": 1, "tags": ["x"]}, "exclude-sender?": true}]"#)
        .await;
    let got = edn(&lite.text().await);
    assert_eq!(got[0], "sente-lite/channel-msg");
    assert_eq!(got[1]["data"], json!({"n": 1, "tags": ["x"]}));
    assert_eq!(got[1]["from"], uid.as_str());

    lite.send("[:sente-lite/publish {:channel-id \"c1\" :data {:level :warn}}]")
        .await;
    let got = next(&mut js).await;
    assert_eq!(got[0], "sente-lite/channel-msg");
    assert_eq!(got[1]["data"], json!({"level": "warn"}));

    js.send(r#"["sente-lite/unsubscribe", {"channel-id": "c1"}]"#)
        .await;
    let left = next(&mut js).await;
    assert_eq!(left[0], "sente-lite/unsubscribed");
    assert_eq!(left[1]["success"], true);
    js.send(r#"["sente-lite/unsubscribe", {"channel-id": "c1"}]"#)
        .await;
    assert_eq!(next(&mut js).await[1]["error"], "channel-not-found");
    server.shutdown().await;
}

#[tokio::test]
async fn events_reach_handlers_and_unhandled_ones_are_echoed() {
    let (server, _dir, mut noted) = server_noting("app/note").await;
    let (mut peer, uid) = json_client(&server).await;
    peer.send(r#"["app/note", {"level": "info", "n": 2}]"#)
        .await;
    assert_eq!(noted.next_json().await, json!({"level": "info", "n": 2}));
    assert_eq!(peer.hear_within(Duration::from_millis(200)).await, None);

    peer.send(r#"["app/unknown", [1, 2]]"#).await;
    let echo = next(&mut peer).await;
    assert_eq!(echo[0], "sente-lite/echo", "{echo}");
    assert_eq!(echo[1]["original-event-id"], "app/unknown");
    assert_eq!(echo[1]["original-data"], json!([1, 2]));
    assert_eq!(echo[1]["conn-id"], uid.as_str());
    server.shutdown().await;
}

#[tokio::test]
async fn a_message_that_is_not_the_json_shape_closes_with_1007() {
    let (server, _dir) = start(quick_settings()).await;
    let (mut peer, _) = json_client(&server).await;
    peer.send(r#"{"event": "app/x"}"#).await;
    let (code, reason) = peer.close_frame().await;
    assert_eq!(code, 1007);
    assert!(!reason.is_empty());
    server.shutdown().await;
}
