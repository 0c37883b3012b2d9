//! Fetch MB/s beside curl's, in one run: a blob of `--mib N` (default 512) bytes is served on
//! loopback by the test blob server (tower-http `ServeDir`); each round `curl -o /dev/null`
//! fetches it, then the client: the bare reqwless exchange (no hash, to show what the HTTP
//! layer costs), the full verified fetch (the core's machine, SHA-256 checked) into a sink
//! that keeps nothing — hashing in line with the reads, then on a second thread beside them —
//! and the latter into a `FileSink`; then SHA-256 alone over the same number of bytes. Run with
//! `cargo run --release -p sentelite-integration-tests --bin blob_fetch_bench -- [--mib N]
//! [--rounds N] [--host]`; `--host` serves the blob from the host's own `/blobs` route.

use std::time::Instant;

use sentelite_core::StdClock;
use sentelite_core::blob::{BlobSink, End, FetchPlan, SinkError};
use sentelite_driver::blob::FileSink;
use sentelite_driver::blob::fetcher::{self, BlobFetch};
use sentelite_driver::blob::http::{self, BodySink, Head, HttpTarget};
use sentelite_integration_tests::TempDir;
use sentelite_integration_tests::blob_server;
use sentelite_tokio::TokioRuntime;
use sha2::{Digest, Sha256};

/// Counts the body, keeps nothing.
struct Discard(u64, Vec<u8>);

impl BodySink for Discard {
    fn head(&mut self, head: &Head) -> bool {
        head.status == 200
    }
    async fn buffer(&mut self) -> Option<&mut [u8]> {
        Some(&mut self.1)
    }
    fn filled(&mut self, n: usize) -> bool {
        self.0 += n as u64;
        true
    }
}

/// A sink that takes every byte and stores none: the verified fetch without storage costs.
struct NullSink(u64);

impl BlobSink for NullSink {
    fn erase_block(&self) -> u32 {
        1
    }
    fn contains(&mut self, _: &[u8; 32]) -> bool {
        false
    }
    fn begin(&mut self, _: u64) -> Result<(), SinkError> {
        self.0 = 0;
        Ok(())
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), SinkError> {
        self.0 = offset + data.len() as u64;
        Ok(())
    }
    fn durable(&self) -> u64 {
        0
    }
    fn commit(&mut self, _: &[u8; 32]) -> Result<(), SinkError> {
        Ok(())
    }
    fn abort(&mut self) {
        self.0 = 0;
    }
}

fn blob(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut data = Vec::with_capacity(len);
    while data.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        data.extend_from_slice(&state.to_le_bytes());
    }
    data.truncate(len);
    data
}

fn mbps(bytes: u64, started: Instant) -> f64 {
    bytes as f64 / started.elapsed().as_secs_f64() / 1e6
}

async fn verified(
    runtime: &TokioRuntime,
    url: &str,
    size: u64,
    sha: [u8; 32],
    mut sink: impl BlobSink + Send + 'static,
    parallel: bool,
) -> f64 {
    let clock = StdClock::start();
    let plan = FetchPlan::new(url, size, sha).expect("plan");
    let fetch = BlobFetch::new(clock.now(), plan, &mut sink);
    let started = Instant::now();
    let (end, _, _) = fetcher::run(
        runtime,
        &clock,
        fetch,
        sink,
        parallel,
        &mut |_| {},
        std::future::pending(),
    )
    .await;
    let speed = mbps(size, started);
    assert!(
        matches!(end, End::Completed { sha256, .. } if sha256 == sha),
        "{end:?}"
    );
    speed
}

