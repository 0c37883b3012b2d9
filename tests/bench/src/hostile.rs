//! Well-behaved throughput under attack: the log ingest load of `logs` (N clients shipping
//! batches, each acked once stored) measured alone and with hostile peers working the same
//! server, window by window in alternating order; the figure is the ratio of records acked
//! per second. The goal (issue 10): ≥ 0.9×.
//!
//! The attackers are cheap for themselves and aim at the server's costly paths: text
//! messages nested past the depth limit, oversize text messages, binary garbage instead of a
//! Hello, half-sent HTTP heads left hanging, ping floods that never read the pongs, Sente
//! callbacks sent without reading the answers, and `lsp/*` events with bad payloads. Each
//! attacker paces itself (`--pause-ms` between rounds) so the attack's own CPU on this shared
//! machine stays small beside the server's; the table prints the attack rounds done, so a
//! reader sees how hard the server was pushed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use crate::cpu::cpu_time;
use crate::figures::Spread;
use crate::logs::{connect_all, data_dir, ship_all_until};
use crate::{native, serve};

/// Options of `sentelite-bench hostile`.
#[derive(Debug, Args)]
pub struct HostileArgs {
    /// Well-behaved clients shipping log batches
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Attackers working at the same time
    #[arg(long, default_value_t = 8)]
    attackers: usize,
    /// Length of each measured window
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Pairs of windows (quiet, attacked), alternating which goes first
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Records per batch
    #[arg(long, default_value_t = 50)]
    batch: usize,
    /// Each attacker's pause between rounds
    #[arg(long, default_value_t = 5)]
    pause_ms: u64,
}

/// The server's settings: a small frame limit so oversize messages are cheap to send.
const SETTINGS: &str = "max-frame-bytes = 16384\n[lsp]\nallowed-clients = [\"*\"]\n\n[lsp.never]\ncommand = \"/bin/false\"\n";

/// One measured window.
struct Window {
    records_per_second: f64,
    records_per_server_cpu_second: f64,
    attack_rounds: u64,
    /// Rounds that ended in an error of the attacker's own (no connection, a write refused)
    /// or ran out of time, rather than the server closing the attacker as designed.
    attack_errors: u64,
}

pub async fn run(args: HostileArgs) -> Result<(), String> {
    let binary = serve::build_sentelite()?;
    let runs = args.runs.max(1);
    println!(
        "Log ingest of {} clients (batches of {}) alone and beside {} attackers, {} s windows, \
         {runs} pairs",
        args.clients, args.batch, args.attackers, args.seconds
    );
    println!();
    let mut quiet = Vec::new();
    let mut attacked = Vec::new();
    for run in 0..runs {
        // Alternate the order so a machine getting busier or quieter does not favour one.
        for attack in [run % 2 == 1, run % 2 == 0] {
            let window = window(&binary, &args, attack).await?;
            if attack {
                attacked.push(window);
            } else {
                quiet.push(window);
            }
        }
    }
    let ratios: Vec<f64> = quiet
        .iter()
        .zip(&attacked)
        .map(|(q, a)| a.records_per_second / q.records_per_second)
        .collect();
    let ratio = Spread::of(&ratios);
    println!(
        "| server | records acked/s | records per server CPU-second | attack rounds (of them failed) | vs alone | goal ≥ 0.9× |"
    );
    println!("|---|---:|---:|---:|---:|---|");
    for (name, windows) in [("alone", &quiet), ("under attack", &attacked)] {
        let per_second: Vec<f64> = windows.iter().map(|w| w.records_per_second).collect();
        let per_cpu: Vec<f64> = windows
            .iter()
            .map(|w| w.records_per_server_cpu_second)
            .collect();
        let rounds: Vec<f64> = windows.iter().map(|w| w.attack_rounds as f64).collect();
        let failed: u64 = windows.iter().map(|w| w.attack_errors).sum();
        let total: u64 = windows.iter().map(|w| w.attack_rounds).sum();
        let (vs, goal) = if name == "alone" {
            ("1.0×".to_owned(), String::new())
        } else {
            (
                format!("{:.2}× [{:.2}–{:.2}]", ratio.median, ratio.min, ratio.max),
                if ratio.median >= 0.9 { "met" } else { "missed" }.to_owned(),
            )
        };
        println!(
            "| {name} | {} | {} | {} ({failed} of {total}) | {vs} | {goal} |",
            Spread::of(&per_second).cell(),
            Spread::of(&per_cpu).cell(),
            Spread::of(&rounds).cell(),
        );
    }
    Ok(())
}

