//! A TCP proxy that breaks connections on purpose: the first `cut` connections are dropped
//! after a random number of response bytes (below `max_cut_at`), later ones pass untouched.
//! Between the client and a blob server it exercises resuming and retrying on real sockets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A running proxy; it stops with the runtime it was spawned on.
pub struct FaultProxy {
    /// Where it listens.
    pub addr: SocketAddr,
    cuts: Arc<AtomicU32>,
    connections: Arc<AtomicU32>,
}

impl FaultProxy {
    /// Connections it cut so far.
    pub fn cuts(&self) -> u32 {
        self.cuts.load(Ordering::Relaxed)
    }

    /// Connections it accepted so far.
    pub fn connections(&self) -> u32 {
        self.connections.load(Ordering::Relaxed)
    }
}

/// A small xorshift: the cut offsets only need to vary, and the seed is printed so a failing
/// run can be repeated.
fn next(state: &AtomicU64) -> u64 {
    let mut x = state.load(Ordering::Relaxed);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    state.store(x, Ordering::Relaxed);
    x
}

/// Proxies `127.0.0.1:<port>` to `upstream`, cutting the first `cut` connections after fewer
/// than `max_cut_at` response bytes.
pub async fn start(upstream: SocketAddr, cut: u32, max_cut_at: u64, seed: u64) -> FaultProxy {
    let listen = SocketAddr::from(([127, 0, 0, 1], 0));
    start_on(listen, upstream, cut, max_cut_at, seed).await
}

/// The same, listening on `listen` (an address inside a test's network namespace, say).
pub async fn start_on(
    listen: SocketAddr,
    upstream: SocketAddr,
    cut: u32,
    max_cut_at: u64,
    seed: u64,
) -> FaultProxy {
    let listener = TcpListener::bind(listen).await.expect("bind proxy");
    let addr = listener.local_addr().expect("proxy addr");
    let cuts = Arc::new(AtomicU32::new(0));
    let connections = Arc::new(AtomicU32::new(0));
    let rng = Arc::new(AtomicU64::new(seed | 1));
    println!("fault proxy {addr} -> {upstream}: cut {cut} connections, seed {seed}");
    let (cuts2, connections2) = (cuts.clone(), connections.clone());
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let n = connections2.fetch_add(1, Ordering::Relaxed);
            let limit = (n < cut).then(|| 1 + next(&rng) % max_cut_at.max(1));
            let cuts = cuts2.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    return;
                };
                if pipe(client, server, limit).await {
                    cuts.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    FaultProxy {
        addr,
        cuts,
        connections,
    }
}

/// Copies both ways until either side closes, or until `limit` response bytes went through
/// (then both are dropped and `true` returned).
async fn pipe(client: TcpStream, server: TcpStream, limit: Option<u64>) -> bool {
    let (mut client_rd, mut client_wr) = client.into_split();
    let (mut server_rd, mut server_wr) = server.into_split();
    let upstream = async {
        let _ = tokio::io::copy(&mut client_rd, &mut server_wr).await;
        let _ = server_wr.shutdown().await;
        std::future::pending::<bool>().await
    };
    let downstream = async {
        let mut buf = vec![0u8; 64 * 1024];
        let mut sent = 0u64;
        loop {
            let n = match server_rd.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => n,
            };
            let allowed = limit.map_or(n as u64, |l| (l - sent).min(n as u64)) as usize;
            if client_wr.write_all(&buf[..allowed]).await.is_err() {
                return false;
            }
            sent += allowed as u64;
            if limit.is_some_and(|l| sent >= l) {
                return true;
            }
        }
    };
    tokio::select! {
        cut = downstream => cut,
        never = upstream => never,
    }
}
