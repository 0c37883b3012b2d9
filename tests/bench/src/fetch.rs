//! The client side of the blob bench: the driver's fetch loop (tokio runtime) verifying into
//! a sink that keeps nothing, so the figure is HTTP + SHA-256, as `curl -o /dev/null` is
//! HTTP alone.

use sentelite_core::StdClock;
use sentelite_core::blob::{BlobSink, End, FetchPlan, SinkError, hex};
use sentelite_driver::blob::fetcher::{self, BlobFetch};
use sentelite_tokio::TokioRuntime;

/// Takes every byte and stores none.
struct NullSink;

impl BlobSink for NullSink {
    fn erase_block(&self) -> u32 {
        1
    }
    fn contains(&mut self, _: &[u8; 32]) -> bool {
        false
    }
    fn begin(&mut self, _: u64) -> Result<(), SinkError> {
        Ok(())
    }
    fn write_at(&mut self, _: u64, _: &[u8]) -> Result<(), SinkError> {
        Ok(())
    }
    fn durable(&self) -> u64 {
        0
    }
    fn commit(&mut self, _: &[u8; 32]) -> Result<(), SinkError> {
        Ok(())
    }
    fn abort(&mut self) {}
}

/// Fetches `url` (`size` bytes, SHA-256 `sha256_hex`) once, verified, hashing on a second
/// thread when `parallel`; returns the bytes.
pub async fn verified(
    url: &str,
    sha256_hex: &str,
    size: u64,
    parallel: bool,
) -> Result<u64, String> {
    let sha256 = hex::decode(sha256_hex).ok_or("bad hash")?;
    let runtime = TokioRuntime::current().ok_or("no tokio runtime")?;
    let clock = StdClock::start();
    let plan = FetchPlan::new(url, size, sha256).map_err(|e| format!("{e:?}"))?;
    let mut sink = NullSink;
    let fetch = BlobFetch::new(clock.now(), plan, &mut sink);
    let (end, _, _) = fetcher::run(
        &runtime,
        &clock,
        fetch,
        sink,
        parallel,
        &mut |_| {},
        std::future::pending(),
    )
    .await;
    match end {
        End::Completed { sha256: got, .. } if got == sha256 => Ok(size),
        other => Err(format!("fetch ended {other:?}")),
    }
}
