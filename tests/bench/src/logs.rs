//! Log ingest: `sentelite serve` storing `telemetry/log-batch` requests, against mosquitto
//! acknowledging QoS 1 messages, per CPU-second of each server.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use rumqttc::QoS;
use sentelite_core::RequestOutcome;
use sentelite_core::frame::PayloadBuf;
use sentelite_core::log::{BATCH_EVENT, Level, LogConfig, LogShipper, NewRecord, QueueConfig};
use sentelite_core::{Instant as CoreInstant, Status};
use sentelite_host::logs::{LogQuery, LogStore};
use sentelite_tokio::ClientOptions;

use crate::cpu::cpu_time;
use crate::{mqtt, serve};

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Client counts to measure, comma-separated
    #[arg(long, value_delimiter = ',', default_value = "16,256")]
    clients: Vec<usize>,
    /// Length of each measured window
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Windows per configuration; the median is printed with the range
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Records per sentelite batch
    #[arg(long, default_value_t = 50)]
    batch: usize,
    /// Fail when mosquitto is not installed, instead of printing the table without it
    #[arg(long)]
    require_baseline: bool,
}

/// One measured window.
#[derive(Debug, Clone, Copy)]
pub struct Measure {
    /// Records acknowledged (and, for sentelite, found in the store afterwards).
    pub records: u64,
    /// Wall time of the window.
    pub elapsed: Duration,
    /// CPU time the server used in the window.
    pub server_cpu: Duration,
    /// Payload bytes per record on the wire.
    pub bytes_per_record: f64,
}

impl Measure {
    pub fn per_cpu_second(&self) -> f64 {
        self.records as f64 / self.server_cpu.as_secs_f64().max(1e-9)
    }

    pub fn per_second(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }
}

/// The windows of one configuration: the median by records per server CPU-second, and the
/// range of that figure.
struct Runs {
    median: Measure,
    min: f64,
    max: f64,
}

impl Runs {
    fn of(mut runs: Vec<Measure>) -> Runs {
        runs.sort_by(|a, b| a.per_cpu_second().total_cmp(&b.per_cpu_second()));
        Runs {
            median: runs[runs.len() / 2],
            min: runs[0].per_cpu_second(),
            max: runs[runs.len() - 1].per_cpu_second(),
        }
    }
}

/// The server settings of each measured sentelite variant.
const VARIANTS: [(&str, &str); 2] = [
    ("sentelite", ""),
    ("sentelite, file sink off", "[logs]\nfile = false\n"),
];

/// A typical device record: a namespace, an event id, a short message and a little data.
pub fn record(time_ms: u64) -> NewRecord<'static> {
    NewRecord {
        time_ms,
        level: Level::Warn,
        namespace: "my.app.sensor",
        id: Some("my.app.sensor/sampled"),
        message: "sample out of range",
        // {:n 1234}
        data: &[0xa1, 0xd8, 0x27, 0x61, 0x6e, 0x19, 0x04, 0xd2],
    }
}

pub async fn run(args: LogsArgs) -> Result<(), String> {
    let binary = serve::build_sentelite()?;
    let mosquitto = mqtt::mosquitto_path();
    if mosquitto.is_none() && args.require_baseline {
        return Err("mosquitto is not installed (Debian package `mosquitto`)".into());
    }
    let runs = args.runs.max(1);
    println!(
        "Log ingest, {} s windows, median of {runs} (range in brackets), {} records per batch",
        args.seconds, args.batch
    );
    println!();
    println!(
        "| clients | system | records acked/s | records per server CPU-second | bytes/record | vs mosquitto QoS 1 |"
    );
    println!("|---:|---|---:|---:|---:|---:|");
    for &clients in &args.clients {
        let mut ours = Vec::new();
        for (name, settings) in VARIANTS {
            let mut windows = Vec::new();
            for _ in 0..runs {
                windows.push(
                    sentelite_window(&binary, settings, clients, args.seconds, args.batch).await?,
                );
            }
            ours.push((name, Runs::of(windows)));
        }
        let payload = ours[0].1.median.bytes_per_record.round() as usize;
        let mut theirs = None;
        let mut qos0 = None;
        if let Some(path) = &mosquitto {
            for (qos, into) in [
                (QoS::AtLeastOnce, &mut theirs),
                (QoS::AtMostOnce, &mut qos0),
            ] {
                let mut windows = Vec::new();
                for _ in 0..runs {
                    windows.push(mqtt::window(path, clients, args.seconds, payload, qos).await?);
                }
                *into = Some(Runs::of(windows));
            }
        }
        for (name, r) in &ours {
            let ratio = theirs
                .as_ref()
                .map_or("mosquitto not installed".to_owned(), |t| {
                    format!(
                        "{:.1}×",
                        r.median.per_cpu_second() / t.median.per_cpu_second()
                    )
                });
            print_row(clients, name, r, &ratio);
        }
        if let (Some(t), Some(z)) = (&theirs, &qos0) {
            print_row(clients, "mosquitto QoS 1", t, "1.0×");
            // Unacknowledged: counted as written by the publisher. Its ratio to QoS 1 says
            // what the acknowledgement costs mosquitto.
            let ratio = format!(
                "{:.1}× (sentelite {:.1}× of it)",
                z.median.per_cpu_second() / t.median.per_cpu_second(),
                ours[0].1.median.per_cpu_second() / z.median.per_cpu_second()
            );
            print_row(clients, "mosquitto QoS 0 (unacked)", z, &ratio);
        }
    }
    Ok(())
}

