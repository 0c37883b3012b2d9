//! `sentelite/relay` is closed unless the settings open it, and then only for the
//! listed events and to devices that declared `RELAY_TARGET`; a second live connection
//! claiming a connected client id is refused with `DUPLICATE_CLIENT`.

use std::time::Duration;

use sentelite_core::codec;
use sentelite_core::frame::CloseCode;
use sentelite_core::frame::{Frame, Payload, Request, Status};
use sentelite_hostile_tests::device::{ANSWER, AnsweringDevice};
use sentelite_hostile_tests::within;
use sentelite_hostile_tests::ws::{HelloAnswer, HelloFields, Peer};

use crate::target::Target;

/// `capability::RELAY_TARGET`: the client accepts relayed requests.
const RELAY_TARGET: u32 = 1 << 5;
/// `DUPLICATE_CLIENT`: the client id has a live connection and the policy refuses another.
const DUPLICATE_CLIENT: CloseCode = CloseCode(11);
/// `REPLACED`: this connection was replaced by a newer one of the same client.
const REPLACED: CloseCode = CloseCode(12);

/// A raw client asking for relays: it reads the End frames as the server sent them.
struct Asker {
    peer: Peer,
    next_id: u32,
}

impl Asker {
    async fn join(addr: &str) -> Asker {
        let peer = Peer::welcomed(addr, &HelloFields::new("relay-asker")).await;
        Asker { peer, next_id: 1 }
    }

    /// Asks the server to relay `event` to `client_id`; returns the End's status and JSON.
    async fn relay(&mut self, client_id: &str, event: &str) -> (Status, Option<String>) {
        let id = self.next_id;
        self.next_id += 1;
        let body = format!(
            r#"{{"client-id":"{client_id}","event":"{event}","timeout-ms":2000,"data":{{}}}}"#
        );
        self.peer
            .send_frame(&Frame::Request(Request {
                id,
                event: "sentelite/relay",
                timeout_ms: 0,
                payload: Payload::Json(&body),
            }))
            .await;
        let answer = async {
            while let Some(bytes) = self.peer.next_frame(Duration::from_secs(10)).await {
                if let Ok(Frame::End(end)) = codec::decode(&bytes)
                    && end.id == id
                {
                    let json = match end.payload {
                        Payload::Json(json) => Some(json.to_owned()),
                        _ => None,
                    };
                    return (end.status, json);
                }
            }
            panic!("connection ended before the relay of {event} was answered");
        };
        within(Duration::from_secs(10), "the relay's answer", answer).await
    }
}

/// Asserts a refusal: `status`, and a JSON payload whose `refused` names `reason`
/// (`relay-disabled` with `unsupported`; `event-not-allowed`, `not-a-relay-target` with
/// `error`).
fn assert_refused(answer: &(Status, Option<String>), status: Status, reason: &str, what: &str) {
    assert_eq!(
        answer.0, status,
        "{what}: expected a refusal, got {answer:?}"
    );
    let json = answer
        .1
        .as_deref()
        .unwrap_or_else(|| panic!("{what}: no JSON reason"));
    let body: serde_json::Value = serde_json::from_str(json).expect("refusal JSON");
    assert_eq!(body["refused"], reason, "{what}: {json}");
}

