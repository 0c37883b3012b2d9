//! Soak: many tokio clients ship log records through a chaos proxy while the test cuts every
//! connection K times, puts short stalls, delays and drips between the cuts, and kills the
//! server with SIGKILL and starts it again S times. Then the server's store, read through the
//! `sentelite logs query` CLI, must hold exactly what the clients sent minus what they
//! reported as dropped, with no record twice and each client's records in sequence order;
//! with queues that fit the outage nothing may be dropped at all.
//!
//! Sized for CI by default; the environment scales it up (see docs/TESTING.md):
//! `SENTELITE_SOAK_CLIENTS` (16), `SENTELITE_SOAK_RECORDS` per client (5000),
//! `SENTELITE_SOAK_CUTS` (10), `SENTELITE_SOAK_RESTARTS` (1), `SENTELITE_SOAK_SECS` of
//! shipping (15), `SENTELITE_SOAK_QUEUE` records per client queue (all of them),
//! `SENTELITE_SOAK_SEED`, `SENTELITE_SOAK_SETTLE_SECS` (60) for the clients to settle.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use sentelite_core::log::{BreakerConfig, QueueConfig};
use sentelite_integration_tests::ServeProcess;
use sentelite_integration_tests::chaos_proxy::{ChaosProxy, Fault};
use sentelite_integration_tests::serve::sentelite_binary;
use sentelite_tokio::{Client, ClientOptions, Level, LogConfig, LogOutcome, LogStats};

/// The run's size, from the environment.
#[derive(Debug, Clone, Copy)]
struct Params {
    clients: usize,
    records: u64,
    cuts: u32,
    restarts: u32,
    secs: u64,
    queue: usize,
    seed: u64,
}

fn env(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

impl Params {
    fn from_env() -> Params {
        let records = env("SENTELITE_SOAK_RECORDS", 5000).max(1);
        Params {
            clients: env("SENTELITE_SOAK_CLIENTS", 16).max(1) as usize,
            records,
            cuts: env("SENTELITE_SOAK_CUTS", 10) as u32,
            restarts: env("SENTELITE_SOAK_RESTARTS", 1) as u32,
            secs: env("SENTELITE_SOAK_SECS", 15).max(1),
            queue: env("SENTELITE_SOAK_QUEUE", records) as usize,
            seed: env("SENTELITE_SOAK_SEED", 0x5eed_50a6),
        }
    }
}

/// Longest the clients get, after shipping ends and the network is healed, to have every
/// record acknowledged or reported dropped (`SENTELITE_SOAK_SETTLE_SECS`, default 60).
fn settle_limit() -> Duration {
    Duration::from_secs(env("SENTELITE_SOAK_SETTLE_SECS", 60))
}
/// Pace of the producers: each logs its share of records every tick.
const TICK: Duration = Duration::from_millis(50);

fn client(proxy: &ChaosProxy, i: usize, p: Params) -> Client {
    let mut options = ClientOptions::new(format!("ws://{}/ws", proxy.addr), format!("soak-{i}"));
    options.backoff_initial = Duration::from_millis(50);
    options.backoff_max = Duration::from_millis(500);
    options.handshake_timeout = Duration::from_secs(3);
    options.rng_seed = p.seed ^ i as u64;
    options.log = Some(LogConfig {
        queue: QueueConfig {
            max_records: p.queue.max(1),
            ..QueueConfig::default()
        },
        // The breaker would pause shipping for its cool-down after a few failed batches;
        // the soak measures delivery, not the breaker.
        breaker: BreakerConfig {
            failures_to_open: 0,
            ..BreakerConfig::default()
        },
        batch_size: 100,
        batch_timeout: Duration::from_millis(50).into(),
        fallback_to_local: false,
        ..LogConfig::default()
    });
    // Room for every record the queue may hold (a record here takes well under 128 bytes).
    options.log_queue_bytes = (p.queue * 128).max(256 * 1024);
    sentelite_tokio::connect(options).expect("start client")
}

/// Logs record numbers `0..records` over `secs`, a share every [`TICK`], each message
/// naming the client and the number so the store's copy can be checked. Returns the client
/// and the records it took (each numbered: queued, or dropped at once when the queue held
/// only the batch in flight, which `queue.queued` does not count but `queue.dropped` does).
async fn produce(client: Client, i: usize, p: Params) -> (Client, u64) {
    let ticks = (p.secs * 1000 / TICK.as_millis() as u64).max(1);
    let per_tick = p.records.div_ceil(ticks);
    let mut next = 0;
    let mut logged = 0;
    let mut interval = tokio::time::interval(TICK);
    while next < p.records {
        interval.tick().await;
        for n in next..(next + per_tick).min(p.records) {
            let message = format!("soak {i} {n}");
            match client.log(Level::Warn, "soak", None, &message, &[]) {
                Some(LogOutcome::Queued(_)) => logged += 1,
                other => panic!("client {i}: record {n} not queued: {other:?}"),
            }
        }
        next = (next + per_tick).min(p.records);
    }
    (client, logged)
}

/// The boot id, connection (`uid`) and receive time a stored record came with.
type Arrival = (u64, String, u64);

/// What the store holds for one client, in the order the store returns it.
struct Stored {
    /// `(seq, number in the message)` per record.
    records: Vec<(u64, u64)>,
    /// The boot id, connection (`uid`) and receive time each record came with, for the
    /// report of a failure.
    arrivals: Vec<Arrival>,
}

fn stored(server: &ServeProcess, i: usize, p: Params) -> Stored {
    let out = Command::new(sentelite_binary())
        .args(["logs", "query", "--json", "--server"])
        .arg(format!("http://{}", server.addr))
        .args(["--client", &format!("soak-{i}")])
        .args(["--limit", &(2 * p.records + 100).to_string()])
        .output()
        .expect("run sentelite logs query");
    assert!(
        out.status.success(),
        "sentelite logs query failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let prefix = format!("soak {i} ");
    let mut arrivals = Vec::new();
    let records = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            arrivals.push((
                v["boot-id"].as_u64().unwrap_or_default(),
                v["uid"].as_str().unwrap_or_default().to_owned(),
                v["received-ms"].as_u64().unwrap_or_default(),
            ));
            let seq = v["seq"].as_u64().expect("a seq");
            let message = v["message"].as_str().expect("a message");
            let n = message
                .strip_prefix(&prefix)
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("client {i}: a record not its own: {message:?}"));
            (seq, n)
        })
        .collect();
    Stored { records, arrivals }
}

