//! Real outside peers against the real `sentelite serve` binary, next to a native Rust
//! device (the tokio client) on the same channel: the sente-lite peer of `tests/peers/`
//! (ClojureScript under nbb, so the server's EDN meets the real `read-string` and `pr-str`)
//! and the plain JavaScript JSON-dialect peer.
//!
//! Needs `node` and `npm ci --prefix tests/peers`; without them each test skips loudly, or
//! fails under `SENTELITE_REQUIRE_PEERS=1` (see `sentelite_integration_tests::peers`).

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use sentelite_host::translate::{cbor_to_edn, cbor_to_json, edn_to_cbor};
use sentelite_integration_tests::ServeProcess;
use sentelite_integration_tests::peers::{Peer, available};
use sentelite_integration_tests::serve::sentelite_binary;
use sentelite_tokio::{Client, ClientEvent, ClientOptions, Events, PayloadBuf};
use serde_json::{Value, json};

/// Short heartbeats, so the server's pings show within the test and a peer that did not
/// answer them would be closed within it.
const CONFIG: &str = "heartbeat-interval-ms = 300\nheartbeat-timeout-ms = 1500\n";
const ROOM: &str = "peer-room";
const STEP: Duration = Duration::from_secs(10);
/// nbb needs a few seconds to start on a loaded machine.
const PEER_START: Duration = Duration::from_secs(30);

/// A native device on `runtime`, connected to `server` and joined to [`ROOM`]; returns it,
/// its events and its uid.
fn device(runtime: &tokio::runtime::Runtime, server: &ServeProcess) -> (Client, Events, String) {
    runtime.block_on(async {
        let mut options = ClientOptions::new(server.ws_url.clone(), "peer-room-device");
        options.backoff_initial = Duration::from_millis(100);
        options.backoff_max = Duration::from_millis(500);
        let client = sentelite_tokio::connect(options).unwrap();
        let events = client.events();
        let uid = joined(&client, &events).await;
        (client, events, uid)
    })
}

/// Waits for the device's (next) handshake and subscribes it to [`ROOM`] (again: after a
/// reconnect the client re-subscribes on its own, which the answer confirms); returns its
/// uid.
async fn joined(client: &Client, events: &Events) -> String {
    let uid = next_event(events, "device handshake", |e| match e {
        ClientEvent::Opened { uid, .. } => Some(uid.clone()),
        _ => None,
    })
    .await;
    client.subscribe(ROOM).await.unwrap();
    next_event(events, "device subscribed", |e| match e {
        ClientEvent::SubscribeResult {
            channel,
            subscribed: true,
            ..
        } if channel == ROOM => Some(()),
        _ => None,
    })
    .await;
    uid
}

