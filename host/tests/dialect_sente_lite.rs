//! sente-lite clients on `/ws`: raw EDN text frames against an in-process server. Content is
//! compared through the host's EDN reader (keywords read back without their colon).

mod support;

use std::time::Duration;

use sentelite_core::frame::PayloadBuf;
use sentelite_host::translate::{cbor_to_edn, edn_to_cbor, payload_to_edn};
use sentelite_host::{LifecycleEvent, Server, ServerSettings};
use serde_json::{Value, json};
use support::text::{Heard, TextPeer, edn};
use support::{STEP, quick_settings, start, start_with, wait_lifecycle};
use tokio::sync::mpsc;

/// A sente-lite client that announced itself with a ping (so no detection window is spent),
/// with its uid from the handshake.
async fn sente_lite(server: &Server) -> (TextPeer, String) {
    let mut peer = TextPeer::connect(server.local_addr(), "").await;
    peer.send("[:chsk/ws-ping]").await;
    let handshake = edn(&peer.text().await);
    assert_eq!(handshake[0], "chsk/handshake", "{handshake}");
    let uid = handshake[1][0].as_str().expect("uid").to_owned();
    assert_eq!(edn(&peer.text().await), json!(["chsk/ws-pong"]));
    (peer, uid)
}

/// The next message that is not a server ping, read as EDN.
async fn next(peer: &mut TextPeer) -> Value {
    edn(&peer.text_where(|t| edn(t) != json!(["chsk/ws-ping"])).await)
}

