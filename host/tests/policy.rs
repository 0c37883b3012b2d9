//! What the server lets one client do to others and to itself: request and event budgets
//! that cancels cannot get round, the relay policy, the client-id policy, and the limits on
//! Hello strings, over real loopback WebSockets.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sentelite_core::frame::{Payload, PayloadBuf, capability};
use sentelite_core::{ClientConfig, CloseCode, Status};
use sentelite_host::{DuplicateClientId, Server, ServerSettings};
use support::{Got, STEP, TestClient, quick_settings, start, start_with};

/// Counts live handler tasks and remembers the most seen at once.
#[derive(Default)]
struct Gauge {
    alive: AtomicUsize,
    peak: AtomicUsize,
    finished: AtomicUsize,
}

impl Gauge {
    fn enter(&self) {
        let now = self.alive.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
    }
    fn leave(&self) {
        self.alive.fetch_sub(1, Ordering::SeqCst);
        self.finished.fetch_add(1, Ordering::SeqCst);
    }
    fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

fn json_text(payload: &PayloadBuf) -> &str {
    match payload {
        PayloadBuf::Json(text) => text,
        other => panic!("expected a JSON payload, got {other:?}"),
    }
}

#[tokio::test]
async fn request_and_cancel_in_a_loop_never_runs_more_handlers_than_max_pending() {
    let gauge = Arc::new(Gauge::default());
    let handler_gauge = gauge.clone();
    let builder = Server::builder()
        .config(ServerSettings {
            max_pending: 2,
            ..quick_settings()
        })
        .on_request("demo/slow", move |_ctx, responder| {
            let gauge = handler_gauge.clone();
            async move {
                gauge.enter();
                // Work that takes a while to notice the cancel.
                responder.cancelled().await;
                tokio::time::sleep(Duration::from_millis(30)).await;
                gauge.leave();
                drop(responder);
            }
        });
    let (server, _dir) = start_with(builder).await;
    let mut client = TestClient::open(server.local_addr(), "canceller").await;

    let mut in_flight = 0;
    let mut ends = Vec::new();
    for _ in 0..40 {
        // The test client tracks at most 16 requests of its own.
        while in_flight >= 12 {
            if let Got::End { status, .. } = client.next().await {
                ends.push(status);
                in_flight -= 1;
            }
        }
        let id = client.request("demo/slow", Payload::Empty, None).await;
        client.cancel_raw(id).await;
        in_flight += 1;
    }
    while in_flight > 0 {
        if let Got::End { status, .. } = client.next().await {
            ends.push(status);
            in_flight -= 1;
        }
    }
    let busy = ends.iter().filter(|s| **s == Status::BUSY).count();
    let cancelled = ends.iter().filter(|s| **s == Status::CANCELLED).count();
    assert!(
        gauge.peak() <= 2,
        "{} handlers ran at once with max-pending = 2",
        gauge.peak()
    );
    assert!(busy > 0, "requests beyond the limit are answered busy");
    assert_eq!(busy + cancelled, 40);
    server.shutdown().await;
}

#[tokio::test]
async fn event_handlers_are_bounded_and_the_connection_waits_instead_of_dropping() {
    let gauge = Arc::new(Gauge::default());
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let (handler_gauge, handler_gate) = (gauge.clone(), gate.clone());
    let builder = Server::builder()
        .config(ServerSettings {
            max_event_tasks_per_conn: 2,
            ..quick_settings()
        })
        .on_event("demo/blocking", move |_ctx| {
            let (gauge, gate) = (handler_gauge.clone(), handler_gate.clone());
            async move {
                gauge.enter();
                let _ = gate.acquire().await.map(|p| p.forget());
                gauge.leave();
            }
        })
        .on_request("demo/now", |_ctx, responder| async move {
            let _ = responder.ok(PayloadBuf::Empty).await;
        });
    let (server, _dir) = start_with(builder).await;
    let mut client = TestClient::open(server.local_addr(), "chatty").await;

    for _ in 0..6 {
        client.send_event("demo/blocking", Payload::Empty).await;
    }
    let id = client.request("demo/now", Payload::Empty, None).await;
    // Two handlers run, the third event waits, and nothing behind it is read.
    let early = tokio::time::timeout(Duration::from_millis(300), client.next()).await;
    assert!(early.is_err(), "answered while events were held: {early:?}");
    assert_eq!(gauge.alive.load(Ordering::SeqCst), 2);

    gate.add_permits(6);
    assert_eq!(client.end_of(id).await.0, Status::OK);
    tokio::time::timeout(STEP, async {
        while gauge.finished.load(Ordering::SeqCst) < 6 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("every event reached its handler");
    assert_eq!(gauge.peak(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn events_without_a_handler_are_counted() {
    let (server, _dir) = start(quick_settings()).await;
    let mut client = TestClient::open(server.local_addr(), "stray").await;
    for _ in 0..3 {
        client.send_event("nobody/listens", Payload::Empty).await;
    }
    let handle = server.handle();
    let counted = tokio::time::timeout(STEP, async {
        loop {
            let info = handle.connections();
            if info.first().is_some_and(|c| c.events_unhandled == 3) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(counted.is_ok(), "{:?}", handle.connections());
    server.shutdown().await;
}

async fn relay(client: &mut TestClient, body: &str) -> (Status, PayloadBuf) {
    let id = client
        .request("sentelite/relay", Payload::Json(body), None)
        .await;
    client.end_of(id).await
}

#[tokio::test]
async fn the_relay_is_closed_by_default() {
    let builder = Server::builder()
        .config(quick_settings())
        .with_builtin_handlers();
    let (server, _dir) = start_with(builder).await;
    let addr = server.local_addr();
    let mut config = ClientConfig::new("target").unwrap();
    config.capabilities = capability::RELAY_TARGET;
    let (_target, _) = TestClient::handshake(addr, config).await;
    let mut asker = TestClient::open(addr, "asker").await;

    let (status, payload) = relay(&mut asker, r#"{"client-id":"target","event":"x/y"}"#).await;
    assert_eq!(status, Status::UNSUPPORTED);
    assert!(
        json_text(&payload).contains(r#""refused":"relay-disabled""#),
        "{payload:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn an_open_relay_forwards_only_listed_events_to_relay_targets() {
    let builder = Server::builder()
        .config(ServerSettings {
            relay_enabled: true,
            relay_events: vec!["test/*".into(), "exact/one".into()],
            ..quick_settings()
        })
        .with_builtin_handlers();
    let (server, _dir) = start_with(builder).await;
    let addr = server.local_addr();
    let mut config = ClientConfig::new("target").unwrap();
    config.capabilities = capability::RELAY_TARGET;
    let (mut target, _) = TestClient::handshake(addr, config).await;
    let _plain = TestClient::open(addr, "plain").await;
    let mut asker = TestClient::open(addr, "asker").await;

    for event in ["nrepl/eval", "exact/one-more", "test"] {
        let body = format!(r#"{{"client-id":"target","event":"{event}"}}"#);
        let (status, payload) = relay(&mut asker, &body).await;
        assert_eq!(status, Status::ERROR, "{event}");
        assert!(
            json_text(&payload).contains(r#""refused":"event-not-allowed""#),
            "{event}: {payload:?}"
        );
    }
    let (status, payload) = relay(&mut asker, r#"{"client-id":"plain","event":"test/x"}"#).await;
    assert_eq!(status, Status::ERROR);
    assert!(
        json_text(&payload).contains(r#""refused":"not-a-relay-target""#),
        "{payload:?}"
    );

    let asked = asker
        .request(
            "sentelite/relay",
            Payload::Json(r#"{"client-id":"target","event":"test/count","data":1}"#),
            None,
        )
        .await;
    let Got::Request { id, event, .. } = target.next().await else {
        panic!("the target gets the relayed request");
    };
    assert_eq!(event, "test/count");
    target.end(id, Status::OK, Payload::Json("\"done\"")).await;
    let (status, payload) = asker.end_of(asked).await;
    assert_eq!(
        (status, payload),
        (Status::OK, PayloadBuf::Json("\"done\"".into()))
    );
    server.shutdown().await;
}

fn device(client_id: &str, boot_id: u32) -> ClientConfig {
    let mut config = ClientConfig::new(client_id).unwrap();
    config.boot_id = boot_id;
    config
}

/// The first connection was closed with `REPLACED`.
async fn expect_replaced(client: &mut TestClient) {
    assert_eq!(
        client.next().await,
        Got::Close {
            code: CloseCode::REPLACED,
            reason: "replaced by a newer connection of this client".into()
        }
    );
    assert_eq!(
        client.expect_ws_close().await.0,
        CloseCode::REPLACED.websocket_code()
    );
}

#[tokio::test]
async fn refuse_policy_turns_away_a_second_device_but_lets_the_same_boot_reconnect() {
    let (server, _dir) = start(quick_settings()).await;
    let addr = server.local_addr();
    let (mut first, _) = TestClient::handshake(addr, device("dev", 1)).await;

    let mut impostor = TestClient::connect(addr, device("dev", 2)).await;
    assert_eq!(
        impostor.next().await,
        Got::Close {
            code: CloseCode::DUPLICATE_CLIENT,
            reason: "client id already connected".into()
        }
    );
    assert_eq!(
        impostor.expect_ws_close().await.0,
        CloseCode::DUPLICATE_CLIENT.websocket_code()
    );

    // The same boot reconnecting (its old socket not yet noticed as dead) replaces it.
    let (_again, _) = TestClient::handshake(addr, device("dev", 1)).await;
    expect_replaced(&mut first).await;
    let conns = server.handle().connections();
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0].boot_id, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn replace_policy_admits_the_newcomer_and_closes_the_old_connection() {
    let (server, _dir) = start(ServerSettings {
        duplicate_client_id: DuplicateClientId::Replace,
        ..quick_settings()
    })
    .await;
    let addr = server.local_addr();
    let (mut first, _) = TestClient::handshake(addr, device("dev", 1)).await;
    let (_second, _) = TestClient::handshake(addr, device("dev", 2)).await;
    expect_replaced(&mut first).await;
    let conns = server.handle().connections();
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0].boot_id, 2);
    server.shutdown().await;
}

#[tokio::test]
async fn allow_policy_keeps_both_connections() {
    let (server, _dir) = start(ServerSettings {
        duplicate_client_id: DuplicateClientId::Allow,
        ..quick_settings()
    })
    .await;
    let addr = server.local_addr();
    let (_first, _) = TestClient::handshake(addr, device("dev", 1)).await;
    let (_second, _) = TestClient::handshake(addr, device("dev", 2)).await;
    assert_eq!(server.handle().connections().len(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn overlong_hello_strings_are_closed_with_limit_exceeded() {
    let (server, _dir) = start(ServerSettings {
        max_client_id_bytes: 8,
        max_firmware_bytes: 4,
        ..quick_settings()
    })
    .await;
    let addr = server.local_addr();
    let mut long_id = TestClient::connect(addr, device("123456789", 1)).await;
    assert!(matches!(
        long_id.next().await,
        Got::Close { code: CloseCode::LIMIT_EXCEEDED, reason } if reason.contains("max-client-id-bytes")
    ));
    let mut config = device("12345678", 1);
    config.firmware = Some("fw-10".try_into().unwrap());
    let mut long_fw = TestClient::connect(addr, config).await;
    assert!(matches!(
        long_fw.next().await,
        Got::Close { code: CloseCode::LIMIT_EXCEEDED, reason } if reason.contains("max-firmware-bytes")
    ));
    config = device("12345678", 1);
    config.firmware = Some("fw-1".try_into().unwrap());
    let (_fits, welcome) = TestClient::handshake(addr, config).await;
    assert!(matches!(welcome, Got::Welcome { .. }));
    server.shutdown().await;
}
