//! The same fetch loop on smol: the driver's fetcher drives the core's machine over smol's
//! TCP stream, through a proxy that cuts connections, into a memory sink.

use std::time::Duration;

use sentelite_core::StdClock;
use sentelite_core::blob::{End, FetchPlan};
use sentelite_driver::blob::MemoryStore;
use sentelite_driver::blob::fetcher::{self, BlobFetch};
use sentelite_integration_tests::{TempDir, blob_server, fault_proxy};
use sentelite_smol::SmolRuntime;
use sha2::{Digest, Sha256};

#[test]
fn smol_fetch_hashing_in_line_resumes_through_cuts() {
    fetch_through_cuts(false);
}

#[test]
fn smol_fetch_hashing_on_a_second_thread_resumes_through_cuts() {
    fetch_through_cuts(true);
}

fn fetch_through_cuts(parallel: bool) {
    let data: Vec<u8> = (0..(2u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let sha: [u8; 32] = Sha256::digest(&data).into();
    let root = TempDir::new("blob-smol");
    let sha_hex = blob_server::store(root.path(), &data);

    // The servers run on a tokio runtime of their own thread; the client on smol.
    let server_rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let (_server, proxy) = server_rt.block_on(async {
        let server = blob_server::start(root.path()).await;
        let proxy = fault_proxy::start(server.addr, 3, data.len() as u64, 0x5eed).await;
        (server, proxy)
    });

    let store = MemoryStore::new();
    let url = format!("http://{}/blobs/{sha_hex}", proxy.addr);
    let mut plan = FetchPlan::new(&url, data.len() as u64, sha).expect("plan");
    plan.options.backoff = sentelite_core::backoff::Backoff::new(
        sentelite_core::Duration::from_millis(10),
        sentelite_core::Duration::from_millis(50),
        1,
    );
    let clock = StdClock::start();
    let mut sink = store.sink();
    let fetch = BlobFetch::new(clock.now(), plan, &mut sink);
    let mut progress = Vec::new();
    let mut on_progress = |p: sentelite_core::blob::Progress| progress.push(p.loaded);
    let end = smol::block_on(async {
        let run = fetcher::run(
            &SmolRuntime,
            &clock,
            fetch,
            sink,
            parallel,
            &mut on_progress,
            std::future::pending(),
        );
        futures_lite::future::or(async { Some(run.await.0) }, async {
            smol::Timer::after(Duration::from_secs(30)).await;
            None
        })
        .await
    })
    .expect("the fetch ends within 30 s");

    assert!(
        matches!(end, End::Completed { sha256, .. } if sha256 == sha),
        "{end:?}"
    );
    assert_eq!(store.get(&sha).as_deref(), Some(data.as_slice()));
    assert!(proxy.cuts() >= 1, "the proxy cut connections");
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]),
        "progress only grows"
    );
    let End::Completed { downloaded, .. } = end else {
        unreachable!()
    };
    assert!(
        downloaded <= data.len() as u64 * 11 / 10,
        "resumed, not restarted: {downloaded} bytes downloaded"
    );
    drop(server_rt);
}
