//! Error-record latency: the time from `Client::log` of an error-level record on one client
//! (the tokio adapter) to its line on a live tail subscriber (`GET /api/logs/tail?level=error`
//! on the same server), one record at a time, first with the server otherwise idle and then
//! with other clients loading it with batched logs (the log ingest bench's load, warn level,
//! so the tail shows only the timed records). Prints p50, p99 and the worst.
//!
//! The timed client ships each record at once (`batch_size` 1). With the default batch
//! settings a lone error would wait for the batch timeout (5 s). A record not on the tail
//! within 2 s counts as lost from the live feed (the tail's buffer is shared by every level
//! and the filter runs at the reader, so a reader falling behind the load misses records;
//! the server says how many); the table shows how many were lost and the row goes on.

use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use clap::Args;
use sentelite_tokio::{Client, ClientOptions, Level, LogConfig, LogOutcome};

use crate::logs::{connect_all, data_dir, ship_batches};
use crate::serve;

/// Options of `sentelite-bench latency`.
#[derive(Debug, Args)]
pub struct LatencyArgs {
    /// Clients loading the server with batched logs while the loaded figure is taken
    #[arg(long, default_value_t = 256)]
    clients: usize,
    /// Error records timed in each configuration, one at a time
    #[arg(long, default_value_t = 2000)]
    records: usize,
    /// Records per batch of the load
    #[arg(long, default_value_t = 50)]
    batch: usize,
}

/// The goal for p99 on loopback, with the load.
const GOAL_P99_MS: f64 = 5.0;
/// Longest a timed record may take before it counts as lost from the live feed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Lost records after which a row stops early.
const MAX_LOST: usize = 20;
/// Longest the load, or one row's timed records, may run, whatever happens.
const LOAD_CAP: Duration = Duration::from_secs(600);

/// What the tail reader saw.
enum Line {
    /// Timed record `n` arrived at this moment.
    Arrived(u64, Instant),
    /// The server told the tail it missed this many records (a slow reader).
    Missed(u64),
}

/// The tail reader's lines.
type Arrivals = Receiver<Line>;

/// One row's timed records.
#[derive(Default)]
struct Timed {
    latencies: Vec<Duration>,
    /// Records that did not reach the tail within [`PROBE_TIMEOUT`].
    lost: usize,
    /// Records the server said the tail missed meanwhile (any level).
    missed: u64,
}

/// One configuration's figures.
struct Row {
    load: String,
    timed: Timed,
    load_per_second: Option<f64>,
}

pub async fn run(args: LatencyArgs) -> Result<(), String> {
    let binary = serve::build_sentelite()?;
    let dir = data_dir("latency");
    let server = serve::start(&binary, &dir, "")?;
    let rows = measure(&server.addr, &args).await;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    let rows = rows?;
    println!(
        "Error record from `Client::log` to a live tail subscriber (`/api/logs/tail`), \
         {} records timed one at a time per row, milliseconds",
        args.records
    );
    println!();
    println!(
        "| load | p50 | p99 | worst | lost from the live feed | tail told it missed | load records acked/s | goal p99 ≤ 5 ms | records timed |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|---:|");
    for row in rows {
        let mut l = row.timed.latencies;
        if l.is_empty() {
            println!(
                "| {} | – | – | – | {} | {} | | missed | 0 |",
                row.load, row.timed.lost, row.timed.missed
            );
            continue;
        }
        l.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let p99 = ms(percentile(&l, 0.99));
        let verdict = if p99 <= GOAL_P99_MS && row.timed.lost == 0 {
            "met"
        } else {
            "missed"
        };
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {verdict} | {} |",
            row.load,
            ms(percentile(&l, 0.50)),
            p99,
            ms(l[l.len() - 1]),
            row.timed.lost,
            row.timed.missed,
            row.load_per_second
                .map_or("–".to_owned(), |r| format!("{r:.0}")),
            l.len(),
        );
    }
    Ok(())
}

