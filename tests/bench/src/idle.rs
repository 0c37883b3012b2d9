//! Idle connections: server memory (resident set, `VmRSS` of `/proc/<pid>/status`) per
//! handshaken connection that then stays silent, for `sentelite serve` and for mosquitto in
//! the same run: RSS after N connections minus RSS before, divided by N.
//!
//! Client sockets take their source address from 127.0.0.1, .2, … ([`PER_SOURCE`] each), so
//! the ephemeral port range never runs out. This program raises its open-file limit to the
//! hard limit; the servers, started by it, inherit that limit (`sentelite serve` does not
//! raise its own).

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use clap::Args;
use tokio::net::{TcpSocket, TcpStream};

use crate::logs::data_dir;
use crate::{mqtt, mqtt_raw, native, serve};

/// Options of `sentelite-bench idle`.
#[derive(Debug, Args)]
pub struct IdleArgs {
    /// Idle connections to open on each server
    #[arg(long, default_value_t = 19_000)]
    connections: usize,
    /// Connections being opened at once
    #[arg(long, default_value_t = 16)]
    parallel: usize,
    /// Fail when mosquitto is not installed, instead of printing the table without it
    #[arg(long)]
    require_baseline: bool,
}

/// Client sockets per source address.
const PER_SOURCE: usize = 8_192;
/// File descriptors kept free for everything else (listeners, stores, the runtime).
const SPARE_FDS: u64 = 200;
/// Longest the opening of all connections may take.
const OPEN_ALL_WITHIN: Duration = Duration::from_secs(900);
/// The goal for sentelite, bytes per idle connection.
const GOAL: f64 = 2048.0;

/// One server's figures.
struct Resident {
    before: u64,
    after: u64,
    connections: usize,
}

impl Resident {
    fn per_connection(&self) -> f64 {
        self.after.saturating_sub(self.before) as f64 / self.connections as f64
    }
}

pub async fn run(args: IdleArgs) -> Result<(), String> {
    let limit = raise_open_file_limit()?;
    let n = args.connections.max(1);
    if n as u64 + SPARE_FDS > limit {
        return Err(format!(
            "{n} connections need about {} open files; the limit is {limit} \
             (raise the hard limit, e.g. `ulimit -Hn`, or pass a smaller --connections)",
            n as u64 + SPARE_FDS
        ));
    }
    let mosquitto = mqtt::mosquitto_path();
    if mosquitto.is_none() && args.require_baseline {
        return Err("mosquitto is not installed (Debian package `mosquitto`)".into());
    }
    let binary = serve::build_sentelite()?;
    let ours = sentelite(&binary, n, args.parallel).await?;
    let theirs = match &mosquitto {
        Some(path) => Some(mosquitto_idle(path, n, args.parallel).await?),
        None => None,
    };
    println!(
        "Idle connections: server RSS per handshaken idle connection, {n} connections, \
         open-file limit {limit}"
    );
    println!();
    println!(
        "| server | connections | RSS before (KiB) | RSS after (KiB) | bytes per connection | vs mosquitto | goal ≤ 2 KiB | issue's reference |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|---:|");
    let baseline = theirs.as_ref().map(Resident::per_connection);
    let verdict = if ours.per_connection() <= GOAL {
        "met"
    } else {
        "missed"
    };
    print_row(
        "sentelite",
        &ours,
        &baseline.map_or("mosquitto not installed".to_owned(), |b| {
            format!("{:.1}×", ours.per_connection() / b)
        }),
        verdict,
        "7.9 KB",
    );
    match &theirs {
        Some(t) => print_row("mosquitto", t, "1.0×", "", "0.74 KB"),
        None => println!("| mosquitto | not installed | | | | | | 0.74 KB |"),
    }
    Ok(())
}

fn print_row(name: &str, r: &Resident, ratio: &str, goal: &str, reference: &str) {
    println!(
        "| {name} | {} | {} | {} | {:.0} | {ratio} | {goal} | {reference} |",
        r.connections,
        r.before / 1024,
        r.after / 1024,
        r.per_connection(),
    );
}

/// Sets this process's soft open-file limit to its hard limit; returns the new soft limit.
fn raise_open_file_limit() -> Result<u64, String> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    setrlimit(Resource::Nofile, limit).map_err(|e| format!("raise the open-file limit: {e}"))?;
    Ok(getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX))
}