/// Per-client findings from the store.
#[derive(Debug, Default)]
struct Check {
    stored: u64,
    duplicates: u64,
    out_of_order: u64,
    /// The first record stored twice: its seq, and the boot, connection and receive time of each
    /// copy.
    first_duplicate: Option<(u64, Arrival, Arrival)>,
}

fn check(stored: &Stored) -> Check {
    let mut seen = HashMap::new();
    let mut check = Check::default();
    let mut last: Option<(u64, u64)> = None;
    for (k, &(seq, n)) in stored.records.iter().enumerate() {
        check.stored += 1;
        if let Some(&first) = seen.get(&seq) {
            check.duplicates += 1;
            if check.first_duplicate.is_none() {
                let copy = |at: usize| stored.arrivals[at].clone();
                check.first_duplicate = Some((seq, copy(first), copy(k)));
            }
        } else {
            seen.insert(seq, k);
        }
        if last.is_some_and(|(s, m)| seq <= s || n <= m) {
            check.out_of_order += 1;
        }
        last = Some((seq, n));
    }
    check
}

/// Runs the fault schedule over the shipping window: `cuts` cuts and `restarts` server
/// restarts at evenly spaced moments, a short stall, delay or drip after each.
async fn chaos(server: &mut ServeProcess, proxy: &ChaosProxy, p: Params) {
    let events = p.cuts + p.restarts;
    if events == 0 {
        tokio::time::sleep(Duration::from_secs(p.secs)).await;
        return;
    }
    let start = Instant::now();
    let step = Duration::from_secs(p.secs) / (events + 1);
    let mut rng = p.seed | 1;
    for k in 0..events {
        tokio::time::sleep_until((start + step * (k + 1)).into()).await;
        // Restarts spread among the cuts: event k is a restart when it crosses a multiple.
        let restart = (k + 1) * p.restarts / events != k * p.restarts / events;
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        println!(
            "soak: {} at {at_ms} ms",
            if restart { "server restart" } else { "cut" }
        );
        if restart {
            tokio::task::block_in_place(|| server.restart());
        } else {
            proxy.cut_all();
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let lasting = (step / 3).min(Duration::from_millis(500));
        match rng % 3 {
            0 => proxy.inject(Fault::Stall, lasting),
            1 => proxy.inject(Fault::Delay(Duration::from_millis(5)), lasting),
            _ => proxy.inject(Fault::Drip(16 * 1024), lasting),
        }
    }
    tokio::time::sleep_until((start + Duration::from_secs(p.secs)).into()).await;
    proxy.heal();
}

async fn settle(clients: &[Client]) -> Vec<LogStats> {
    let limit = settle_limit();
    let deadline = Instant::now() + limit;
    loop {
        let stats: Vec<LogStats> = clients
            .iter()
            .map(|c| c.log_stats().expect("logging is on"))
            .collect();
        if stats.iter().all(LogStats::settled) {
            return stats;
        }
        if Instant::now() > deadline {
            let unsettled: Vec<_> = stats
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.settled())
                .collect();
            panic!(
                "{} clients still had records unacknowledged {limit:?} after shipping: {unsettled:?}",
                unsettled.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_through_cuts_and_restarts_loses_and_repeats_nothing() {
    let p = Params::from_env();
    println!("soak: {p:?}");
    let mut server = ServeProcess::start(&[]);
    let proxy = ChaosProxy::start(server.addr.parse().expect("server address")).await;
    let began = Instant::now();
    let producers: Vec<_> = (0..p.clients)
        .map(|i| tokio::spawn(produce(client(&proxy, i, p), i, p)))
        .collect();
    chaos(&mut server, &proxy, p).await;
    let mut clients = Vec::new();
    let mut logged = Vec::new();
    for producer in producers {
        let (client, n) = tokio::time::timeout(settle_limit(), producer)
            .await
            .expect("a producer did not finish")
            .expect("a producer failed");
        clients.push(client);
        logged.push(n);
    }
    let stats = settle(&clients).await;
    let shipped_in = began.elapsed();
    for client in &clients {
        client.close().await;
    }

    let mut sent = 0;
    let mut dropped = 0;
    let mut total = Check::default();
    let mut wrong = Vec::new();
    for (i, s) in stats.iter().enumerate() {
        let found = check(&stored(&server, i, p));
        let expected = logged[i] - s.queue.dropped;
        if found.stored != expected || found.duplicates > 0 || found.out_of_order > 0 {
            wrong.push(format!(
                "client {i}: sent {} dropped {} stored {} duplicates {} out of order {}; \
                 first stored twice (seq, (boot-id, uid, received-ms) of each copy): {:?}",
                logged[i],
                s.queue.dropped,
                found.stored,
                found.duplicates,
                found.out_of_order,
                found.first_duplicate
            ));
        }
        sent += logged[i];
        dropped += s.queue.dropped;
        total.stored += found.stored;
        total.duplicates += found.duplicates;
        total.out_of_order += found.out_of_order;
    }
    println!(
        "soak: {} clients, records sent {sent}, stored {}, dropped {dropped}, duplicates {}, \
         out of order {}, connection cuts {} (open connections dropped {}), server restarts {}, \
         connections {}, {:.1} s to ship and settle",
        p.clients,
        total.stored,
        total.duplicates,
        total.out_of_order,
        p.cuts,
        proxy.cut(),
        p.restarts,
        proxy.connections(),
        shipped_in.as_secs_f64()
    );
    assert_eq!(sent, p.clients as u64 * p.records, "records sent");
    assert!(
        wrong.is_empty(),
        "the store disagrees:\n{}",
        wrong.join("\n")
    );
    assert_eq!(total.stored, sent - dropped);
    if p.queue as u64 >= p.records {
        assert_eq!(dropped, 0, "queues that hold every record dropped some");
    }
    // The faults happened: every cut that found clients connected dropped some.
    if p.cuts > 0 {
        assert!(proxy.cut() > 0, "no connection was cut");
    }
}