fn print_row(clients: usize, system: &str, r: &Runs, ratio: &str) {
    let m = &r.median;
    println!(
        "| {clients} | {system} | {:.0} | {:.0} [{:.0}–{:.0}] | {:.1} | {ratio} |",
        m.per_second(),
        m.per_cpu_second(),
        r.min,
        r.max,
        m.bytes_per_record,
    );
}

/// A fresh data directory under the system temp dir.
pub fn data_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sentelite-bench-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

async fn sentelite_window(
    binary: &std::path::Path,
    settings: &str,
    clients: usize,
    seconds: u64,
    batch: usize,
) -> Result<Measure, String> {
    let dir = data_dir("logs");
    let server = serve::start(binary, &dir, settings)?;
    let url = format!("ws://{}/ws", server.addr);
    let handles = connect_all(&url, clients, "bench").await?;
    let acked = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let cpu_before = cpu_time(server.pid()).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    ship_all_until(handles, batch, deadline, &acked, &bytes).await?;
    let elapsed = start.elapsed();
    let server_cpu = cpu_time(server.pid()).map_err(|e| e.to_string())? - cpu_before;
    drop(server);
    // The file, when on, holds the records' data as JSON (not the undecodable fallback).
    if let Ok(file) = std::fs::read_to_string(dir.join("logs/all-clients.log"))
        && !file
            .lines()
            .next()
            .is_some_and(|l| l.contains(r#""data":{"n":1234}"#))
    {
        return Err("the log file does not hold the records' data".into());
    }
    let records = acked.load(Ordering::Relaxed);
    let stored = LogStore::open(&dir)
        .and_then(|s| s.count(&LogQuery::default()))
        .map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&dir);
    if stored != records {
        return Err(format!("{records} records acked but {stored} stored"));
    }
    Ok(Measure {
        records,
        elapsed,
        server_cpu,
        bytes_per_record: bytes.load(Ordering::Relaxed) as f64 / records.max(1) as f64,
    })
}

/// Every client of `clients` ships batches ([`ship_batches`]) until `deadline`, each on a
/// task of its own, then closes; counts into `acked` and `bytes`.
pub async fn ship_all_until(
    clients: Vec<sentelite_tokio::Client>,
    batch: usize,
    deadline: Instant,
    acked: &Arc<AtomicU64>,
    bytes: &Arc<AtomicU64>,
) -> Result<(), String> {
    let mut tasks = Vec::new();
    for client in clients {
        let (acked, bytes) = (acked.clone(), bytes.clone());
        tasks.push(tokio::spawn(async move {
            ship_batches(&client, batch, || Instant::now() < deadline, &acked, &bytes).await?;
            client.close().await;
            Ok::<_, String>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// Logs records in batches of `batch` on `client` and sends each as a `telemetry/log-batch`
/// request, waiting for its ack, while `keep_going` says so; counts the records acked and
/// their bytes.
pub async fn ship_batches(
    client: &sentelite_tokio::Client,
    batch: usize,
    keep_going: impl Fn() -> bool,
    acked: &AtomicU64,
    bytes: &AtomicU64,
) -> Result<(), String> {
    let config = LogConfig {
        queue: QueueConfig {
            max_records: batch * 2,
            ..QueueConfig::default()
        },
        batch_size: batch,
        ..LogConfig::default()
    };
    let mut shipper = LogShipper::new(vec![0u8; 64 * 1024], config, 0);
    shipper.on_connected(CoreInstant::ZERO);
    let mut out = vec![0u8; 32 * 1024];
    let mut t = 0u64;
    while keep_going() {
        for _ in 0..batch {
            t += 1;
            shipper.log(CoreInstant::ZERO, &record(t));
        }
        let Some(ready) = shipper.poll_batch(CoreInstant::ZERO, &mut out) else {
            return Err("no batch due after a full batch was logged".to_owned());
        };
        let payload = PayloadBuf::Bytes(out[..ready.len].to_vec());
        let response = client
            .request(BATCH_EVENT, payload, Duration::from_secs(30))
            .await
            .map_err(|e| e.to_string())?;
        match response.finish().await {
            RequestOutcome::Completed { status, .. } if status == Status::OK => {
                shipper.on_ack(ready.id);
                acked.fetch_add(ready.records as u64, Ordering::Relaxed);
                bytes.fetch_add(ready.len as u64, Ordering::Relaxed);
            }
            other => return Err(format!("batch not acked: {other:?}")),
        }
    }
    Ok(())
}

/// `n` tokio clients of `url` named `{tag}-{i}`, once every one is connected.
pub async fn connect_all(
    url: &str,
    n: usize,
    tag: &str,
) -> Result<Vec<sentelite_tokio::Client>, String> {
    let mut handles = Vec::new();
    for i in 0..n {
        let client = sentelite_tokio::connect(ClientOptions::new(url, format!("{tag}-{i}")))
            .map_err(|e| e.to_string())?;
        handles.push(client);
    }
    let ready = Instant::now() + Duration::from_secs(30);
    while !handles.iter().all(|c| c.is_open()) {
        if Instant::now() > ready {
            return Err("clients did not connect within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(handles)
}