async fn next_event<T>(
    events: &Events,
    what: &str,
    mut pick: impl FnMut(&ClientEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(STEP, async {
        loop {
            let event = events.recv().await.expect("device running");
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {what} within {STEP:?}"))
}

/// The next channel message the device gets on [`ROOM`] from `from`: its payload.
fn device_receives(runtime: &tokio::runtime::Runtime, events: &Events, from: &str) -> PayloadBuf {
    runtime.block_on(next_event(
        events,
        "channel message at the device",
        |e| match e {
            ClientEvent::ChannelMessage {
                channel,
                from: sender,
                payload,
            } if channel == ROOM && sender == from => Some(payload.clone()),
            _ => None,
        },
    ))
}

/// EDN text as the server's translator writes it, so two EDN texts of one value compare
/// equal however they were printed.
fn canonical_edn(text: &str) -> String {
    cbor_to_edn(&edn_to_cbor(text).unwrap_or_else(|e| panic!("not EDN ({e}): {text}"))).unwrap()
}

/// EDN text as a value whose equality ignores map order: JSON from the translator, with
/// every keyword still marked by its colon (its EDN form) so it cannot equal a string.
fn same_value(text: &str) -> Value {
    let cbor = edn_to_cbor(text).unwrap_or_else(|e| panic!("not EDN ({e}): {text}"));
    let json = cbor_to_json(&cbor).unwrap();
    let keywords: BTreeSet<String> = cbor_to_edn(&cbor)
        .unwrap()
        .split(|c: char| c.is_whitespace() || "{}[](),".contains(c))
        .filter(|token| token.starts_with(':'))
        .map(str::to_owned)
        .collect();
    json!({ "value": json, "keywords": keywords })
}

fn value_payload(payload: &PayloadBuf) -> &[u8] {
    match payload {
        PayloadBuf::Value(bytes) => bytes,
        other => panic!("expected a CBOR Value payload, got {other:?}"),
    }
}

/// The records `client` has in the store, through `sentelite logs query --server`, once
/// there are at least `count` (polled, bounded).
fn stored_logs(server: &ServeProcess, client: &str, count: usize) -> Vec<Value> {
    let url = format!("http://{}", server.addr);
    let deadline = Instant::now() + STEP;
    loop {
        let out = Command::new(sentelite_binary())
            .args([
                "logs", "query", "--server", &url, "--client", client, "--json",
            ])
            .output()
            .expect("run sentelite logs query");
        assert!(
            out.status.success(),
            "sentelite logs query failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let records: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON record per line"))
            .collect();
        if records.len() >= count {
            return records;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {count} records of {client} stored: {records:?}",
            records.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_nbb_peer_shares_a_channel_with_a_device_ships_logs_and_survives_a_restart() {
    if !available("the nbb sente-lite peer test") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut server = ServeProcess::start_with_config(CONFIG);
    let (device_client, device_events, device_uid) = device(&runtime, &server);
    let mut peer = Peer::sente_lite(
        &server.ws_url,
        ROOM,
        "{:backoff-ms 100, :backoff-max-ms 800, :max-attempts 40, :deadline-ms 120000}",
    );

    // Handshake: a server-assigned uid, then the peer joins the room.
    let handshake = peer.expect("handshake", PEER_START);
    let peer_uid = handshake["uid"].as_str().expect("uid").to_owned();
    assert!(peer_uid.starts_with("conn-"), "{handshake}");
    assert_eq!(handshake["first"], true);
    let subscribed = peer.expect("subscribed", STEP);
    assert_eq!(
        (&subscribed["channel"], &subscribed["success"]),
        (&json!(ROOM), &json!(true))
    );

    // Ping/pong both ways: the peer's ping is answered, and the server's pings are answered
    // by the peer well enough that it outlives the heartbeat timeout.
    peer.send(json!({ "cmd": "ping" }));
    peer.expect("pong", STEP);
    let during = peer.observe_for(Duration::from_millis(2500));
    let pings = during.iter().filter(|o| o["event"] == "ping").count();
    assert!(pings >= 3, "server pings seen: {during:?}");
    assert!(
        !during.iter().any(|o| o["event"] == "closed"),
        "closed despite answering pings: {during:?}"
    );

    // Device → peer: the CBOR Value arrives as EDN with the same content, as ClojureScript's
    // `=` judges it (a map of more than eight entries is a hash map there, printed in its
    // own order). No integral floats: ClojureScript's numbers are JavaScript's, so 1.0 is 1.
    let from_device = r#"{:temp 21.5, :unit "°C", :tags [:a :b/c], :ok true, :none nil,
        :n -7, :big 9007199254740991, :s "quote \" and \\ backslash",
        :id #uuid "8e1d4a4e-0000-4000-8000-000000000001"}"#;
    peer.send(json!({ "cmd": "expect", "channel": ROOM, "edn": from_device }));
    peer.expect_where("the expectation in place", STEP, |o| {
        o["event"] == "expecting"
    });
    runtime
        .block_on(device_client.publish(
            ROOM,
            PayloadBuf::Value(edn_to_cbor(from_device).unwrap()),
            false,
        ))
        .unwrap();
    let seen = peer.expect_where("the device's message", STEP, |o| {
        o["event"] == "channel-msg" && o["from"] == device_uid.as_str()
    });
    assert_eq!(
        (&seen["channel"], &seen["matches"]),
        (&json!(ROOM), &json!(true)),
        "the peer read {seen}"
    );
    // And read back here, the peer's print of it is the same value too.
    assert_eq!(
        same_value(seen["edn"].as_str().unwrap()),
        same_value(from_device)
    );

    // Sets and instants too, judged by ClojureScript's `=` alone (a set prints in hash order).
    let with_set = r#"{:set #{1 :a "s" [2 3]}, :at #inst "2026-01-01T00:00:00.000-00:00"}"#;
    peer.send(json!({ "cmd": "expect", "channel": ROOM, "edn": with_set }));
    peer.expect_where("the expectation in place", STEP, |o| {
        o["event"] == "expecting"
    });
    runtime
        .block_on(device_client.publish(
            ROOM,
            PayloadBuf::Value(edn_to_cbor(with_set).unwrap()),
            false,
        ))
        .unwrap();
    let seen = peer.expect_where("the device's set", STEP, |o| {
        o["event"] == "channel-msg" && o["from"] == device_uid.as_str()
    });
    assert_eq!(seen["matches"], true, "the peer read {seen}");

    // Peer → device: the peer's pr-str EDN arrives as a CBOR Value with the same content.
    let from_peer =
        r#"{:from-peer [1 2.25 "x"], :kw :peer/yes, :nested {:deep {:deeper [nil false]}}}"#;
    peer.send(json!({ "cmd": "publish", "channel": ROOM, "edn": from_peer }));
    let payload = device_receives(&runtime, &device_events, &peer_uid);
    assert_eq!(
        cbor_to_edn(value_payload(&payload)).unwrap(),
        canonical_edn(from_peer)
    );

    // An event no handler takes comes back as an echo; an unsubscribe is answered as one.
    peer.send(json!({ "cmd": "send", "edn": "[:sentelite.peer/unhandled {:a 1}]" }));
    let echo = peer.expect("echo", STEP);
    assert_eq!(echo["original-event-id"], ":sentelite.peer/unhandled");
    assert_eq!(canonical_edn(echo["edn"].as_str().unwrap()), "{:a 1}");

    // Trove-shaped logs: one telemetry/log-msg per level and one log-routing publish, all
    // stored under the peer's uid (a sente-lite client's client id is its uid).
    peer.send(json!({ "cmd": "logs", "tag": "before-restart" }));
    peer.expect("logs-sent", STEP);
    let records = stored_logs(&server, &peer_uid, 8);
    assert_eq!(records.len(), 8, "{records:?}");
    let levels: BTreeSet<&str> = records
        .iter()
        .map(|r| r["level"].as_str().unwrap())
        .collect();
    assert_eq!(
        levels,
        BTreeSet::from(["trace", "debug", "info", "warn", "error", "fatal", "report"])
    );
    for record in &records {
        assert_eq!(
            (&record["uid"], &record["client-id"]),
            (&json!(peer_uid), &json!(peer_uid))
        );
        assert_eq!(record["ns"], "sentelite.peer");
        assert_eq!(record["id"], "sentelite.peer/tick");
        assert_eq!(record["data"]["tag"], "before-restart");
        let level = record["level"].as_str().unwrap();
        assert_eq!(record["message"], format!("tick before-restart {level}"));
    }
    let routed: Vec<&Value> = records.iter().filter(|r| r["data"]["n"] == 99).collect();
    assert_eq!(
        routed.len(),
        1,
        "one record came by log-routing: {records:?}"
    );
    assert_eq!(
        (&routed[0]["data"]["source"], &routed[0]["data"]["coords"]),
        (&json!("sente-lite-peer"), &json!([12, 3]))
    );

    // The server dies and comes back on the same port: the peer reconnects with backoff,
    // gets a new handshake, re-joins the room, and messages flow both ways again.
    server.restart();
    peer.expect("closed", STEP);
    let again = peer.expect("handshake", Duration::from_secs(20));
    assert_eq!(again["connection"], 2);
    let new_uid = again["uid"].as_str().unwrap().to_owned();
    assert_eq!(peer.expect("subscribed", STEP)["channel"], ROOM);
    let device_uid = runtime.block_on(joined(&device_client, &device_events));
    runtime
        .block_on(device_client.publish(
            ROOM,
            PayloadBuf::Value(edn_to_cbor("{:after :restart}").unwrap()),
            false,
        ))
        .unwrap();
    let seen = peer.expect_where("the device's message after the restart", STEP, |o| {
        o["event"] == "channel-msg" && o["from"] == device_uid.as_str()
    });
    assert_eq!(
        canonical_edn(seen["edn"].as_str().unwrap()),
        "{:after :restart}"
    );
    peer.send(json!({ "cmd": "publish", "channel": ROOM, "edn": "{:back true}" }));
    let payload = device_receives(&runtime, &device_events, &new_uid);
    assert_eq!(
        cbor_to_edn(value_payload(&payload)).unwrap(),
        "{:back true}"
    );

    peer.send(json!({ "cmd": "unsubscribe", "channel": ROOM }));
    let left = peer.expect("unsubscribed", STEP);
    assert_eq!(
        (&left["channel"], &left["success"]),
        (&json!(ROOM), &json!(true))
    );

    let status = peer.quit(STEP);
    assert!(status.success(), "the peer exited with {status}");
    runtime.block_on(device_client.close());
}

#[test]
fn the_json_peer_handshakes_pings_publishes_and_logs() {
    if !available("the JSON peer test") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = ServeProcess::start_with_config(CONFIG);
    let (device_client, device_events, device_uid) = device(&runtime, &server);
    let url = format!("{}?dialect=json", server.ws_url);
    let mut peer = Peer::json(&url, ROOM, "{}");

    let handshake = peer.expect("handshake", PEER_START);
    let peer_uid = handshake["uid"].as_str().expect("uid").to_owned();
    assert!(handshake["data"].is_object(), "{handshake}");
    assert_eq!(peer.expect("subscribed", STEP)["success"], true);
    peer.send(json!({ "cmd": "ping" }));
    peer.expect("pong", STEP);
    peer.expect("ping", STEP);

    // Device → peer: keywords reach JSON as strings without their colon.
    runtime
        .block_on(device_client.publish(
            ROOM,
            PayloadBuf::Value(
                edn_to_cbor(r#"{:temp 21.5, :unit "C", :state :ok/on, :list [1 nil]}"#).unwrap(),
            ),
            false,
        ))
        .unwrap();
    let seen = peer.expect_where("the device's message", STEP, |o| {
        o["event"] == "channel-msg" && o["from"] == device_uid.as_str()
    });
    assert_eq!(
        seen["data"],
        json!({ "temp": 21.5, "unit": "C", "state": "ok/on", "list": [1, null] })
    );

    // Peer → device: the JSON object arrives as a CBOR Value with text keys.
    let data = json!({ "n": 1, "list": [1, "a", null, 2.5], "ok": false });
    peer.send(json!({ "cmd": "publish", "channel": ROOM, "data": data }));
    let payload = device_receives(&runtime, &device_events, &peer_uid);
    assert_eq!(cbor_to_json(value_payload(&payload)).unwrap(), data);
    let edn = cbor_to_edn(value_payload(&payload)).unwrap();
    assert!(
        edn.contains(r#""n" 1"#) && !edn.contains(":n"),
        "JSON keys stay text: {edn}"
    );

    // A log record with text keys is stored under the peer's uid.
    peer.send(json!({ "cmd": "log", "level": "error", "msg": "from plain JS" }));
    peer.expect("log-sent", STEP);
    let records = stored_logs(&server, &peer_uid, 1);
    assert_eq!(
        (
            &records[0]["level"],
            &records[0]["message"],
            &records[0]["uid"]
        ),
        (&json!("error"), &json!("from plain JS"), &json!(peer_uid))
    );

    let status = peer.quit(STEP);
    assert!(status.success(), "the peer exited with {status}");
    runtime.block_on(device_client.close());
}
