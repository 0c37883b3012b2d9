//! The log pipeline: the SQLite store on a real file (dedup, gaps, counters, queries,
//! retention, persistence), the rotating JSON-lines file, and the server end to end — a native
//! client's `telemetry/log-batch` acknowledged only once stored, a resend stored once, a malformed batch
//! refused and counted, sente-lite's `telemetry/log-msg`, and the live feed.

mod support;

use std::time::Duration;

use sentelite_core::frame::Payload;
use sentelite_core::log::{
    BATCH_EVENT, Level, LogConfig, LogShipper, NewRecord, Overflow, QueueConfig,
};
use sentelite_core::{Instant, Status};
use sentelite_host::Server;
use sentelite_host::logs::{
    GapEntry, IngestBatch, LogEntry, LogQuery, LogService, LogStore, LogsSettings,
};
use support::{Got, STEP, TempDir, TestClient, quick_settings, start_with};

fn entry(client: &str, seq: u32, level: Level, message: &str, received_ms: u64) -> LogEntry {
    LogEntry {
        client_id: client.into(),
        boot_id: 7,
        seq: Some(seq),
        uid: "u".into(),
        time_ms: 1000 + u64::from(seq),
        received_ms,
        level: level.name().into(),
        ns: "app.sensor".into(),
        id: seq.is_multiple_of(2).then(|| "app/even".into()),
        message: message.into(),
        data: serde_json::json!({ "n": seq }),
    }
}

fn batch(client: &str, records: Vec<LogEntry>, gap: Option<GapEntry>) -> IngestBatch {
    IngestBatch {
        client_id: client.into(),
        bytes: 100,
        received_ms: 5000,
        records,
        gap,
    }
}

fn gap(client: &str, first: u32, last: u32, count: u32) -> GapEntry {
    let mut by_level = [0; 7];
    by_level[Level::Debug.index()] = count;
    GapEntry {
        client_id: client.into(),
        boot_id: 7,
        count,
        by_level,
        first_seq: first,
        last_seq: last,
        first_time_ms: 1,
        last_time_ms: 2,
        received_ms: 5000,
    }
}

#[test]
fn the_store_keeps_each_record_and_gap_once_and_counts_per_client() {
    let dir = TempDir::new("store");
    std::fs::create_dir_all(&dir.0).unwrap();
    let mut store = LogStore::open(&dir.0).unwrap();
    let first = batch(
        "dev-a",
        (0..3)
            .map(|s| entry("dev-a", s, Level::Warn, "m", 5000))
            .collect(),
        Some(gap("dev-a", 3, 4, 2)),
    );
    let again = first.clone();
    let outcomes = store.insert(&[first, again]).unwrap();
    assert_eq!(
        (
            outcomes[0].stored,
            outcomes[0].duplicates,
            outcomes[0].new_gap
        ),
        (3, 0, true)
    );
    assert_eq!(
        (
            outcomes[1].stored,
            outcomes[1].duplicates,
            outcomes[1].new_gap
        ),
        (0, 3, false)
    );
    assert_eq!(outcomes[1].fresh, vec![false; 3]);
    // The same seq from another boot or client is another record.
    let mut other_boot = entry("dev-a", 0, Level::Warn, "m", 5000);
    other_boot.boot_id = 8;
    store
        .insert(&[
            batch("dev-a", vec![other_boot], None),
            batch(
                "dev-b",
                vec![entry("dev-b", 0, Level::Error, "m", 5000)],
                None,
            ),
        ])
        .unwrap();
    assert_eq!(store.count(&LogQuery::default()).unwrap(), 5);
    let counters = store.counters().unwrap();
    assert_eq!(counters.len(), 2);
    let a = &counters[0];
    assert_eq!(
        (
            a.client_id.as_str(),
            a.records,
            a.duplicates,
            a.gaps,
            a.dropped,
            a.bytes
        ),
        ("dev-a", 4, 3, 1, 2, 300)
    );
    assert_eq!(
        store.gaps(Some("dev-a")).unwrap(),
        vec![gap("dev-a", 3, 4, 2)]
    );
    assert!(store.gaps(Some("dev-b")).unwrap().is_empty());
    // The file is a real SQLite database that outlives the connection.
    let path = store.path().to_path_buf();
    drop(store);
    assert!(path.metadata().unwrap().len() > 0);
    let reopened = LogStore::open(&dir.0).unwrap();
    assert_eq!(reopened.count(&LogQuery::default()).unwrap(), 5);
    let got = reopened
        .query(&LogQuery {
            client: Some("dev-b".into()),
            ..LogQuery::default()
        })
        .unwrap();
    assert_eq!(got, vec![entry("dev-b", 0, Level::Error, "m", 5000)]);
}

