//! Fetch MB/s beside curl's, in one run: a blob of `--mib N` (default 512) random-ish bytes is
//! served on loopback by the test blob server; `curl -o /dev/null` fetches it, then the client's
//! verified fetch does. Run with `cargo run --release -p sentelite-integration-tests --bin
//! blob_fetch_bench -- [--mib N]`.

use std::time::Instant;

use sentelite_driver::blob::http::{self, BodySink, Head, HttpTarget};
use sentelite_integration_tests::TempDir;
use sentelite_integration_tests::blob_server;
use sha2::{Digest, Sha256};

struct Hashing {
    hasher: Sha256,
    bytes: u64,
    verify: bool,
}

impl BodySink for Hashing {
    fn head(&mut self, head: &Head) -> bool {
        head.status == 200
    }
    fn chunk(&mut self, data: &[u8]) -> bool {
        if self.verify {
            self.hasher.update(data);
        }
        self.bytes += data.len() as u64;
        true
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

fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / secs / 1e6
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mib: usize = args
        .iter()
        .position(|a| a == "--mib")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    let dir = TempDir::new("blob-bench");
    let data = blob(mib << 20);
    let sha = blob_server::store(dir.path(), &data);
    drop(data);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let server = blob_server::start(dir.path()).await;
        let url = server.url(&sha);
        let runtime = sentelite_tokio::TokioRuntime::current().expect("runtime");
        for round in 0..2 {
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
            let curl = started.elapsed().as_secs_f64();

            let target = HttpTarget::parse(&url).expect("url");
            let mut buf = vec![0u8; 1 << 20];
            let mut sink = Hashing {
                hasher: Sha256::new(),
                bytes: 0,
                verify: false,
            };
            let started = Instant::now();
            http::exchange(
                &runtime,
                http::Method::GET,
                &target,
                &[],
                &[],
                &mut buf,
                &mut sink,
            )
            .await
            .expect("fetch");
            let raw = started.elapsed().as_secs_f64();
            let mut sink = Hashing {
                hasher: Sha256::new(),
                bytes: 0,
                verify: true,
            };
            let started = Instant::now();
            http::exchange(
                &runtime,
                http::Method::GET,
                &target,
                &[],
                &[],
                &mut buf,
                &mut sink,
            )
            .await
            .expect("fetch");
            let ours = started.elapsed().as_secs_f64();
            assert_eq!(hex::encode(sink.hasher.finalize()), sha, "hash mismatch");
            println!(
                "round {round}: {mib} MiB  curl {:.0} MB/s  reqwless unverified {:.0} MB/s  \
                 sentelite verified {:.0} MB/s",
                mbps(sink.bytes, curl),
                mbps(sink.bytes, raw),
                mbps(sink.bytes, ours)
            );
        }
    });
}
