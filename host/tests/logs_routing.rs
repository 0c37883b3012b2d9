//! Trove records published on the `log-routing` channel (sente-lite's log-routing module)
//! enter the log pipeline, tagged with the publisher, while the channel's subscribers still
//! get them; malformed ones are refused and counted without disturbing anything.

mod support;

use std::time::Duration;

use sentelite_core::frame::PayloadBuf;
use sentelite_host::Server;
use sentelite_host::logs::{LOG_ROUTING_CHANNEL, LogQuery, LogService, LogsSettings};
use sentelite_host::translate::edn_to_cbor;
use sentelite_tokio::{Client, ClientEvent, ClientOptions};
use support::{STEP, TempDir, quick_settings, start_with};

/// A server with the log pipeline; the dirs live as long as the returned guard.
async fn log_server() -> (Server, LogService, (TempDir, TempDir)) {
    let dir = TempDir::new("routing-logs");
    let logs = LogService::start(&dir.0, &LogsSettings::default()).unwrap();
    let (server, data) = start_with(
        Server::builder()
            .config(quick_settings())
            .with_logs(logs.clone()),
    )
    .await;
    (server, logs, (dir, data))
}

/// A native client `name`, connected and subscribed to the log-routing channel (so the test
/// also sees that publishing is unchanged); returns it with its uid.
async fn subscribed(server: &Server, name: &str) -> (Client, String) {
    let options = ClientOptions::new(format!("ws://{}/ws", server.local_addr()), name);
    let client = sentelite_tokio::connect(options).unwrap();
    let events = client.events();
    let uid = next_matching(&events, |e| match e {
        ClientEvent::Opened { uid, .. } => Some(uid.clone()),
        _ => None,
    })
    .await;
    client.subscribe(LOG_ROUTING_CHANNEL).await.unwrap();
    next_matching(&events, |e| match e {
        ClientEvent::SubscribeResult {
            subscribed: true, ..
        } => Some(()),
        _ => None,
    })
    .await;
    (client, uid)
}

async fn next_matching<T>(
    events: &sentelite_tokio::Events,
    mut pick: impl FnMut(&ClientEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(STEP, async {
        loop {
            let event = events.recv().await.expect("client running");
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    })
    .await
    .expect("the expected client event within the step")
}

fn edn(text: &str) -> PayloadBuf {
    PayloadBuf::Value(edn_to_cbor(text).unwrap())
}

#[tokio::test]
async fn a_native_clients_log_routing_publish_is_stored_tagged_with_it() {
    let (server, logs, _dirs) = log_server().await;
    let mut live = logs.subscribe();
    let (pad, pad_uid) = subscribed(&server, "pad-3").await;
    let pad_events = pad.events();
    let record = r#"{:ns "my.app", :coords [42 3], :level :warn, :id :my.app/slow,
        :data {:msg "disk slow", :ms 812}, :timestamp 1766200992881, :source "pad"}"#;
    pad.publish(LOG_ROUTING_CHANNEL, edn(record), false)
        .await
        .unwrap();

    let got = tokio::time::timeout(STEP, live.recv())
        .await
        .expect("the record is stored")
        .unwrap();
    assert_eq!(
        (
            got.client_id.as_str(),
            got.uid.as_str(),
            got.ns.as_str(),
            got.level.as_str(),
            got.id.as_deref(),
            got.message.as_str(),
            got.time_ms,
            got.seq,
        ),
        (
            "pad-3",
            pad_uid.as_str(),
            "my.app",
            "warn",
            Some("my.app/slow"),
            "disk slow",
            1766200992881,
            None
        )
    );
    assert_eq!(
        got.data,
        serde_json::json!({ "msg": "disk slow", "ms": 812, "source": "pad", "coords": [42, 3] })
    );
    // The subscriber (here the publisher itself) still gets the message as published.
    let payload = next_matching(&pad_events, |e| match e {
        ClientEvent::ChannelMessage {
            channel, payload, ..
        } if channel == LOG_ROUTING_CHANNEL => Some(payload.clone()),
        _ => None,
    })
    .await;
    assert_eq!(payload, edn(record));

    // The server's own messages on the channel name no client and are not stored.
    server
        .handle()
        .publish(LOG_ROUTING_CHANNEL, edn(r#"{:level :info, :ns "srv"}"#))
        .unwrap();
    next_matching(&pad_events, |e| match e {
        ClientEvent::ChannelMessage { from, .. } if from.is_empty() => Some(()),
        _ => None,
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(logs.read(|s| s.count(&LogQuery::default())).unwrap(), 1);
    pad.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_log_routing_messages_are_refused_and_counted_and_the_rest_goes_on() {
    let (server, logs, _dirs) = log_server().await;
    let mut live = logs.subscribe();
    let (pad, _) = subscribed(&server, "pad-9").await;
    let pad_events = pad.events();
    let malformed = [
        edn("[:not :a :map]"),
        edn(r#"{:ns "my.app", :level :loud}"#),
        PayloadBuf::Bytes(vec![0xff, 0x00, 0x13]),
        PayloadBuf::Value(vec![0xa1]),
    ];
    for payload in malformed {
        pad.publish(LOG_ROUTING_CHANNEL, payload, false)
            .await
            .unwrap();
    }
    pad.publish(
        LOG_ROUTING_CHANNEL,
        edn(r#"{:ns "my.app", :level :error, :data "after the bad ones"}"#),
        false,
    )
    .await
    .unwrap();
    let got = tokio::time::timeout(STEP, live.recv())
        .await
        .expect("the good record is stored")
        .unwrap();
    assert_eq!(
        (got.level.as_str(), &got.data),
        ("error", &serde_json::json!("after the bad ones"))
    );
    // Every message, malformed or not, still reached the subscriber: observing changes no
    // delivery.
    for _ in 0..5 {
        next_matching(&pad_events, |e| {
            matches!(e, ClientEvent::ChannelMessage { .. }).then_some(())
        })
        .await;
    }
    assert!(pad.is_open());
    assert_eq!(logs.read(|s| s.count(&LogQuery::default())).unwrap(), 1);
    logs.flush().await;
    let counters = logs.read(|s| s.counters()).unwrap();
    let pad_counters = counters
        .iter()
        .find(|c| c.client_id == "pad-9")
        .expect("counters for the publisher");
    assert_eq!((pad_counters.records, pad_counters.errors), (1, 4));
    pad.close().await;
    server.shutdown().await;
}