#[test]
fn queries_filter_by_level_client_id_time_and_text() {
    let dir = TempDir::new("query");
    std::fs::create_dir_all(&dir.0).unwrap();
    let mut store = LogStore::open(&dir.0).unwrap();
    let levels = [
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
        Level::Fatal,
    ];
    let records: Vec<LogEntry> = (0..10)
        .map(|s| {
            entry(
                if s < 5 { "dev-a" } else { "dev-b" },
                s,
                levels[s as usize % 5],
                if s == 7 { "disk full on /data" } else { "tick" },
                1000 * u64::from(s),
            )
        })
        .collect();
    store.insert(&[batch("dev-a", records, None)]).unwrap();
    let seqs = |q: LogQuery| -> Vec<u32> {
        store
            .query(&q)
            .unwrap()
            .iter()
            .map(|e| e.seq.unwrap())
            .collect()
    };
    let q = LogQuery::default;
    assert_eq!(
        seqs(LogQuery {
            level: Some("warn".into()),
            ..q()
        }),
        vec![2, 3, 4, 7, 8, 9]
    );
    assert_eq!(
        seqs(LogQuery {
            level: Some("ERROR".into()),
            client: Some("dev-b".into()),
            ..q()
        }),
        vec![8, 9]
    );
    assert_eq!(
        seqs(LogQuery {
            id: Some("app/even".into()),
            ..q()
        }),
        vec![0, 2, 4, 6, 8]
    );
    assert_eq!(
        seqs(LogQuery {
            since_ms: Some(3000),
            until_ms: Some(6000),
            ..q()
        }),
        vec![3, 4, 5]
    );
    assert_eq!(
        seqs(LogQuery {
            grep: Some("disk full".into()),
            ..q()
        }),
        vec![7]
    );
    assert_eq!(
        seqs(LogQuery { limit: 3, ..q() }),
        vec![7, 8, 9],
        "the newest, oldest first"
    );
    assert_eq!(
        store
            .count(&LogQuery {
                level: Some("warn".into()),
                limit: 1,
                ..q()
            })
            .unwrap(),
        6
    );
    assert!(
        store
            .query(&LogQuery {
                level: Some("loud".into()),
                ..q()
            })
            .is_err()
    );
    // The live tail applies the same filters in memory.
    let all = store.query(&q()).unwrap();
    let filter = LogQuery {
        level: Some("warn".into()),
        client: Some("dev-a".into()),
        ..q()
    };
    let in_memory: Vec<u32> = all
        .iter()
        .filter(|e| filter.matches(e))
        .map(|e| e.seq.unwrap())
        .collect();
    assert_eq!(in_memory, vec![2, 3, 4]);
}

#[test]
fn retention_drops_old_and_excess_records() {
    let dir = TempDir::new("retain");
    std::fs::create_dir_all(&dir.0).unwrap();
    let mut store = LogStore::open(&dir.0).unwrap();
    let records = (0..10)
        .map(|s| entry("d", s, Level::Warn, "m", 100 * u64::from(s)))
        .collect();
    store.insert(&[batch("d", records, None)]).unwrap();
    assert_eq!(store.retain(Some(300), None).unwrap(), 3);
    assert_eq!(store.retain(None, Some(4)).unwrap(), 3);
    let left: Vec<u32> = store
        .query(&LogQuery::default())
        .unwrap()
        .iter()
        .map(|e| e.seq.unwrap())
        .collect();
    assert_eq!(left, vec![6, 7, 8, 9]);
    assert_eq!(store.retain(None, Some(4)).unwrap(), 0);
}

