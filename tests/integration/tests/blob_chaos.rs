//! Blob chaos: N fetch directives, one after another, each for a blob of its own from a good
//! source behind the chaos proxy (seeded random cuts, stalls, delays and drips all along) with
//! a corrupt mirror beside it. Every transfer must end before its deadline, completed with the
//! right bytes or with an explicit failure; nothing but verified blobs may be committed; and
//! the bytes the good source moved through the proxy stay within 1.1× of the blobs' sizes.
//! Every other transfer tries the corrupt mirror first; its bytes are counted apart (a
//! corrupt copy can only be found out once it has been read whole).
//!
//! `SENTELITE_BLOB_CHAOS_TRANSFERS` (10), `SENTELITE_BLOB_CHAOS_KIB` per blob (1024) and
//! `SENTELITE_BLOB_CHAOS_SEED` scale it; the full run is 100 transfers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sentelite_core::blob::directive::Options;
use sentelite_core::blob::hex;
use sentelite_host::RequestOutcome;
use sentelite_integration_tests::blob_rig::{
    Rig, blob, corrupt_copy, fetch_directive_with, part_files, says,
};
use sentelite_integration_tests::chaos_proxy::{ChaosProxy, Fault};
use sentelite_integration_tests::{TempDir, blob_server};
use sentelite_tokio::Status;
use sentelite_tokio::blob::BlobHandlers;
use sha2::{Digest, Sha256};

/// Each transfer's deadline, sent in its directive.
const DEADLINE: Duration = Duration::from_secs(20);
/// Time past the deadline for the end to reach the test.
const SLACK: Duration = Duration::from_secs(3);

fn env(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// How one transfer ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Completed,
    Failed,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_through_random_faults_end_in_time_and_commit_only_verified_blobs() {
    let transfers = env("SENTELITE_BLOB_CHAOS_TRANSFERS", 10).max(1) as usize;
    let size = env("SENTELITE_BLOB_CHAOS_KIB", 1024).max(1) as usize * 1024;
    let seed = env("SENTELITE_BLOB_CHAOS_SEED", 0xb10b);
    let (good_root, bad_root, sink_dir) = (
        TempDir::new("chaos-good"),
        TempDir::new("chaos-bad"),
        TempDir::new("chaos-sink"),
    );
    let blobs: Vec<(Vec<u8>, String)> = (0..transfers)
        .map(|k| {
            // Distinct seeds (the generator sets the low bit), so no two blobs are the same.
            let data = blob(size, seed.wrapping_add((k as u64 + 1) << 16));
            let sha = blob_server::store(good_root.path(), &data);
            corrupt_copy(bad_root.path(), &sha, &data);
            (data, sha)
        })
        .collect();
    let good = blob_server::start(good_root.path()).await;
    let bad = blob_server::start(bad_root.path()).await;
    let proxy = Arc::new(ChaosProxy::start(good.addr).await);
    // The corrupt mirror's bytes are counted apart (no faults on its way).
    let bad_proxy = ChaosProxy::start(bad.addr).await;
    let rig = Rig::start(BlobHandlers::new().directory("fw/image", sink_dir.path())).await;

    // At least one cut in the middle of a body, whatever the random faults below happen to
    // hit (on a fast machine all transfers can slip between them): the first transfer goes
    // at a drip and is cut once part of it has passed.
    proxy.inject(Fault::Drip(1 << 20), Duration::from_millis(500));
    let first_cut = {
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let waiting_since = Instant::now();
            while proxy.bytes() < 64 * 1024 && waiting_since.elapsed() < DEADLINE {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            proxy.cut_all();
        })
    };
    let mut chaos = None;

    let started = Instant::now();
    let mut ends = Vec::new();
    for (k, (data, sha)) in blobs.iter().enumerate() {
        if k == 1 {
            // Random faults from the second transfer on, until the last one's deadline at
            // the latest.
            let proxy = proxy.clone();
            let until = Instant::now() + (DEADLINE + SLACK) * transfers as u32;
            chaos = Some(tokio::spawn(async move {
                proxy.random(seed, Duration::from_millis(25), until).await
            }));
        }
        let options = Options {
            timeout_ms: Some(2_000),
            retry_count: Some(20),
            deadline_ms: Some(DEADLINE.as_millis() as u64),
            ..Options::default()
        };
        let good_url = format!("http://{}/blobs/{sha}", proxy.addr);
        let bad_url = format!("http://{}/blobs/{sha}", bad_proxy.addr);
        // Every other transfer tries the corrupt mirror first.
        let (url, mirror) = if k % 2 == 0 {
            (&good_url, &bad_url)
        } else {
            (&bad_url, &good_url)
        };
        let payload = fetch_directive_with(
            &format!("chaos-{k}"),
            url,
            &[mirror],
            "fw/image",
            data,
            options,
        );
        let asked = Instant::now();
        let (_, outcome) = rig.ask("blob/fetch-and-process", payload).await;
        let took = asked.elapsed();
        assert!(
            took <= DEADLINE + SLACK,
            "transfer {k} ended after {took:?}, past its deadline of {DEADLINE:?}"
        );
        let end = match &outcome {
            RequestOutcome::Completed { status, .. } if *status == Status::OK => {
                let stored = std::fs::read(sink_dir.path().join(sha)).expect("completed blob");
                assert!(stored == *data, "transfer {k} completed with other bytes");
                End::Completed
            }
            RequestOutcome::Completed { status, payload } if *status == Status::ERROR => {
                assert!(
                    says(payload, "failed"),
                    "transfer {k} ended ERROR without saying it failed: {payload:?}"
                );
                End::Failed
            }
            other => panic!("transfer {k} ended neither completed nor failed: {other:?}"),
        };
        ends.push(end);
    }
    first_cut.abort();
    if let Some(chaos) = chaos {
        chaos.abort();
    }
    proxy.heal();
    let elapsed = started.elapsed();

    // Nothing but verified blobs committed, no partial file left.
    let mut committed = 0;
    for entry in std::fs::read_dir(sink_dir.path()).expect("sink dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".part") {
            continue;
        }
        let bytes = std::fs::read(&path).expect("committed blob");
        let actual = hex::encode(&Sha256::digest(&bytes).into()).to_string();
        assert_eq!(actual, name, "a committed blob does not match its name");
        committed += 1;
    }
    assert!(part_files(sink_dir.path()).is_empty(), "partial files left");
    let completed = ends.iter().filter(|e| **e == End::Completed).count();
    let sizes = (size * transfers) as u64;
    let moved = proxy.bytes();
    println!(
        "blob chaos: {transfers} transfers of {size} bytes, {completed} completed, {} failed, \
         {committed} committed, {moved} bytes through the proxy ({:.3}× the blobs), \
         {} connections, {} cut; {} bytes from the corrupt mirror; {:.1} s",
        transfers - completed,
        moved as f64 / sizes as f64,
        proxy.connections(),
        proxy.cut(),
        bad_proxy.bytes(),
        elapsed.as_secs_f64()
    );
    assert_eq!(
        committed, completed,
        "blobs committed vs transfers completed"
    );
    assert!(completed > 0, "no transfer completed through the faults");
    assert!(proxy.cut() > 0, "no transfer was cut");
    assert!(bad_proxy.bytes() > 0, "the corrupt mirror was never tried");
    assert!(
        moved as f64 <= 1.1 * sizes as f64,
        "{moved} bytes moved through the proxy for {sizes} bytes of blobs"
    );
    rig.stop().await;
}