async fn window(
    binary: &std::path::Path,
    args: &HostileArgs,
    attack: bool,
) -> Result<Window, String> {
    let dir = data_dir("hostile");
    let server = serve::start(binary, &dir, SETTINGS)?;
    let url = format!("ws://{}/ws", server.addr);
    let clients = connect_all(&url, args.clients, "calm").await?;
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut attackers = Vec::new();
    if attack {
        for i in 0..args.attackers {
            let (addr, stop, rounds, errors) = (
                server.addr.clone(),
                stop.clone(),
                rounds.clone(),
                errors.clone(),
            );
            let pause = Duration::from_millis(args.pause_ms);
            attackers.push(tokio::spawn(async move {
                let mut kind = i;
                while !stop.load(Ordering::Relaxed) {
                    let done =
                        tokio::time::timeout(Duration::from_secs(2), attack_once(&addr, kind))
                            .await;
                    if !matches!(done, Ok(Ok(()))) {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    rounds.fetch_add(1, Ordering::Relaxed);
                    kind += 1;
                    tokio::time::sleep(pause).await;
                }
            }));
        }
        // Let the attack reach its pace before the window opens.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let acked = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let cpu_before = cpu_time(server.pid()).map_err(|e| e.to_string())?;
    let rounds_before = rounds.load(Ordering::Relaxed);
    let errors_before = errors.load(Ordering::Relaxed);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.seconds);
    ship_all_until(clients, args.batch, deadline, &acked, &bytes).await?;
    let elapsed = start.elapsed();
    let server_cpu = cpu_time(server.pid()).map_err(|e| e.to_string())? - cpu_before;
    let attack_rounds = rounds.load(Ordering::Relaxed) - rounds_before;
    let attack_errors = errors.load(Ordering::Relaxed) - errors_before;
    stop.store(true, Ordering::Relaxed);
    for attacker in attackers {
        let _ = attacker.await;
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    let records = acked.load(Ordering::Relaxed) as f64;
    Ok(Window {
        records_per_second: records / elapsed.as_secs_f64(),
        records_per_server_cpu_second: records / server_cpu.as_secs_f64().max(1e-9),
        attack_rounds,
        attack_errors,
    })
}

/// One round of attack number `kind` (they take turns) against the server at `addr`.
async fn attack_once(addr: &str, kind: usize) -> Result<(), String> {
    let ws_url = |query: &str| format!("ws://{addr}/ws{query}");
    match kind % 7 {
        0 => {
            let deep = format!(
                "[\"hostile/deep\",{}{}]",
                "[".repeat(2000),
                "]".repeat(2000)
            );
            send_and_wait_close(&ws_url("?dialect=json"), [Message::text(deep)]).await
        }
        1 => {
            let big = format!("[:hostile/big \"{}\"]", "x".repeat(20_000));
            send_and_wait_close(&ws_url("?dialect=sente-lite"), [Message::text(big)]).await
        }
        2 => {
            let garbage = Bytes::from(vec![0xffu8; 256]);
            send_and_wait_close(&ws_url("?dialect=native"), [Message::Binary(garbage)]).await
        }
        3 => {
            // Half an HTTP request head, then gone.
            let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
            stream
                .write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: webs")
                .await
                .map_err(|e| e.to_string())?;
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok(())
        }
        4 => {
            let pings = (0..500).map(|_| Message::Ping(Bytes::from_static(b"hostile")));
            feed_without_reading(&ws_url("?dialect=sente-lite"), pings).await
        }
        5 => {
            let callbacks =
                (0..500).map(|i| Message::text(format!("[[:nobody/listens {{:n {i}}}] \"cb\"]")));
            feed_without_reading(&ws_url("?dialect=sente"), callbacks).await
        }
        _ => {
            let events = (0..500).map(|i| {
                Message::text(format!(
                    "[\"lsp/request\",{{\"session-id\":\"none-{i}\",\"method\":\"x\"}}]"
                ))
            });
            feed_without_reading(&ws_url("?dialect=json"), events).await
        }
    }
}

/// Sends `messages` and waits for the server to close the connection.
async fn send_and_wait_close(
    url: &str,
    messages: impl IntoIterator<Item = Message>,
) -> Result<(), String> {
    let mut ws = native::connect(url).await?;
    for message in messages {
        ws.send(message).await.map_err(|e| e.to_string())?;
    }
    while let Some(Ok(message)) = ws.next().await {
        if message.is_close() {
            break;
        }
    }
    Ok(())
}

/// Sends `messages` without reading anything back, then drops the connection.
async fn feed_without_reading(
    url: &str,
    messages: impl IntoIterator<Item = Message>,
) -> Result<(), String> {
    let mut ws = native::connect(url).await?;
    for message in messages {
        ws.feed(message).await.map_err(|e| e.to_string())?;
    }
    ws.flush().await.map_err(|e| e.to_string())
}
