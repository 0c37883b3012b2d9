//! Sente clients on `/ws`: the `[clj ?cb-uuid]` envelope, callbacks answered by request
//! handlers, batched pushes, pings, and the uidport events.

mod support;

use std::time::{Duration, Instant};

use sentelite_core::frame::PayloadBuf;
use sentelite_host::translate::{cbor_to_json, edn_to_cbor};
use sentelite_host::{Server, ServerSettings};
use serde_json::{Value, json};
use support::text::{TextPeer, edn, server_noting};
use support::{STEP, quick_settings, start_with};
use tokio::sync::mpsc;

fn value(text: &str) -> PayloadBuf {
    PayloadBuf::Value(edn_to_cbor(text).unwrap())
}

/// A Sente client with `client_id`, past its handshake.
async fn sente(server: &Server, client_id: &str) -> TextPeer {
    let query = format!("?client-id={client_id}&csrf-token=x");
    let mut peer = TextPeer::connect(server.local_addr(), &query).await;
    let handshake = edn(&peer.text().await);
    assert_eq!(handshake[0][0], "chsk/handshake", "{handshake}");
    assert_eq!(handshake[0][1][0], client_id, "the uid is the client id");
    assert_eq!(handshake[1], Value::Null);
    peer
}

/// Answers `app/get` with a part and an empty end, `app/whole` with its end payload,
/// `app/fail` with an error, and never answers `app/slow`.
fn builder(settings: ServerSettings) -> sentelite_host::ServerBuilder {
    Server::builder()
        .config(settings)
        .on_request("app/get", |_, mut responder| async move {
            let _ = responder.part(value("{:name \"A\"}")).await;
            let _ = responder.ok(PayloadBuf::Empty).await;
        })
        .on_request("app/whole", |ctx, responder| async move {
            let _ = responder.ok(ctx.payload).await;
        })
        .on_request("app/fail", |_, responder| async move {
            let _ = responder.fail(PayloadBuf::Empty).await;
        })
        .on_request("app/slow", |_, responder| async move {
            responder.cancelled().await;
        })
}

#[tokio::test]
async fn callbacks_get_the_handlers_answer_its_error_or_its_timeout() {
    let (server, _dir) = start_with(builder(ServerSettings {
        callback_timeout_ms: 300,
        ..quick_settings()
    }))
    .await;
    let mut peer = sente(&server, "c-1").await;
    peer.send("[[:app/get {:id 7}] \"k3Xz9a\"]").await;
    assert_eq!(edn(&peer.text().await), json!([{"name": "A"}, "k3Xz9a"]));
    peer.send("[[:app/whole {:id 8}] \"w1\"]").await;
    assert_eq!(edn(&peer.text().await), json!([{"id": 8}, "w1"]));
    peer.send("[[:app/fail {:id 9}] \"f1\"]").await;
    assert_eq!(edn(&peer.text().await), json!(["chsk/error", "f1"]));
    let started = Instant::now();
    peer.send("[[:app/slow] \"s1\"]").await;
    assert_eq!(edn(&peer.text().await), json!(["chsk/timeout", "s1"]));
    assert!(started.elapsed() >= Duration::from_millis(250));
    server.shutdown().await;
}

#[tokio::test]
async fn a_callback_without_a_request_handler_reaches_the_event_handler_and_errs() {
    let (server, _dir, mut noted) = server_noting("app/note").await;
    let mut peer = sente(&server, "c-2").await;
    peer.send("[[:app/note {:x 1}] \"n1\"]").await;
    assert_eq!(edn(&peer.text().await), json!(["chsk/error", "n1"]));
    assert_eq!(noted.next_json().await, json!({"x": 1}));
    // No handler at all: an error too, and no echo.
    peer.send("[[:app/nobody] \"n2\"]").await;
    assert_eq!(edn(&peer.text().await), json!(["chsk/error", "n2"]));
    server.shutdown().await;
}