#[test]
fn the_log_file_rotates_and_keeps_its_limit_of_old_files() {
    use sentelite_host::logs::sink::FileSink;
    let dir = TempDir::new("sink");
    let mut sink = FileSink::open(&dir.0, 1024, 2).unwrap();
    let e = entry("d", 1, Level::Warn, &"x".repeat(200), 0);
    for _ in 0..30 {
        sink.append([&e]).unwrap();
    }
    let logs = dir.0.join("logs");
    let current = std::fs::read_to_string(logs.join("all-clients.log")).unwrap();
    let line: LogEntry = serde_json::from_str(current.lines().next().unwrap()).unwrap();
    assert_eq!(line, e);
    assert!(logs.join("all-clients.log.1").exists() && logs.join("all-clients.log.2").exists());
    assert!(!logs.join("all-clients.log.3").exists());
    for name in ["all-clients.log", "all-clients.log.1"] {
        let len = std::fs::metadata(logs.join(name)).unwrap().len();
        assert!(len <= 1024 + 512, "{name} is {len} bytes");
    }
}

/// A server with the log pipeline, its service for queries, and its data dir.
async fn log_server() -> (Server, LogService, TempDir) {
    let dir = TempDir::new("logsrv");
    let logs = LogService::start(&dir.0, &LogsSettings::default()).unwrap();
    let (server, _unused) = start_with(
        Server::builder()
            .config(quick_settings())
            .data_dir(&dir.0)
            .with_logs(logs.clone()),
    )
    .await;
    (server, logs, dir)
}

fn record(level: Level, time_ms: u64, message: &str) -> NewRecord<'_> {
    NewRecord {
        time_ms,
        level,
        namespace: "app.pump",
        id: Some("app.pump/state"),
        message,
        data: &[],
    }
}

/// Sends one batch payload as a `telemetry/log-batch` request and returns the final status.
async fn send_batch(client: &mut TestClient, payload: &[u8]) -> (Status, String) {
    let id = client
        .request(BATCH_EVENT, Payload::Bytes(payload), Some(STEP))
        .await;
    loop {
        if let Got::End {
            id: end,
            status,
            payload,
        } = client.next().await
            && end == id
        {
            return (status, format!("{payload:?}"));
        }
    }
}

#[tokio::test]
async fn a_batch_is_acked_once_stored_and_a_resend_is_stored_once() {
    let (server, logs, dir) = log_server().await;
    let mut client = TestClient::open(server.local_addr(), "pump-1").await;
    let mut live = logs.subscribe();
    let mut queue = [0u8; 2048];
    let config = LogConfig {
        queue: QueueConfig {
            max_records: 4,
            overflow: Overflow::DropOldest,
            ..QueueConfig::default()
        },
        ..LogConfig::default()
    };
    let mut shipper = LogShipper::new(&mut queue, config, 0);
    shipper.on_connected(Instant::ZERO);
    for t in 0..6 {
        shipper.log(
            Instant::ZERO,
            &record(Level::Error, 10 + t, "pressure high"),
        );
    }
    let mut out = [0u8; 400];
    let ready = shipper
        .poll_batch(Instant::from_millis(10_000), &mut out)
        .expect("a batch is due");
    assert_eq!(ready.records, 4);
    let payload = out[..ready.len].to_vec();
    let (status, detail) = send_batch(&mut client, &payload).await;
    assert_eq!(status, Status::OK, "{detail}");
    // The ack came after the commit: the records are in the store now.
    let stored = logs.read(|s| s.query(&LogQuery::default())).unwrap();
    let seqs: Vec<Option<u32>> = stored.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![Some(2), Some(3), Some(4), Some(5)]);
    assert!(
        stored
            .iter()
            .all(|e| e.client_id == "pump-1" && e.level == "error" && e.ns == "app.pump")
    );
    let gaps = logs.read(|s| s.gaps(Some("pump-1"))).unwrap();
    assert_eq!(
        gaps.iter()
            .map(|g| (g.count, g.first_seq, g.last_seq))
            .collect::<Vec<_>>(),
        vec![(2, 0, 1)]
    );
    let live_seqs: Vec<Option<u32>> = (0..4).map(|_| live.try_recv().unwrap().seq).collect();
    assert_eq!(live_seqs, seqs);
    // The ack was lost, say: the same batch comes again and changes nothing.
    let (status, _) = send_batch(&mut client, &payload).await;
    assert_eq!(status, Status::OK);
    assert_eq!(logs.read(|s| s.count(&LogQuery::default())).unwrap(), 4);
    assert!(live.try_recv().is_err(), "duplicates are not fed live");
    let counters = logs.read(LogStore::counters).unwrap();
    assert_eq!(
        (
            counters[0].records,
            counters[0].duplicates,
            counters[0].dropped
        ),
        (4, 4, 2)
    );
    // Counters are kept in memory between writes; a flush (the server's clean stop) puts
    // them in the table, where a connection of its own finds them.
    logs.flush().await;
    let on_file = LogStore::open(&dir.0).unwrap().counters().unwrap();
    assert_eq!(
        (
            on_file[0].records,
            on_file[0].duplicates,
            on_file[0].dropped
        ),
        (4, 4, 2)
    );
    // And the JSON-lines file holds each record once.
    let file = std::fs::read_to_string(dir.0.join("logs/all-clients.log")).unwrap();
    assert_eq!(file.lines().count(), 4);
    server.shutdown().await;
}

