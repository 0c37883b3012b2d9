//! `sentelite/relay` when things go wrong between the asker and the target: a malformed
//! request, a target that does not answer in time, an asker that cancels, and a target that
//! vanishes mid-answer. Every case ends the asker's request exactly once with a typed status,
//! and a cancel reaches the target.

mod support;

use std::time::Duration;

use sentelite_core::frame::{Payload, PayloadBuf, capability};
use sentelite_core::{ClientConfig, RequestId, Status};
use sentelite_host::{Server, ServerSettings};
use support::{Got, STEP, TestClient, quick_settings, start_with};

/// A server with the relay open for `test/*`, a relay target and an asker.
async fn relay_pair() -> (Server, support::TempDir, TestClient, TestClient) {
    let builder = Server::builder()
        .config(ServerSettings {
            relay_enabled: true,
            relay_events: vec!["test/*".into()],
            ..quick_settings()
        })
        .with_builtin_handlers();
    let (server, dir) = start_with(builder).await;
    let mut config = ClientConfig::new("target").unwrap();
    config.capabilities = capability::RELAY_TARGET;
    let (target, _) = TestClient::handshake(server.local_addr(), config).await;
    let asker = TestClient::open(server.local_addr(), "asker").await;
    (server, dir, target, asker)
}

fn text(payload: &PayloadBuf) -> String {
    match payload {
        PayloadBuf::Json(text) => text.clone(),
        other => format!("{other:?}"),
    }
}

/// The relayed request as the target sees it.
async fn relayed(target: &mut TestClient) -> RequestId {
    match target.next().await {
        Got::Request { id, event, .. } => {
            assert!(event.starts_with("test/"), "{event}");
            id
        }
        other => panic!("the target expected the relayed request, got {other:?}"),
    }
}

#[tokio::test]
async fn a_malformed_relay_request_is_refused_with_the_reason() {
    let (server, _dir, _target, mut asker) = relay_pair().await;
    for body in [
        "{not json",
        r#"{"event":"test/x"}"#,
        r#"{"client-id":"target","event":"test/x","surprise":1}"#,
    ] {
        let id = asker
            .request("sentelite/relay", Payload::Json(body), None)
            .await;
        let (status, payload) = asker.end_of(id).await;
        assert_eq!(status, Status::ERROR, "{body}");
        assert!(
            text(&payload).contains("bad relay request"),
            "{body}: {payload:?}"
        );
    }
    let id = asker
        .request("sentelite/relay", Payload::Bytes(&[0xff, 0xfe]), None)
        .await;
    let (status, payload) = asker.end_of(id).await;
    assert_eq!(status, Status::ERROR);
    assert!(text(&payload).contains("not UTF-8"), "{payload:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_target_that_does_not_answer_in_time_ends_the_relay_with_timeout() {
    let (server, _dir, mut target, mut asker) = relay_pair().await;
    let body = r#"{"client-id":"target","event":"test/slow","timeout-ms":300}"#;
    let asked = asker
        .request("sentelite/relay", Payload::Json(body), None)
        .await;
    let _ = relayed(&mut target).await;
    // The target stays silent; the relay's own deadline ends it, well before the test's.
    let (status, payload) = tokio::time::timeout(Duration::from_secs(3), asker.end_of(asked))
        .await
        .expect("the relay timed out on its own");
    assert_eq!(status, Status::TIMEOUT, "{payload:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn an_asker_that_cancels_stops_the_target_too() {
    let (server, _dir, mut target, mut asker) = relay_pair().await;
    let body = r#"{"client-id":"target","event":"test/long"}"#;
    let asked = asker
        .request("sentelite/relay", Payload::Json(body), None)
        .await;
    let at_target = relayed(&mut target).await;
    target.reply(at_target, 0, Payload::Json("1")).await;
    asker.cancel_raw(asked).await;
    // The target is told to stop ...
    let cancelled = tokio::time::timeout(STEP, async {
        loop {
            if let Got::Cancel { id } = target.next().await {
                return id;
            }
        }
    })
    .await
    .expect("the cancel reached the target");
    assert_eq!(cancelled, at_target);
    // ... and the asker's request ends once, as cancelled.
    let (status, _) = asker.end_of(asked).await;
    assert_eq!(status, Status::CANCELLED);
    server.shutdown().await;
}

#[tokio::test]
async fn a_target_that_vanishes_mid_answer_ends_the_relay_with_an_error() {
    let (server, _dir, mut target, mut asker) = relay_pair().await;
    let body = r#"{"client-id":"target","event":"test/stream"}"#;
    let asked = asker
        .request("sentelite/relay", Payload::Json(body), None)
        .await;
    let at_target = relayed(&mut target).await;
    target.reply(at_target, 0, Payload::Json("\"part\"")).await;
    let Got::Reply { payload, .. } = asker.next().await else {
        panic!("the part reached the asker first");
    };
    assert_eq!(payload, PayloadBuf::Json("\"part\"".into()));
    drop(target);
    let (status, payload) = asker.end_of(asked).await;
    assert_eq!(status, Status::ERROR);
    assert!(
        text(&payload).contains("target connection closed"),
        "{payload:?}"
    );
    server.shutdown().await;
}
