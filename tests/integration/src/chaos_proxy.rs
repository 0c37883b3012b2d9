//! A TCP proxy whose faults a test switches at run time: cut every open connection now,
//! stall (forward nothing for a while), delay (latency per chunk), slow-drip (a byte rate),
//! or a seeded random mix of these. Clients connect to it instead of the server, so a test
//! sees how they live through a bad network while it checks what the server kept.
//!
//! Every fault is bounded: a stall, delay or drip carries its own end time and the random
//! mode stops at a deadline, and the proxy's tasks stop with the runtime they run on.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does to the bytes it forwards, until its end time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward nothing (bytes wait in the proxy and the socket buffers).
    Stall,
    /// Wait this long before forwarding each chunk.
    Delay(Duration),
    /// Forward at most this many bytes per second in each direction of each connection.
    Drip(u64),
}

/// The proxy's state shared with its connection tasks.
#[derive(Default)]
struct Shared {
    /// The fault in force and when it ends.
    fault: Mutex<Option<(Fault, Instant)>>,
    /// Bytes forwarded, both directions.
    bytes: AtomicU64,
    /// Connections accepted.
    connections: AtomicU32,
    /// Connections cut by [`ChaosProxy::cut_all`].
    cut: AtomicU32,
}

impl Shared {
    /// The fault in force now, if any.
    fn fault(&self) -> Option<Fault> {
        let mut fault = self.fault.lock().expect("fault lock");
        match *fault {
            Some((f, until)) if Instant::now() < until => Some(f),
            Some(_) => {
                *fault = None;
                None
            }
            None => None,
        }
    }

    /// When the fault in force ends.
    fn fault_end(&self) -> Option<Instant> {
        self.fault
            .lock()
            .expect("fault lock")
            .map(|(_, until)| until)
    }
}

/// A running chaos proxy; it stops with the runtime it was spawned on.
pub struct ChaosProxy {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    /// Bumped to cut every open connection.
    generation: watch::Sender<u64>,
}

impl ChaosProxy {
    /// Proxies `127.0.0.1:<port>` to `upstream`, forwarding untouched until told otherwise.
    pub async fn start(upstream: SocketAddr) -> ChaosProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let shared = Arc::new(Shared::default());
        let (generation, _) = watch::channel(0u64);
        let accepting = (shared.clone(), generation.clone());
        tokio::spawn(async move {
            let (shared, generation) = accepting;
            while let Ok((client, _)) = listener.accept().await {
                shared.connections.fetch_add(1, Ordering::Relaxed);
                let cut = generation.subscribe();
                let shared = shared.clone();
                tokio::spawn(async move {
                    // A server that is down refuses; the client sees its connection close.
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        relay(client, server, cut, shared).await;
                    }
                });
            }
        });
        ChaosProxy {
            addr,
            shared,
            generation,
        }
    }

    /// Drops every open connection at once, as a network failure would (clients see a reset
    /// or EOF); new connections are accepted as before.
    pub fn cut_all(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// Puts `fault` in force for `duration` (replacing any other).
    pub fn inject(&self, fault: Fault, duration: Duration) {
        *self.shared.fault.lock().expect("fault lock") = Some((fault, Instant::now() + duration));
    }

    /// Ends the fault in force.
    pub fn heal(&self) {
        *self.shared.fault.lock().expect("fault lock") = None;
    }

    /// Until `deadline`, every `period` puts in force one fault drawn from `seed`: a cut, a
    /// stall, a delay or a drip, each lasting less than `period`. Returns the number of faults
    /// injected once the deadline has passed. The seed is printed so a failing run repeats.
    pub async fn random(&self, seed: u64, period: Duration, deadline: Instant) -> u32 {
        println!(
            "chaos proxy {}: random faults every {period:?}, seed {seed}",
            self.addr
        );
        let mut rng = seed | 1;
        let mut injected = 0;
        while Instant::now() + period <= deadline {
            let roll = xorshift(&mut rng);
            let lasting = period.mul_f64(0.2 + (roll >> 40) as f64 / (1u64 << 24) as f64 * 0.6);
            match roll % 4 {
                0 => self.cut_all(),
                1 => self.inject(Fault::Stall, lasting),
                2 => self.inject(Fault::Delay(Duration::from_millis(1 + roll % 20)), lasting),
                _ => self.inject(Fault::Drip(4096 + roll % 65536), lasting),
            }
            injected += 1;
            tokio::time::sleep(period).await;
        }
        self.heal();
        injected
    }

    /// Bytes forwarded so far, both directions.
    pub fn bytes(&self) -> u64 {
        self.shared.bytes.load(Ordering::Relaxed)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u32 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Open connections dropped by [`ChaosProxy::cut_all`] so far.
    pub fn cut(&self) -> u32 {
        self.shared.cut.load(Ordering::SeqCst)
    }
}

/// A small xorshift: fault choices only need to vary and repeat from a seed.
fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// Forwards both ways until either side closes or the connection is cut.
async fn relay(
    client: TcpStream,
    server: TcpStream,
    mut cut: watch::Receiver<u64>,
    shared: Arc<Shared>,
) {
    let (client_rd, client_wr) = client.into_split();
    let (server_rd, server_wr) = server.into_split();
    tokio::select! {
        _ = forward(client_rd, server_wr, &shared) => {}
        _ = forward(server_rd, client_wr, &shared) => {}
        changed = cut.changed() => {
            if changed.is_ok() {
                shared.cut.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    // Both sockets drop here: the peers see the connection end.
}

/// Copies `from` to `to`, applying the fault in force to each chunk; returns when `from`
/// ends or `to` fails.
async fn forward(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, shared: &Shared) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut chunk = &buf[..n];
        while !chunk.is_empty() {
            let step = match shared.fault() {
                None => chunk.len(),
                Some(Fault::Stall) => {
                    let end = shared.fault_end().unwrap_or_else(Instant::now);
                    tokio::time::sleep_until(end.into()).await;
                    continue;
                }
                Some(Fault::Delay(wait)) => {
                    tokio::time::sleep(wait).await;
                    chunk.len()
                }
                Some(Fault::Drip(rate)) => {
                    // A tenth of a second's worth at a time.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    (rate as usize / 10).clamp(1, chunk.len())
                }
            };
            if to.write_all(&chunk[..step]).await.is_err() {
                return;
            }
            shared.bytes.fetch_add(step as u64, Ordering::Relaxed);
            chunk = &chunk[step..];
        }
    }
}