#[tokio::test]
async fn a_malformed_batch_is_refused_whole_and_counted() {
    let (server, logs, _dir) = log_server().await;
    let mut client = TestClient::open(server.local_addr(), "bad-1").await;
    // Version 1, no gap, two records announced, only garbage after.
    let (status, detail) = send_batch(&mut client, &[1, 0, 2, 0, 0, 0, 7, 7, 7]).await;
    assert_eq!(status, Status::ERROR);
    assert!(detail.contains("log batch"), "{detail}");
    let id = client
        .request(BATCH_EVENT, Payload::Json("{}"), Some(STEP))
        .await;
    loop {
        if let Got::End {
            id: end, status, ..
        } = client.next().await
            && end == id
        {
            assert_eq!(status, Status::ERROR);
            break;
        }
    }
    tokio::time::timeout(STEP, async {
        loop {
            let counters = logs.read(LogStore::counters).unwrap();
            if counters.first().is_some_and(|c| c.errors == 2) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("both refusals counted");
    assert_eq!(logs.read(|s| s.count(&LogQuery::default())).unwrap(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn sente_lite_log_messages_are_stored() {
    let (server, logs, _dir) = log_server().await;
    let mut client = TestClient::open(server.local_addr(), "browser-1").await;
    let mut live = logs.subscribe();
    client
        .send_event(
            "telemetry/log-msg",
            Payload::Json(r#"{"ns":"my.app","level":"warn","id":"my.app/slow","data":{"ms":812},"timestamp":1766108726643}"#),
        )
        .await;
    let got = tokio::time::timeout(STEP, live.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            got.client_id.as_str(),
            got.ns.as_str(),
            got.level.as_str(),
            got.id.as_deref(),
            got.seq,
            got.time_ms
        ),
        (
            "browser-1",
            "my.app",
            "warn",
            Some("my.app/slow"),
            None,
            1766108726643
        )
    );
    assert_eq!(got.data, serde_json::json!({ "ms": 812 }));
    // Two messages without sequence numbers are two records, not duplicates.
    client
        .send_event(
            "telemetry/log-msg",
            Payload::Json(r#"{"ns":"my.app","level":"warn"}"#),
        )
        .await;
    client
        .send_event(
            "telemetry/log-msg",
            Payload::Json(r#"{"ns":"my.app","level":"warn"}"#),
        )
        .await;
    for _ in 0..2 {
        tokio::time::timeout(STEP, live.recv())
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(logs.read(|s| s.count(&LogQuery::default())).unwrap(), 3);
    server.shutdown().await;
}

/// A plain HTTP/1.1 GET over a fresh socket; returns the socket after the request is written.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    socket
}

/// Reads from `socket` until `needle` has arrived; returns everything read.
async fn read_until(socket: &mut tokio::net::TcpStream, needle: &str) -> String {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    tokio::time::timeout(STEP, async {
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&got).contains(needle) {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "closed before {needle:?}: {}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {needle:?} in {}", String::from_utf8_lossy(&got)));
    String::from_utf8_lossy(&got).into_owned()
}

/// Reads until the peer closes; returns what arrived.
async fn read_to_end(socket: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    tokio::time::timeout(STEP, socket.read_to_end(&mut got))
        .await
        .expect("the response ends in time")
        .unwrap();
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn the_http_api_lists_counts_and_tails_records() {
    let (server, logs, _dir) = log_server().await;
    let addr = server.local_addr();
    let mut tail = http_get(addr, "/api/logs/tail?level=error").await;
    let head = read_until(&mut tail, "\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("application/x-ndjson"), "{head}");
    let mut client = TestClient::open(addr, "web-1").await;
    for (level, text) in [("info", "hello"), ("error", "boom")] {
        let json = format!(r#"{{"ns":"ui","level":"{level}","message":"{text}"}}"#);
        client
            .send_event("telemetry/log-msg", Payload::Json(&json))
            .await;
    }
    let streamed = read_until(&mut tail, "boom").await;
    assert!(
        !streamed.contains("hello"),
        "the tail filters by level: {streamed}"
    );
    let mut list = http_get(addr, "/api/logs?client=web-1&limit=10").await;
    let body = read_until(&mut list, "boom").await;
    assert!(
        body.contains("hello") && body.contains("\"client-id\":\"web-1\""),
        "{body}"
    );
    let mut count = http_get(addr, "/api/logs?level=error&count=true").await;
    read_until(&mut count, r#"{"count":1}"#).await;
    let mut bad = http_get(addr, "/api/logs?level=loud").await;
    let body = read_until(&mut bad, "unknown level").await;
    assert!(body.starts_with("HTTP/1.1 400"), "{body}");
    let mut clients = http_get(addr, "/api/logs/clients").await;
    read_until(&mut clients, r#""records":2"#).await;
    // Closing the service ends the tail, so the shutdown does not wait for it.
    logs.close();
    let rest = read_to_end(&mut tail).await;
    assert!(
        rest.ends_with("0\r\n\r\n"),
        "the chunked body ends: {rest:?}"
    );
    server.shutdown().await;
}

/// The live feed is split by level: a tail of errors holds only the records it asked for,
/// so a flood of info records larger than a subscriber's buffer cannot make it miss one.
#[tokio::test]
async fn a_live_subscriber_of_errors_is_not_drowned_by_lower_levels() {
    use tokio::sync::broadcast::error::TryRecvError;
    let dir = TempDir::new("live-levels");
    let logs = LogService::start(&dir.0, &LogsSettings::default()).unwrap();
    let mut everything = logs.subscribe();
    let mut severe = logs.subscribe_at_least(Level::Error);
    let mut seq = 0;
    for round in 0..5u32 {
        let mut records: Vec<LogEntry> = (0..1000)
            .map(|_| {
                seq += 1;
                entry("flood", seq, Level::Info, "noise", 5000)
            })
            .collect();
        seq += 1;
        let level = if round == 4 {
            Level::Fatal
        } else {
            Level::Error
        };
        records.push(entry(
            "flood",
            seq,
            level,
            &format!("failure {round}"),
            5000,
        ));
        logs.ingest(batch("flood", records, None)).await.unwrap();
    }
    for round in 0..5 {
        let got = severe
            .try_recv()
            .expect("every severe record reached the error subscriber");
        assert_eq!(got.message, format!("failure {round}"));
    }
    assert!(matches!(severe.try_recv(), Err(TryRecvError::Empty)));
    // 5,005 records overflow the buffer of a subscriber of every level.
    assert!(matches!(
        everything.try_recv(),
        Err(TryRecvError::Lagged(_))
    ));
}