/// `Fetch::on_body` fed from memory in 1 MiB pieces: the machine's own cost (hash, sink
/// write, checkpoints), without the network.
fn machine_alone(size: u64) -> f64 {
    let clock = StdClock::start();
    let piece = vec![0x5au8; fetcher::READ_BUF];
    let mut sink = NullSink(0);
    let plan = FetchPlan::new("http://127.0.0.1:1/x", size, [0; 32]).expect("plan");
    let mut fetch = BlobFetch::new(clock.now(), plan, &mut sink);
    let _ = fetch.poll_action(clock.now(), &mut sink);
    let head = sentelite_core::blob::ResponseHead {
        status: 200,
        range_start: None,
        total: Some(size),
        etag: None,
    };
    fetch.on_response(clock.now(), head).expect("head taken");
    let started = Instant::now();
    let mut fed = 0u64;
    while fed < size {
        let n = (size - fed).min(piece.len() as u64) as usize;
        let _ = fetch.on_body(clock.now(), &piece[..n], &mut sink);
        fed += n as u64;
    }
    mbps(fed, started)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (mib, rounds) = (arg("--mib", 512), arg("--rounds", 3));
    let dir = TempDir::new("blob-bench");
    let sink_dir = TempDir::new("blob-bench-sink");
    let data = blob(mib << 20);
    let sha: [u8; 32] = Sha256::digest(&data).into();
    let sha_hex = blob_server::store(dir.path(), &data);
    let size = data.len() as u64;
    drop(data);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // `--host`: the host's own blob route (sentelite-host's `BlobService` on the same
        // directory) instead of the test server; the server is kept alive for the rounds.
        let (url, _host) = if args.iter().any(|a| a == "--host") {
            let blobs = sentelite_host::blob::BlobService::start(dir.path(), &Default::default())
                .expect("blob service");
            let server = sentelite_host::Server::builder()
                .listen("127.0.0.1:0")
                .data_dir(dir.path())
                .with_blobs(blobs.clone())
                .bind()
                .await
                .expect("host server");
            let base = format!("http://{}", server.local_addr());
            blobs.set_base_url(&base);
            (format!("{base}/blobs/{sha_hex}"), Some(server))
        } else {
            (blob_server::start(dir.path()).await.url(&sha_hex), None)
        };
        let runtime = TokioRuntime::current().expect("runtime");
        println!("{mib} MiB from {url}, MB/s (1 MB = 10^6 bytes)");
        for round in 0..rounds {
            let started = Instant::now();
            let curl_url = url.clone();
            let status = tokio::task::spawn_blocking(move || {
                std::process::Command::new("curl")
                    .args(["-s", "-o", "/dev/null", &curl_url])
                    .status()
            })
            .await
            .expect("join")
            .expect("run curl");
            assert!(status.success(), "curl failed");
            let curl = mbps(size, started);

            let target = HttpTarget::parse(&url).expect("url");
            let mut discard = Discard(0, vec![0u8; fetcher::READ_BUF]);
            let started = Instant::now();
            http::exchange(&runtime, http::Method::GET, &target, &[], &[], &mut discard)
                .await
                .expect("fetch");
            let raw = mbps(discard.0, started);
            assert_eq!(discard.0, size);

            let inline = verified(&runtime, &url, size, sha, NullSink(0), false).await;
            let null = verified(&runtime, &url, size, sha, NullSink(0), true).await;
            let _ = std::fs::remove_file(sink_dir.path().join(&sha_hex));
            let file_sink = FileSink::new(sink_dir.path(), &sha);
            let file = verified(&runtime, &url, size, sha, file_sink, true).await;
            let hashed = {
                let piece = vec![0x5au8; 64 << 20];
                let mut hasher = Sha256::new();
                let started = Instant::now();
                for _ in 0..(size / piece.len() as u64).max(1) {
                    hasher.update(&piece);
                }
                std::hint::black_box(hasher.finalize());
                mbps(
                    (size / piece.len() as u64).max(1) * piece.len() as u64,
                    started,
                )
            };
            let machine = machine_alone(size);
            println!(
                "round {round}: curl {curl:.0}  reqwless unverified {raw:.0}  \
                 verified (hash in line) {inline:.0}  verified (hash in parallel) {null:.0}  \
                 same into FileSink {file:.0}  (sha256 alone {hashed:.0}, \
                 the fetch machine's on_body alone {machine:.0})"
            );
        }
    });
}
