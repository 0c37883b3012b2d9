//! Server memory per idle connection.
//!
//! Runs the server twice as a child process (this same executable, in server mode): once
//! with sentelite's default WebSocket read buffer and once with tungstenite's default (128 KiB)
//! as the baseline. For each, it opens N handshaken native clients that then stay silent, and
//! reads the child's resident set size (`VmRSS` in `/proc/PID/status`) before and after.
//!
//! `cargo bench -p sentelite-host --bench idle_connections`
//! (`SENTELITE_BENCH_CONNECTIONS` sets N, 1..=2000, default 500.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sentelite_core::frame::{Frame, Hello};
use sentelite_host::{Server, ServerSettings};
use tokio_tungstenite::tungstenite::Message;

/// Set in the child: the read buffer size to serve with.
const SERVER_MODE: &str = "SENTELITE_BENCH_SERVER_READ_BUFFER";
const GOAL_BYTES: f64 = 8.0 * 1024.0;
const TUNGSTENITE_DEFAULT_READ_BUFFER: usize = 128 * 1024;
const STEP: Duration = Duration::from_secs(10);

fn main() {
    if let Ok(read_buffer) = std::env::var(SERVER_MODE) {
        let read_buffer = read_buffer.parse().expect("read buffer size");
        serve(read_buffer);
        return;
    }
    let n = std::env::var("SENTELITE_BENCH_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(500)
        .clamp(1, 2000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    println!("idle connections: {n} per run");
    let buffer = ServerSettings::default().read_buffer_bytes;
    let label = format!("sentelite ({buffer} B read buffer)");
    let ours = rt.block_on(measure(&label, buffer, n));
    let baseline = rt.block_on(measure(
        "baseline (tungstenite default read buffer)",
        TUNGSTENITE_DEFAULT_READ_BUFFER,
        n,
    ));
    println!(
        "ratio: sentelite uses {:.1}% of the baseline ({:.1}x less)",
        100.0 * ours / baseline,
        baseline / ours
    );
    let verdict = if ours <= GOAL_BYTES { "met" } else { "MISSED" };
    println!(
        "goal <= {:.0} B per idle connection: {verdict} ({ours:.0} B)",
        GOAL_BYTES
    );
}

/// Child side: a server with `read_buffer` bytes of read buffer, until stdin closes.
fn serve(read_buffer: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let data = std::env::temp_dir().join(format!("sentelite-bench-{}", std::process::id()));
        let settings = ServerSettings {
            read_buffer_bytes: read_buffer,
            max_connections: 10_000,
            max_handshaking: 10_000,
            heartbeat_interval_ms: 600_000,
            heartbeat_timeout_ms: 1_200_000,
            ..ServerSettings::default()
        };
        let server = Server::builder()
            .listen("127.0.0.1:0")
            .data_dir(&data)
            .config(settings)
            .bind()
            .await
            .expect("bind");
        println!("{}", server.local_addr());
        std::io::stdout().flush().unwrap();
        // The parent closes stdin when it is done.
        tokio::task::spawn_blocking(|| {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        })
        .await
        .unwrap();
        server.shutdown().await;
        let _ = std::fs::remove_dir_all(&data);
    });
}

/// Runs one server and returns its resident bytes per idle connection.
async fn measure(label: &str, read_buffer: usize, n: usize) -> f64 {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(SERVER_MODE, read_buffer.to_string())
        .env("SENTELITE_LOG", "off")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("server child starts");
    let addr = read_addr(&mut child);
    let pid = child.id();

    // Warm up the runtime, allocator arenas and listener with a few connections first.
    let warm: Vec<_> = open_clients(addr, 16, "warm").await;
    drop(warm);
    let before = settled_rss(pid).await;
    let clients = open_clients(addr, n, "idle").await;
    let after = settled_rss(pid).await;
    let per_conn = after.saturating_sub(before) as f64 / n as f64;
    println!(
        "{label}: RSS {} KiB -> {} KiB, {:.0} B per idle connection",
        before / 1024,
        after / 1024,
        per_conn
    );
    drop(clients);
    drop(child.stdin.take());
    let _ = child.wait();
    per_conn
}

fn read_addr(child: &mut Child) -> SocketAddr {
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    line.trim().parse().expect("child prints its address")
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `n` connections and completes each handshake.
async fn open_clients(addr: SocketAddr, n: usize, tag: &str) -> Vec<Ws> {
    let mut clients = Vec::with_capacity(n);
    for i in 0..n {
        let client_id = format!("{tag}-{i}");
        let ws = tokio::time::timeout(STEP, handshake(addr, &client_id))
            .await
            .expect("handshake in time");
        clients.push(ws);
    }
    clients
}

async fn handshake(addr: SocketAddr, client_id: &str) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("connects");
    let hello = Frame::Hello(Hello {
        client_id,
        boot_id: 1,
        token: None,
        capabilities: 0,
        max_frame: 4096,
        firmware: None,
    });
    let mut buf = [0u8; 128];
    let len = sentelite_core::encode(&hello, &mut buf).unwrap();
    ws.send(Message::Binary(buf[..len].to_vec().into()))
        .await
        .unwrap();
    match ws.next().await {
        Some(Ok(Message::Binary(bytes))) => {
            assert!(matches!(
                sentelite_core::decode(&bytes),
                Ok(Frame::Welcome(_))
            ));
        }
        other => panic!("expected a welcome, got {other:?}"),
    }
    ws
}

/// Resident bytes of `pid` once two readings 100 ms apart agree (at most 30 readings).
async fn settled_rss(pid: u32) -> u64 {
    let mut last = rss(pid);
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = rss(pid);
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .expect("VmRSS line")
}