fn assert_answered(answer: &(Status, Option<String>), what: &str) {
    assert_eq!(answer, &(Status::OK, Some(ANSWER.to_owned())), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_is_off_by_default() {
    let target = Target::start("").await;
    let device = AnsweringDevice::join(&target.server.ws_url, "device", RELAY_TARGET).await;
    let mut asker = Asker::join(target.addr()).await;
    for event in ["demo/ping", "nrepl/eval", "sentelite/echo"] {
        let outcome = asker.relay("device", event).await;
        let what = format!("relay of {event} with default settings");
        assert_refused(&outcome, Status::UNSUPPORTED, "relay-disabled", &what);
    }
    assert_eq!(
        device.asked(),
        Vec::<String>::new(),
        "the device was reached"
    );
    device.leave().await;
    target.assert_survived("relay with default settings").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_reaches_only_listed_events_on_capable_devices() {
    let target =
        Target::start("relay-enabled = true\nrelay-events = [\"demo/*\", \"tool/run\"]\n").await;
    let url = target.server.ws_url.clone();
    let capable = AnsweringDevice::join(&url, "capable", RELAY_TARGET).await;
    let incapable = AnsweringDevice::join(&url, "incapable", 0).await;
    let mut asker = Asker::join(target.addr()).await;

    assert_answered(&asker.relay("capable", "demo/ping").await, "demo/ping");
    assert_answered(&asker.relay("capable", "tool/run").await, "tool/run");
    for event in [
        "nrepl/eval",
        "demo",
        "demo-x/ping",
        "tool/run2",
        "sentelite/relay",
    ] {
        let outcome = asker.relay("capable", event).await;
        let what = format!("unlisted event {event}");
        assert_refused(&outcome, Status::ERROR, "event-not-allowed", &what);
    }
    let outcome = asker.relay("incapable", "demo/ping").await;
    let what = "a device without RELAY_TARGET";
    assert_refused(&outcome, Status::ERROR, "not-a-relay-target", what);

    assert_eq!(capable.asked(), ["demo/ping", "tool/run"]);
    assert_eq!(incapable.asked(), Vec::<String>::new());
    capable.leave().await;
    incapable.leave().await;
    target.assert_survived("relay policy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_live_connection_of_a_client_id_is_refused() {
    let target = Target::start("").await;
    let addr = target.addr().to_owned();
    let mut original = HelloFields::new("device-d");
    original.boot_id = 7;
    let first = Peer::welcomed(&addr, &original).await;

    // An impostor (another boot) claiming the live id is refused with the typed close.
    let mut impostor = original.clone();
    impostor.boot_id = 8;
    let (_, answer) = Peer::handshake(&addr, &impostor).await;
    let HelloAnswer::Refused(ending) = answer else {
        panic!("second live connection of device-d welcomed");
    };
    assert_eq!(ending.frame_code, Some(DUPLICATE_CLIENT), "{ending:?}");
    assert_eq!(
        ending.websocket_code,
        Some(DUPLICATE_CLIENT.websocket_code()),
        "{ending:?}"
    );

    // The same device (same boot id) reconnecting after losing its link gets in, and the
    // connection it left behind is closed as replaced.
    let (_again, answer) = Peer::handshake(&addr, &original).await;
    assert!(
        matches!(answer, HelloAnswer::Welcome { .. }),
        "the same device reconnecting was refused: {answer:?}"
    );
    let ending = first.ending(Duration::from_secs(5)).await;
    assert_eq!(ending.frame_code, Some(REPLACED), "{ending:?}");
    target.assert_survived("duplicate client id").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_id_is_free_again_once_its_heartbeat_failed() {
    let config = "heartbeat-interval-ms = 200\nheartbeat-timeout-ms = 600\n";
    let target = Target::start(config).await;
    let addr = target.addr().to_owned();
    // A connection that never pings: its heartbeat fails after 600 ms.
    let mut stale = HelloFields::new("device-s");
    stale.boot_id = 1;
    let silent = Peer::welcomed(&addr, &stale).await;
    let ending = silent.ending(Duration::from_secs(5)).await;
    assert_eq!(ending.frame_code, Some(CloseCode::HEARTBEAT_TIMEOUT));
    let mut rebooted = stale.clone();
    rebooted.boot_id = 2;
    let (_peer, answer) = Peer::handshake(&addr, &rebooted).await;
    assert!(
        matches!(answer, HelloAnswer::Welcome { .. }),
        "device-s refused after its old connection died: {answer:?}"
    );
    target.assert_survived("stale client id").await;
}