/// The `p` quantile of sorted `values` (nearest rank).
fn percentile(values: &[Duration], p: f64) -> Duration {
    let rank = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

async fn measure(addr: &str, args: &LatencyArgs) -> Result<Vec<Row>, String> {
    let arrivals = tail(addr)?;
    let url = format!("ws://{addr}/ws");
    let mut options = ClientOptions::new(url.clone(), "latency-probe");
    options.log = Some(LogConfig {
        batch_size: 1,
        ..LogConfig::default()
    });
    let prober = sentelite_tokio::connect(options).map_err(|e| e.to_string())?;
    let ready = Instant::now() + Duration::from_secs(30);
    while !prober.is_open() {
        if Instant::now() > ready {
            return Err("the timed client did not connect within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let n = args.records.max(1);
    // A first record proves the tail is live; not counted.
    let (prober, arrivals, first) = timed(prober, arrivals, 0, 1).await?;
    if first.lost > 0 {
        return Err("the first record did not reach the tail".into());
    }
    let (prober, arrivals, idle) = timed(prober, arrivals, 1, n).await?;
    let mut rows = vec![Row {
        load: "none".into(),
        timed: idle,
        load_per_second: None,
    }];
    if args.clients > 0 {
        let loaders = connect_all(&url, args.clients, "load").await?;
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let cap = Instant::now() + LOAD_CAP;
        let mut tasks = Vec::new();
        for client in loaders {
            let (stop, acked, batch) = (stop.clone(), acked.clone(), args.batch);
            tasks.push(tokio::spawn(async move {
                let bytes = AtomicU64::new(0);
                let keep_going = || !stop.load(Ordering::Relaxed) && Instant::now() < cap;
                let shipped = ship_batches(&client, batch, keep_going, &acked, &bytes).await;
                client.close().await;
                shipped
            }));
        }
        // The load reaches its pace first.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (start, acked_before) = (Instant::now(), acked.load(Ordering::Relaxed));
        let timed_run = timed(prober, arrivals, 1 + n as u64, n).await;
        let load_per_second =
            (acked.load(Ordering::Relaxed) - acked_before) as f64 / start.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            task.await.map_err(|e| e.to_string())??;
        }
        let (prober, _, loaded) = timed_run?;
        prober.close().await;
        rows.push(Row {
            load: format!(
                "{} clients shipping batches of {} warn records",
                args.clients, args.batch
            ),
            timed: loaded,
            load_per_second: Some(load_per_second),
        });
    }
    Ok(rows)
}

/// Logs records `first..first + count` one at a time, each once the previous one reached the
/// tail or was given up as lost, and returns how long each took; stops after [`MAX_LOST`]
/// lost records and fails past [`LOAD_CAP`].
async fn timed(
    prober: Client,
    arrivals: Arrivals,
    first: u64,
    count: usize,
) -> Result<(Client, Arrivals, Timed), String> {
    let ends_by = Instant::now() + LOAD_CAP;
    tokio::task::spawn_blocking(move || {
        let mut timed = Timed::default();
        for n in first..first + count as u64 {
            if timed.lost >= MAX_LOST {
                break;
            }
            let message = format!("probe {n}");
            let logged_at = Instant::now();
            match prober.log(Level::Error, "bench.latency", None, &message, &[]) {
                Some(LogOutcome::Queued(_)) => {}
                other => return Err(format!("record {n} not queued: {other:?}")),
            }
            if logged_at > ends_by {
                return Err(format!("records not timed within {} s", LOAD_CAP.as_secs()));
            }
            let deadline = (logged_at + PROBE_TIMEOUT).min(ends_by);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match arrivals.recv_timeout(left) {
                    Ok(Line::Arrived(m, at)) if m == n => {
                        timed.latencies.push(at - logged_at);
                        break;
                    }
                    Ok(Line::Arrived(..)) => {}
                    Ok(Line::Missed(k)) => timed.missed += k,
                    Err(RecvTimeoutError::Timeout) => {
                        timed.lost += 1;
                        break;
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        return Err("the tail ended".into());
                    }
                }
            }
        }
        Ok((prober, arrivals, timed))
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Subscribes to the server's live tail of error records; a thread reads it and reports each
/// timed record's number with the moment its line arrived.
fn tail(addr: &str) -> Result<Arrivals, String> {
    let url = format!("http://{addr}/api/logs/tail?level=error");
    // The server subscribes the feed before it answers, so records logged from here on show.
    let response = ureq::get(&url)
        .call()
        .map_err(|e| format!("GET {url}: {e}"))?;
    let reader = BufReader::new(response.into_body().into_reader());
    let (tx, rx) = channel();
    // Ends when the server goes away (the stream closes) or the receiver is dropped.
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            let at = Instant::now();
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let number = value
                .get("message")
                .and_then(|m| m.as_str()?.strip_prefix("probe ")?.parse::<u64>().ok());
            let seen = match (number, value.get("missed").and_then(|m| m.as_u64())) {
                (Some(n), _) => Line::Arrived(n, at),
                (None, Some(k)) => Line::Missed(k),
                (None, None) => continue,
            };
            if tx.send(seen).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}