#[tokio::test]
async fn the_older_envelope_without_a_callback_slot_is_read() {
    let (server, _dir, mut noted) = server_noting("app/note").await;
    let mut peer = sente(&server, "c-3").await;
    peer.send("[[:app/note {:v 1}]]").await;
    peer.send("[[:app/note {:v 2}] nil]").await;
    for v in [1, 2] {
        assert_eq!(noted.next_json().await, json!({"v": v}));
    }
    // Unhandled events are not echoed in Sente.
    peer.send("[[:app/unknown {:v 3}]]").await;
    assert_eq!(peer.hear_within(Duration::from_millis(200)).await, None);
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_ping_with_a_callback_gets_pong_and_pushes_queued_together_share_a_frame() {
    let (server, _dir) = start_with(Server::builder().config(quick_settings()).on_event(
        "app/twice",
        |ctx| {
            // Queued on the connection's task, before it writes: one batch.
            for (event, n) in [("app/a", "{:n 1}"), ("app/b", "{:n 2}")] {
                ctx.server
                    .send_to_connection(ctx.connection_id, event, value(n))
                    .unwrap();
            }
            async {}
        },
    ))
    .await;
    let mut peer = sente(&server, "c-4").await;
    peer.send("[[:chsk/ws-ping] \"Ab12Cd\"]").await;
    assert_eq!(peer.text().await, "[\"pong\" \"Ab12Cd\"]");
    peer.send("[[:app/twice]]").await;
    assert_eq!(
        edn(&peer.text().await),
        json!([[["app/a", {"n": 1}], ["app/b", {"n": 2}]], null])
    );
    server.shutdown().await;
}

#[tokio::test]
async fn uidports_open_once_and_close_after_the_grace_unless_the_uid_returns() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let record = |tx: mpsc::UnboundedSender<(String, Value)>| {
        move |ctx: sentelite_host::EventContext| {
            let PayloadBuf::Value(cbor) = &ctx.payload else {
                panic!("{:?}", ctx.payload)
            };
            let _ = tx.send((ctx.event.to_string(), cbor_to_json(cbor).unwrap()));
            async {}
        }
    };
    let (server, _dir) = start_with(
        Server::builder()
            .config(ServerSettings {
                uidport_close_grace_ms: 400,
                ..quick_settings()
            })
            .on_event("chsk/uidport-open", record(tx.clone()))
            .on_event("chsk/uidport-close", record(tx)),
    )
    .await;
    let first = sente(&server, "user-1").await;
    let got = tokio::time::timeout(STEP, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, ("chsk/uidport-open".into(), json!("user-1")));

    // A reload: closed and back within the grace, so no close and no second open.
    first.close().await;
    let again = sente(&server, "user-1").await;
    assert!(
        tokio::time::timeout(Duration::from_millis(700), rx.recv())
            .await
            .is_err(),
        "no uidport event for a uid back within its grace"
    );

    let closed_at = Instant::now();
    again.close().await;
    let got = tokio::time::timeout(STEP, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, ("chsk/uidport-close".into(), json!("user-1")));
    assert!(closed_at.elapsed() >= Duration::from_millis(350));

    // Gone for good, so a new connection opens the port again.
    let _back = sente(&server, "user-1").await;
    let got = tokio::time::timeout(STEP, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, ("chsk/uidport-open".into(), json!("user-1")));
    server.shutdown().await;
}

#[tokio::test]
async fn a_callback_still_running_at_the_close_stops_its_handler() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (server, _dir) = start_with(Server::builder().config(quick_settings()).on_request(
        "app/long",
        move |_, responder| {
            let tx = tx.clone();
            async move {
                responder.cancelled().await;
                let _ = tx.send(responder.ok(PayloadBuf::Empty).await.is_err());
            }
        },
    ))
    .await;
    let mut peer = sente(&server, "c-5").await;
    peer.send("[[:app/long] \"L1\"]").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    peer.close().await;
    let refused = tokio::time::timeout(STEP, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(refused, "nothing can be sent after the close");
    server.shutdown().await;
}
