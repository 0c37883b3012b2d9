//! A tokio client's batch timeout is a timer of its own: a lone record logged while the
//! driver sits idle on an open connection (nothing to read, no request in flight, the next
//! heartbeat far off) goes out when `batch_timeout` runs out, not at the next wakeup that
//! happens to come along.

mod support;

use std::time::{Duration, Instant};

use sentelite_core::log::{FilterConfig, LevelSet};
use sentelite_host::Server;
use sentelite_host::logs::{LogService, LogsSettings};
use sentelite_tokio::{ClientOptions, Level, LogConfig};
use support::{TempDir, quick_settings, start_with};

#[tokio::test]
async fn a_lone_record_goes_out_at_its_batch_timeout() {
    let dir = TempDir::new("log-timer");
    let logs = LogService::start(&dir.0, &LogsSettings::default()).unwrap();
    let (server, _data) = start_with(
        Server::builder()
            .config(quick_settings())
            .with_logs(logs.clone()),
    )
    .await;
    let mut options = ClientOptions::new(format!("ws://{}/ws", server.local_addr()), "lone-1");
    options.log = Some(LogConfig {
        filter: FilterConfig {
            levels: LevelSet::ALL,
            ..FilterConfig::default()
        },
        batch_size: 100,
        batch_timeout: sentelite_core::Duration::from_millis(100),
        ..LogConfig::default()
    });
    let client = sentelite_tokio::connect(options).unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !client.is_open() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the client connects");
    // Let the driver settle into waiting with nothing due.
    tokio::time::sleep(Duration::from_millis(300)).await;

    for round in 0..3 {
        let logged = Instant::now();
        client.log(Level::Warn, "lone", None, &format!("round {round}"), &[]);
        let acked = tokio::time::timeout(Duration::from_secs(3), async {
            while !client.log_stats().is_some_and(|s| s.settled()) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(
            acked.is_ok(),
            "round {round}: a record with a 100 ms batch timeout still waits after 3 s: {:?}",
            client.log_stats()
        );
        assert!(
            logged.elapsed() >= Duration::from_millis(100),
            "round {round}: sent early"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    client.close().await;
    server.shutdown().await;
}