#[tokio::test]
async fn the_handshake_comes_at_once_with_a_server_uid_and_registers_the_client() {
    let (server, _dir) = start(quick_settings()).await;
    let mut lifecycle = server.lifecycle();
    let mut peer = TextPeer::connect(server.local_addr(), "?dialect=sente-lite").await;
    let handshake = edn(&peer.text().await);
    assert_eq!(handshake[0], "chsk/handshake");
    let body = handshake[1].as_array().expect("[uid csrf data first?]");
    assert_eq!(body.len(), 4, "{handshake}");
    let uid = body[0].as_str().unwrap();
    assert!(uid.starts_with("conn-"), "{uid}");
    assert_eq!(body[1], Value::Null);
    assert!(body[2].is_object(), "{handshake}");
    assert_eq!(body[3], true);
    let event = wait_lifecycle(&mut lifecycle, |e| {
        matches!(e, LifecycleEvent::Handshake { .. })
    })
    .await;
    let LifecycleEvent::Handshake {
        connection_id,
        uid: registered,
        client_id,
        ..
    } = event
    else {
        unreachable!()
    };
    assert_eq!(&*registered, uid);
    assert_eq!(
        &*client_id, uid,
        "without client-id the uid is the client id"
    );
    let info = server
        .handle()
        .connection(connection_id)
        .expect("registered");
    assert_eq!(&*info.uid, uid);
    peer.close().await;
    wait_lifecycle(&mut lifecycle, |e| {
        matches!(e, LifecycleEvent::Closed { .. })
    })
    .await;
    assert!(server.handle().connection(connection_id).is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn pings_are_answered_both_ways() {
    let (server, _dir) = start(ServerSettings {
        heartbeat_interval_ms: 100,
        heartbeat_timeout_ms: 2000,
        ..quick_settings()
    })
    .await;
    let (mut peer, _) = sente_lite(&server).await;
    // The server's own ping, within a few intervals.
    let ping = peer.text_where(|t| edn(t) == json!(["chsk/ws-ping"])).await;
    assert_eq!(ping.trim(), "[:chsk/ws-ping]");
    peer.send("[:chsk/ws-ping]").await;
    peer.text_where(|t| edn(t) == json!(["chsk/ws-pong"])).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_silent_client_is_closed_at_the_heartbeat_timeout_and_a_ponging_one_is_not() {
    let (server, _dir) = start(ServerSettings {
        heartbeat_interval_ms: 100,
        heartbeat_timeout_ms: 400,
        ..quick_settings()
    })
    .await;
    let (mut silent, _) = sente_lite(&server).await;
    let (mut alive, _) = sente_lite(&server).await;
    let started = std::time::Instant::now();
    // The live client answers every ping for longer than the timeout.
    let answering = async {
        let until = std::time::Instant::now() + Duration::from_millis(900);
        while std::time::Instant::now() < until {
            match alive.hear_within(Duration::from_millis(200)).await {
                Some(Heard::Text(t)) if edn(&t) == json!(["chsk/ws-ping"]) => {
                    alive.send("[:chsk/ws-pong]").await;
                }
                Some(Heard::Text(_)) | None => {}
                other => panic!("the answering client was closed: {other:?}"),
            }
        }
    };
    let (_, (code, reason)) = tokio::join!(answering, silent.close_frame());
    assert_eq!(code, 1001, "{reason}");
    assert!(reason.contains("heartbeat"), "{reason}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    server.shutdown().await;
}

#[tokio::test]
async fn subscribe_publish_unsubscribe_with_the_documented_answers_and_limits() {
    let (server, _dir) = start(ServerSettings {
        max_subscriptions_per_conn: 1,
        ..quick_settings()
    })
    .await;
    let (mut peer, uid) = sente_lite(&server).await;
    peer.send("[:sente-lite/subscribe {:channel-id \"c1\"}]")
        .await;
    assert_eq!(
        next(&mut peer).await,
        json!(["sente-lite/subscribed", {"channel-id": "c1", "success": true}])
    );
    peer.send("[:sente-lite/subscribe {:channel-id \"c2\"}]")
        .await;
    let refused = next(&mut peer).await;
    assert_eq!(refused[0], "sente-lite/subscribed");
    assert_eq!(refused[1]["success"], false, "{refused}");
    assert_eq!(
        refused[1]["error"], "max-subscriptions-per-conn",
        "{refused}"
    );
    peer.send("[:sente-lite/publish {:channel-id \"c1\" :data {:n 1} :exclude-sender? false}]")
        .await;
    assert_eq!(
        next(&mut peer).await,
        json!(["sente-lite/channel-msg", {"channel-id": "c1", "data": {"n": 1}, "from": uid}])
    );
    peer.send("[:sente-lite/unsubscribe {:channel-id \"c1\"}]")
        .await;
    let left = next(&mut peer).await;
    assert_eq!(left[0], "sente-lite/unsubscribed", "{left}");
    assert_eq!(left[1]["success"], true, "{left}");
    assert!(server.handle().subscribers("c1").is_empty());
    peer.send("[:sente-lite/unsubscribe {:channel-id \"c1\"}]")
        .await;
    let again = next(&mut peer).await;
    assert_eq!(again[0], "sente-lite/unsubscribed", "{again}");
    assert_eq!(again[1]["error"], "channel-not-found", "{again}");
    server.shutdown().await;
}

#[tokio::test]
async fn exclude_sender_is_honoured() {
    let (server, _dir) = start(quick_settings()).await;
    let (mut a, uid_a) = sente_lite(&server).await;
    let (mut b, _) = sente_lite(&server).await;
    for peer in [&mut a, &mut b] {
        peer.send("[:sente-lite/subscribe {:channel-id \"room\"}]")
            .await;
        assert_eq!(next(peer).await[1]["success"], true);
    }
    a.send("[:sente-lite/publish {:channel-id \"room\" :data {:n 1} :exclude-sender? true}]")
        .await;
    a.send("[:sente-lite/publish {:channel-id \"room\" :data {:n 2}}]")
        .await;
    for n in [1, 2] {
        let got = next(&mut b).await;
        assert_eq!(got[1]["data"], json!({"n": n}), "{got}");
        assert_eq!(got[1]["from"], uid_a.as_str());
    }
    // The sender's first message to itself is the second publish: the first was excluded.
    assert_eq!(next(&mut a).await[1]["data"], json!({"n": 2}));
    server.shutdown().await;
}

#[tokio::test]
async fn an_event_without_a_handler_is_echoed() {
    let (server, _dir) = start(quick_settings()).await;
    let (mut peer, uid) = sente_lite(&server).await;
    peer.send("[:app/unknown {:x 1, :tags #{:a}}]").await;
    let echo = next(&mut peer).await;
    assert_eq!(echo[0], "sente-lite/echo", "{echo}");
    assert_eq!(echo[1]["original-event-id"], "app/unknown", "{echo}");
    assert_eq!(echo[1]["original-data"]["x"], 1, "{echo}");
    assert_eq!(echo[1]["conn-id"], uid.as_str(), "{echo}");
    assert!(echo[1]["timestamp"].as_u64().unwrap() > 1_700_000_000_000);
    let info = &server.handle().connections()[0];
    assert_eq!(info.events_unhandled, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn an_event_reaches_its_handler_with_the_translated_payload() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (server, _dir) = start_with(Server::builder().config(quick_settings()).on_event(
        "app/note",
        move |ctx| {
            let _ = tx.send((ctx.uid.clone(), ctx.payload.clone()));
            async {}
        },
    ))
    .await;
    let (mut peer, uid) = sente_lite(&server).await;
    peer.send("[:app/note {:level :info, :n 2, :tags [\"a\" \"b\"]}]")
        .await;
    let (from, payload) = tokio::time::timeout(STEP, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&*from, uid);
    let PayloadBuf::Value(cbor) = &payload else {
        panic!("a Value payload, got {payload:?}");
    };
    assert_eq!(
        cbor_to_edn(cbor).unwrap(),
        "{:level :info, :n 2, :tags [\"a\" \"b\"]}"
    );
    // A handled event is not echoed.
    assert_eq!(peer.hear_within(Duration::from_millis(200)).await, None);
    server.shutdown().await;
}

#[tokio::test]
async fn a_native_device_and_a_sente_lite_client_share_a_channel() {
    let (server, _dir) = start(quick_settings()).await;
    let (mut peer, uid) = sente_lite(&server).await;
    peer.send("[:sente-lite/subscribe {:channel-id \"mixed\"}]")
        .await;
    assert_eq!(next(&mut peer).await[1]["success"], true);

    let options =
        sentelite_tokio::ClientOptions::new(format!("ws://{}/ws", server.local_addr()), "rover");
    let device = sentelite_tokio::connect(options).unwrap();
    let events = device.events();
    let device_uid = loop {
        match tokio::time::timeout(STEP, events.recv()).await.unwrap() {
            Some(sentelite_tokio::ClientEvent::Opened { uid, .. }) => break uid,
            Some(_) => {}
            None => panic!("client ended"),
        }
    };
    device.subscribe("mixed").await.unwrap();

    // Native → text: a CBOR Value reaches the EDN client as EDN.
    let from_device = edn_to_cbor("{:temp 21.5, :unit :celsius}").unwrap();
    device
        .publish("mixed", PayloadBuf::Value(from_device), true)
        .await
        .unwrap();
    let got = next(&mut peer).await;
    assert_eq!(got[0], "sente-lite/channel-msg");
    assert_eq!(got[1]["data"], json!({"temp": 21.5, "unit": "celsius"}));
    assert_eq!(got[1]["from"], device_uid.as_str());

    // Text → native: the EDN data reaches the device as a CBOR Value.
    peer.send("[:sente-lite/publish {:channel-id \"mixed\" :data {:cmd :stop, :n 3} :exclude-sender? true}]")
        .await;
    let (from, payload) = loop {
        match tokio::time::timeout(STEP, events.recv()).await.unwrap() {
            Some(sentelite_tokio::ClientEvent::ChannelMessage { from, payload, .. }) => {
                break (from, payload);
            }
            Some(_) => {}
            None => panic!("client ended"),
        }
    };
    assert_eq!(from, uid);
    assert!(matches!(payload, PayloadBuf::Value(_)), "{payload:?}");
    assert_eq!(payload_to_edn(&payload).unwrap(), "{:cmd :stop, :n 3}");
    device.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_malformed_message_closes_with_1007_and_a_binary_one_with_1003() {
    let (server, _dir) = start(quick_settings()).await;
    let (mut peer, _) = sente_lite(&server).await;
    peer.send("[:app/x {:unclosed").await;
    let (code, reason) = peer.close_frame().await;
    assert_eq!(code, 1007);
    assert!(!reason.is_empty());

    let (mut peer, _) = sente_lite(&server).await;
    peer.send_binary(&[1, 2, 3]).await;
    assert_eq!(peer.close_frame().await.0, 1003);

    // The server goes on serving.
    let (mut peer, _) = sente_lite(&server).await;
    peer.send("[:chsk/ws-ping]").await;
    assert_eq!(next(&mut peer).await, json!(["chsk/ws-pong"]));
    server.shutdown().await;
}

#[tokio::test]
async fn a_message_over_the_frame_limit_closes_with_1009() {
    let (server, _dir) = start(ServerSettings {
        max_frame_bytes: 1024,
        ..quick_settings()
    })
    .await;
    let (mut peer, _) = sente_lite(&server).await;
    let big = format!("[:app/x \"{}\"]", "a".repeat(1500));
    peer.send(&big).await;
    assert_eq!(peer.close_frame().await.0, 1009);
    server.shutdown().await;
}

#[tokio::test]
async fn pushes_are_wrapped_in_chsk_recv_when_the_setting_asks() {
    let (server, _dir) = start(ServerSettings {
        sente_lite_wrap_recv: true,
        ..quick_settings()
    })
    .await;
    let (mut peer, _) = sente_lite(&server).await;
    let id = server.handle().connections()[0].connection_id;
    let data = PayloadBuf::Value(edn_to_cbor("{:n 1}").unwrap());
    server
        .handle()
        .send_to_connection(id, "app/push", data)
        .unwrap();
    assert_eq!(
        next(&mut peer).await,
        json!(["chsk/recv", ["app/push", {"n": 1}]])
    );
    // Answers to the client's own messages are not pushes.
    peer.send("[:chsk/ws-ping]").await;
    assert_eq!(next(&mut peer).await, json!(["chsk/ws-pong"]));
    server.shutdown().await;
}

#[tokio::test]
async fn the_server_closes_a_text_client_and_forgets_its_channels() {
    let (server, _dir) = start(quick_settings()).await;
    let mut lifecycle = server.lifecycle();
    let (mut peer, uid) = sente_lite(&server).await;
    peer.send("[:sente-lite/subscribe {:channel-id \"c1\"}]")
        .await;
    assert_eq!(next(&mut peer).await[1]["success"], true);
    let id = server.handle().connections()[0].connection_id;
    assert_eq!(server.handle().subscribers("c1"), [id]);
    server
        .handle()
        .close_connection(id, sentelite_core::CloseCode::NORMAL, "bye")
        .unwrap();
    assert_eq!(peer.close_frame().await, (1000, "bye".to_owned()));
    let closed = wait_lifecycle(&mut lifecycle, |e| {
        matches!(e, LifecycleEvent::Closed { .. })
    })
    .await;
    let LifecycleEvent::Closed {
        uid: closed_uid,
        code,
        reason,
        ..
    } = closed
    else {
        unreachable!()
    };
    assert_eq!(closed_uid.as_deref(), Some(uid.as_str()));
    assert_eq!(
        (code, reason.as_str()),
        (sentelite_core::CloseCode::NORMAL, "bye")
    );
    assert!(server.handle().subscribers("c1").is_empty());
    assert_eq!(server.handle().connection_count(), 0);
    server.shutdown().await;
}
