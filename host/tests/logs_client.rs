//! A tokio client's remote logging against the server's log pipeline: records logged through
//! `Client::log` reach the store exactly once, through a dropped connection, and the server's
//! `telemetry/log-control` changes the client's levels live, and a lone record goes out when
//! its batch timeout runs out even while the driver sits idle on an open connection (nothing
//! to read, no request in flight, the next heartbeat far off), not at the next wakeup that
//! happens to come along.

mod support;

use std::time::Duration;

use sentelite_core::CloseCode;
use sentelite_core::frame::PayloadBuf;
use sentelite_core::log::{CONTROL_EVENT, FilterConfig, LevelSet, LogControl};
use sentelite_host::Server;
use sentelite_host::logs::{LogQuery, LogService, LogsSettings};
use sentelite_tokio::{Client, ClientOptions, Level, LogConfig};
use support::{TempDir, quick_settings, start_with};

/// Waits until the client has nothing left to send, or fails after `limit`.
async fn settled(client: &Client, limit: Duration) {
    tokio::time::timeout(limit, async {
        loop {
            if client.log_stats().is_some_and(|s| s.settled()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not settled: {:?}", client.log_stats()));
}

async fn open(client: &Client) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !client.is_open() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the client connects");
}

/// A server whose log pipeline stores into a fresh data dir; the dirs live as long as the
/// returned guard.
async fn log_server() -> (Server, LogService, (TempDir, TempDir)) {
    let dir = TempDir::new("client-logs");
    let logs = LogService::start(&dir.0, &LogsSettings::default()).unwrap();
    let (server, data) = start_with(
        Server::builder()
            .config(quick_settings())
            .with_logs(logs.clone()),
    )
    .await;
    (server, logs, (dir, data))
}

/// Options for client `name` of `server` that log every level, in batches of `batch_size`
/// or after 100 ms.
fn logging_options(server: &Server, name: &str, batch_size: usize) -> ClientOptions {
    let mut options = ClientOptions::new(format!("ws://{}/ws", server.local_addr()), name);
    options.log = Some(LogConfig {
        filter: FilterConfig {
            levels: LevelSet::ALL,
            ..FilterConfig::default()
        },
        batch_size,
        batch_timeout: sentelite_core::Duration::from_millis(100),
        ..LogConfig::default()
    });
    options
}

#[tokio::test]
async fn logged_records_reach_the_store_once_through_a_dropped_connection() {
    let (server, logs, _dirs) = log_server().await;
    let mut options = logging_options(&server, "rover-7", 10);
    options.backoff_initial = Duration::from_millis(50);
    options.backoff_max = Duration::from_millis(100);
    let client = sentelite_tokio::connect(options).unwrap();
    // Records logged before the connection opens wait for it.
    for i in 0..25 {
        let outcome = client.log(
            Level::Info,
            "rover.drive",
            Some("rover.drive/step"),
            &format!("step {i}"),
            &[],
        );
        assert!(outcome.is_some());
    }
    open(&client).await;
    settled(&client, Duration::from_secs(10)).await;
    assert_eq!(logs.read(|s| s.count(&LogQuery::default())).unwrap(), 25);

    // The server drops the connection; records logged meanwhile go on the next one.
    let conn = server.handle().connections()[0].connection_id;
    server
        .handle()
        .close_connection(conn, CloseCode::GOING_AWAY, "test drop")
        .unwrap();
    for i in 25..50 {
        client.log(Level::Warn, "rover.drive", None, &format!("step {i}"), &[]);
    }
    settled(&client, Duration::from_secs(10)).await;
    let stored = logs
        .read(|s| {
            s.query(&LogQuery {
                client: Some("rover-7".into()),
                limit: 1000,
                ..LogQuery::default()
            })
        })
        .unwrap();
    let seqs: Vec<u32> = stored.iter().filter_map(|e| e.seq).collect();
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted, (0..50).collect::<Vec<u32>>(), "each record once");
    assert_eq!(seqs.len(), 50);
    let stats = client.log_stats().unwrap();
    assert_eq!((stats.queue.acked, stats.queue.dropped), (50, 0));

    // The server narrows the client's levels to errors: a warning is now held back.
    let mut control = [0u8; 64];
    let n = LogControl::SetFilter(FilterConfig {
        levels: LevelSet::of(&[Level::Error]),
        ..FilterConfig::default()
    })
    .encode(&mut control)
    .unwrap();
    server
        .handle()
        .send_to_client(
            "rover-7",
            CONTROL_EVENT,
            PayloadBuf::Bytes(control[..n].to_vec()),
        )
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), async {
        while client.log_enabled(Level::Warn) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the control event reached the client");
    assert!(client.log_enabled(Level::Error));
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_lone_record_goes_out_at_its_batch_timeout() {
    let (server, _logs, _dirs) = log_server().await;
    let client = sentelite_tokio::connect(logging_options(&server, "lone-1", 100)).unwrap();
    open(&client).await;
    // Let the driver settle into waiting with nothing due.
    tokio::time::sleep(Duration::from_millis(300)).await;

    for round in 0..3 {
        let logged = std::time::Instant::now();
        client.log(Level::Warn, "lone", None, &format!("round {round}"), &[]);
        // A 100 ms batch timeout: acked well within 3 s, long before the next heartbeat.
        settled(&client, Duration::from_secs(3)).await;
        assert!(
            logged.elapsed() >= Duration::from_millis(100),
            "round {round}: sent early"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    client.close().await;
    server.shutdown().await;
}

/// `POST /api/logs/level` with `body`; the whole response.
async fn post_level(addr: std::net::SocketAddr, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /api/logs/level HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut got))
        .await
        .expect("the response ends in time")
        .unwrap();
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn the_level_route_changes_a_connected_clients_levels() {
    let (server, _logs, _dirs) = log_server().await;
    let mut options = logging_options(&server, "probe-3", 10);
    if let Some(log) = options.log.as_mut() {
        log.filter.levels = LevelSet::of(&[Level::Error]);
    }
    let client = sentelite_tokio::connect(options).unwrap();
    open(&client).await;
    assert!(!client.log_enabled(Level::Debug));
    let addr = server.local_addr();

    let answer = post_level(addr, r#"{"client":"probe-3","level":"debug"}"#).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#"{"delivered":1}"#), "{answer}");
    tokio::time::timeout(Duration::from_secs(5), async {
        while !client.log_enabled(Level::Debug) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the level change reached the client");
    assert!(
        !client.log_enabled(Level::Trace),
        "debug and above, not trace"
    );

    let unknown = post_level(addr, r#"{"client":"nobody","level":"debug"}"#).await;
    assert!(unknown.starts_with("HTTP/1.1 404"), "{unknown}");
    let bad = post_level(addr, r#"{"client":"probe-3","level":"loud"}"#).await;
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    client.close().await;
    server.shutdown().await;
}
