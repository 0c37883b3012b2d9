//! The client's `tracing` layer end to end: events logged with `tracing` macros inside spans
//! reach this server's log store (read back over `GET /api/logs`) with their level, target,
//! message, event id, and the fields of the event and its spans as data; and the client's own
//! sending path, which traces each batch it sends, never turns that into records.

mod support;

use std::time::Duration;

use sentelite_core::log::{FilterConfig, LevelSet};
use sentelite_host::Server;
use sentelite_host::logs::{LogService, LogsSettings};
use sentelite_tokio::tracing_layer::LogLayer;
use sentelite_tokio::{Client, ClientOptions, LogConfig};
use serde_json::{Value, json};
use support::{TempDir, quick_settings, start_with};
use tracing_subscriber::layer::SubscriberExt;

const CLIENT: &str = "tracer-1";

async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    tokio::time::timeout(limit, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting until {what}"));
}

/// The stored records of the test client, oldest first, through the HTTP API.
async fn stored(addr: std::net::SocketAddr) -> Vec<Value> {
    let url = format!("http://{addr}/api/logs?client={CLIENT}&limit=1000");
    let body = tokio::task::spawn_blocking(move || {
        ureq::get(&url)
            .call()
            .expect("GET /api/logs")
            .body_mut()
            .read_to_string()
            .expect("a body")
    })
    .await
    .unwrap();
    let value: Value = serde_json::from_str(&body).expect("JSON");
    let mut records = match value {
        Value::Array(records) => records,
        Value::Object(mut o) => match o.remove("records") {
            Some(Value::Array(records)) => records,
            other => panic!("no records in {other:?}"),
        },
        other => panic!("unexpected answer {other}"),
    };
    records.sort_by_key(|r| r["seq"].as_u64());
    records
}

fn find<'a>(records: &'a [Value], message: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["message"] == message)
        .unwrap_or_else(|| panic!("no record {message:?} in {records:#?}"))
}

/// The client and its layer run on this thread; the server runs on a runtime of its own, so
/// its own `tracing` events stay off this thread's default subscriber.
#[test]
fn events_in_spans_arrive_with_span_fields_and_sending_never_logs() {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = TempDir::new("tracing-layer");
    let (server, _data) = server_rt.block_on(async {
        let logs = LogService::start(&dir.0, &LogsSettings::default()).unwrap();
        start_with(Server::builder().config(quick_settings()).with_logs(logs)).await
    });
    // One thread: the driver task runs where the default subscriber has the layer, so its
    // own batch traces reach the layer and must be left out.
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    client_rt.block_on(log_through_tracing(server.local_addr()));
    server_rt.block_on(server.shutdown());
}

async fn log_through_tracing(addr: std::net::SocketAddr) {
    let mut options = ClientOptions::new(format!("ws://{addr}/ws"), CLIENT);
    options.log = Some(LogConfig {
        filter: FilterConfig {
            levels: LevelSet::ALL,
            ..FilterConfig::default()
        },
        batch_size: 2,
        batch_timeout: sentelite_core::Duration::from_millis(50),
        ..LogConfig::default()
    });
    let client: Client = sentelite_tokio::connect(options).unwrap();
    let default = tracing::subscriber::set_default(
        tracing_subscriber::registry().with(LogLayer::new(&client)),
    );
    wait_until("the client is open", Duration::from_secs(10), || {
        client.is_open()
    })
    .await;

    {
        let pump = tracing::info_span!("pump", pump_id = 3u64, site = "north");
        let _pump = pump.enter();
        let valve = tracing::debug_span!("valve", valve = "v2", open = tracing::field::Empty);
        let _valve = valve.enter();
        valve.record("open", true);
        tracing::warn!(pressure = 7.5, site = "south", "pressure high");
    }
    tracing::error!(
        target: "rover.drive",
        attempt = -2i64,
        sentelite.id = "rover.drive/stalled",
        sentelite.level = "fatal",
        "motor stalled"
    );
    tracing::trace!(target: "rover.drive", "idle");

    // Every batch the driver sends is traced: had the layer logged those, each batch would
    // bring another record and the queue would never settle on exactly three.
    wait_until(
        "the three records are acked",
        Duration::from_secs(10),
        || client.log_stats().is_some_and(|s| s.settled()),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stats = client.log_stats().unwrap();
    assert_eq!(
        (stats.queue.queued, stats.queue.acked, stats.queue.dropped),
        (3, 3, 0),
        "only the application's events were logged"
    );

    let records = stored(addr).await;
    assert_eq!(records.len(), 3, "{records:#?}");
    let warn = find(&records, "pressure high");
    assert_eq!(warn["level"], "warn");
    assert_eq!(warn["ns"], "tracing_layer");
    assert_eq!(warn["id"], Value::Null);
    assert_eq!(
        warn["data"],
        json!({"pump_id": 3, "site": "south", "valve": "v2", "open": true, "pressure": 7.5}),
        "span fields, outermost first, then the event's own (which win)"
    );
    let fatal = find(&records, "motor stalled");
    assert_eq!(fatal["level"], "fatal", "the level field overrides ERROR");
    assert_eq!(fatal["ns"], "rover.drive");
    assert_eq!(fatal["id"], "rover.drive/stalled");
    assert_eq!(fatal["data"], json!({"attempt": -2}));
    let trace = find(&records, "idle");
    assert_eq!(trace["level"], "trace");
    assert!(
        trace["data"].is_null() || trace["data"] == json!({}),
        "no fields, no data: {}",
        trace["data"]
    );

    drop(default);
    client.close().await;
}