async fn sentelite(
    binary: &std::path::Path,
    n: usize,
    parallel: usize,
) -> Result<Resident, String> {
    let dir = data_dir("idle");
    // Room for every connection; clients that never ping are not declared dead meanwhile.
    let settings = format!(
        "max-connections = {}\nheartbeat-interval-ms = 600000\nheartbeat-timeout-ms = 1200000\n",
        n + 64
    );
    let server = serve::start(binary, &dir, &settings)?;
    let addr: SocketAddr = server.addr.parse().map_err(|e| format!("{e}"))?;
    let url = format!("ws://{addr}/ws");
    let open = move |i: usize, tag: &'static str| {
        let url = url.clone();
        async move {
            let stream = tcp_from(i, addr).await?;
            let mut ws = native::connect_over(&url, stream).await?;
            native::handshake(&mut ws, &format!("{tag}-{i}")).await?;
            Ok(ws)
        }
    };
    let measured = measure(server.pid(), n, parallel, open).await;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    measured
}

async fn mosquitto_idle(
    binary: &std::path::Path,
    n: usize,
    parallel: usize,
) -> Result<Resident, String> {
    let (broker, port) = mqtt::start(binary, "max_connections -1\n")?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let open = move |i: usize, tag: &'static str| async move {
        let stream = tcp_from(i, addr).await?;
        mqtt_raw::handshake(stream, &format!("{tag}-{i}")).await
    };
    measure(broker.pid(), n, parallel, open).await
}

/// Warms the server up with a few connections, then reads its RSS before and after opening
/// `n` handshaken connections with `open`.
async fn measure<T, F, Fut>(
    pid: u32,
    n: usize,
    parallel: usize,
    open: F,
) -> Result<Resident, String>
where
    T: Send + 'static,
    F: Fn(usize, &'static str) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<T, String>> + Send,
{
    // Runtime, allocator arenas and listener warmed up first, on addresses not used below.
    let warm = open_all(16, parallel, open.clone(), "warm").await?;
    drop(warm);
    let before = settled_rss(pid).await?;
    let clients = open_all(n, parallel, open, "idle").await?;
    let after = settled_rss(pid).await?;
    drop(clients);
    Ok(Resident {
        before,
        after,
        connections: n,
    })
}

/// Opens `n` connections, `parallel` at a time.
async fn open_all<T, F, Fut>(
    n: usize,
    parallel: usize,
    open: F,
    tag: &'static str,
) -> Result<Vec<T>, String>
where
    T: Send + 'static,
    F: Fn(usize, &'static str) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<T, String>> + Send,
{
    let parallel = parallel.clamp(1, n.max(1));
    let deadline = tokio::time::Instant::now() + OPEN_ALL_WITHIN;
    let mut workers = Vec::new();
    for w in 0..parallel {
        let open = open.clone();
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for i in (w..n).step_by(parallel) {
                let step = (tokio::time::Instant::now() + Duration::from_secs(30)).min(deadline);
                let opened = tokio::time::timeout_at(step, open(i, tag))
                    .await
                    .map_err(|_| format!("connection {i} not open in time"))??;
                mine.push(opened);
            }
            Ok::<_, String>(mine)
        }));
    }
    let mut all = Vec::with_capacity(n);
    for worker in workers {
        all.extend(worker.await.map_err(|e| e.to_string())??);
    }
    Ok(all)
}

/// A TCP connection to `dest` from 127.0.0.x, x chosen by the connection's index.
async fn tcp_from(i: usize, dest: SocketAddr) -> Result<TcpStream, String> {
    let x = u8::try_from(1 + i / PER_SOURCE).map_err(|_| "too many connections")?;
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::from((Ipv4Addr::new(127, 0, 0, x), 0)))
        .map_err(|e| format!("bind 127.0.0.{x}: {e}"))?;
    let stream = socket
        .connect(dest)
        .await
        .map_err(|e| format!("connect from 127.0.0.{x}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(stream)
}

/// Resident bytes of `pid` once two readings 200 ms apart agree (at most 50 readings).
async fn settled_rss(pid: u32) -> Result<u64, String> {
    let mut last = rss(pid)?;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = rss(pid)?;
        if now == last {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}

/// `VmRSS` of `pid`, in bytes.
pub fn rss(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| "no VmRSS in /proc status".into())
}
