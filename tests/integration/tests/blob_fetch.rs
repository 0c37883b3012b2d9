//! Blob directives end to end on loopback: an in-process sentelite server sends `blob/*`
//! Requests to a tokio client whose `BlobHandlers` run them against a test blob server, with
//! a fault-injecting proxy cutting connections and a mirror serving corrupt bytes.

use std::time::Duration;

use sentelite_core::blob::directive::UploadDirective;
use sentelite_core::blob::hex;
use sentelite_integration_tests::blob_rig::{
    Rig, STEP, blob, corrupt_copy, fetch_directive, part_files, says, status_of,
};
use sentelite_integration_tests::{TempDir, blob_server, fault_proxy};
use sentelite_tokio::PayloadBuf;
use sentelite_tokio::Status;
use sentelite_tokio::blob::{BlobHandlers, MemoryStore, UploadSource};
use sha2::{Digest, Sha256};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_completes_from_the_good_source_through_cuts_and_a_corrupt_mirror() {
    let data = blob(3 << 20, 7);
    let (good_root, bad_root, sink_dir) = (
        TempDir::new("blob-good"),
        TempDir::new("blob-bad"),
        TempDir::new("blob-sink"),
    );
    let sha = blob_server::store(good_root.path(), &data);
    corrupt_copy(bad_root.path(), &sha, &data);
    let good = blob_server::start(good_root.path()).await;
    let bad = blob_server::start(bad_root.path()).await;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let proxy = fault_proxy::start(good.addr, 4, data.len() as u64, seed).await;
    let rig = Rig::start(BlobHandlers::new().directory("fw/image", sink_dir.path())).await;

    // The corrupt mirror is tried first; the good source sits behind the cutting proxy.
    let bad_url = bad.url(&sha);
    let good_url = format!("http://{}/blobs/{sha}", proxy.addr);
    let payload = fetch_directive(&bad_url, &[&good_url], "fw/image", &data);
    let (parts, outcome) = rig.ask("blob/fetch-and-process", payload).await;

    let (status, report) = status_of(&outcome);
    assert_eq!(status, Status::OK, "report: {report:?}");
    assert!(
        says(&report, &sha),
        "the completion names the verified hash"
    );
    let stored = std::fs::read(sink_dir.path().join(&sha)).expect("blob stored under its hash");
    assert_eq!(hex::encode(&Sha256::digest(&stored).into()).as_str(), sha);
    assert_eq!(stored, data);
    assert!(
        part_files(sink_dir.path()).is_empty(),
        "no partial file left"
    );
    assert!(
        proxy.cuts() >= 1,
        "the proxy cut connections ({} made)",
        proxy.connections()
    );
    assert!(!parts.is_empty(), "progress arrived as reply parts");
    assert!(parts.iter().all(|p| says(p, "loaded")));
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_from_only_corrupt_sources_fails_and_commits_nothing() {
    let data = blob(1 << 20, 11);
    let (bad_root, other_bad_root, sink_dir) = (
        TempDir::new("blob-bad1"),
        TempDir::new("blob-bad2"),
        TempDir::new("blob-sink-bad"),
    );
    let sha = hex::encode(&Sha256::digest(&data).into()).to_string();
    corrupt_copy(bad_root.path(), &sha, &data);
    corrupt_copy(other_bad_root.path(), &sha, &blob(1 << 20, 12));
    let bad = blob_server::start(bad_root.path()).await;
    let other_bad = blob_server::start(other_bad_root.path()).await;
    let proxy = fault_proxy::start(other_bad.addr, 2, data.len() as u64, 99).await;
    let rig = Rig::start(BlobHandlers::new().directory("fw/image", sink_dir.path())).await;

    let mirror = format!("http://{}/blobs/{sha}", proxy.addr);
    let payload = fetch_directive(&bad.url(&sha), &[&mirror], "fw/image", &data);
    let (_, outcome) = rig.ask("blob/fetch-and-process", payload).await;

    let (status, report) = status_of(&outcome);
    assert_eq!(status, Status::ERROR, "report: {report:?}");
    assert!(says(&report, "sha256 mismatch"), "report: {report:?}");
    assert!(says(&report, "failed"), "the end state is :failed");
    assert!(
        !sink_dir.path().join(&sha).exists(),
        "nothing unverified was committed"
    );
    assert!(
        part_files(sink_dir.path()).is_empty(),
        "the partial file was discarded"
    );
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_handler_is_unsupported_and_a_full_client_is_busy() {
    let data = blob(1024, 3);
    let root = TempDir::new("blob-unknown");
    let sha = blob_server::store(root.path(), &data);
    let server = blob_server::start(root.path()).await;
    let store = MemoryStore::new();
    let rig = Rig::start(BlobHandlers::new().memory("app/cache", store.clone())).await;

    let payload = fetch_directive(&server.url(&sha), &[], "nope/x", &data);
    let (parts, outcome) = rig.ask("blob/fetch-and-display", payload).await;
    let (status, report) = status_of(&outcome);
    assert_eq!(status, Status::UNSUPPORTED);
    assert!(
        says(&report, "unknown handler :nope/x"),
        "report: {report:?}"
    );
    assert!(parts.is_empty());
    assert!(store.is_empty());

    // The known handler takes it into memory.
    let payload = fetch_directive(&server.url(&sha), &[], "app/cache", &data);
    let (_, outcome) = rig.ask("blob/fetch-and-eval", payload).await;
    assert_eq!(status_of(&outcome).0, Status::OK);
    let sha_bytes: [u8; 32] = Sha256::digest(&data).into();
    assert_eq!(store.get(&sha_bytes).as_deref(), Some(data.as_slice()));
    rig.stop().await;

    let rig = Rig::start(
        BlobHandlers::new()
            .memory("app/cache", store)
            .max_transfers(0),
    )
    .await;
    let payload = fetch_directive(&server.url(&sha), &[], "app/cache", &data);
    let (_, outcome) = rig.ask("blob/fetch-and-process", payload).await;
    assert_eq!(status_of(&outcome).0, Status::BUSY);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_round_trips_through_a_cutting_proxy() {
    // Larger than one upload chunk, so it takes several resumable PUTs.
    let data = blob(20 << 20, 5);
    let sha = hex::encode(&Sha256::digest(&data).into()).to_string();
    let root = TempDir::new("blob-upload");
    let server = blob_server::start(root.path()).await;
    // Cutting answers (a few dozen bytes each) makes the client ask what the server holds.
    let proxy = fault_proxy::start(server.addr, 2, 40, 1).await;
    let rig = Rig::start(
        BlobHandlers::new().upload_source("diag/core", UploadSource::Bytes(data.clone().into())),
    )
    .await;

    let url = format!("http://{}/blobs", proxy.addr);
    let up = UploadDirective {
        transfer_id: "u1",
        url: &url,
        source: "diag/core",
    };
    let mut buf = vec![0u8; 1024];
    let n = up.encode(&mut buf).expect("fits");
    buf.truncate(n);
    let (_, outcome) = rig.ask("blob/upload", buf).await;
    let (status, report) = status_of(&outcome);
    assert_eq!(status, Status::OK, "report: {report:?}");
    assert!(says(&report, &sha));
    let stored = std::fs::read(blob_server::blob_dir(root.path()).join(&sha)).expect("uploaded");
    assert_eq!(stored, data);
    assert_eq!(proxy.cuts(), 2, "the proxy cut two answers");

    // An unknown source is refused.
    let up = UploadDirective {
        transfer_id: "u2",
        url: &url,
        source: "diag/none",
    };
    let mut buf = vec![0u8; 1024];
    let n = up.encode(&mut buf).expect("fits");
    buf.truncate(n);
    let (_, outcome) = rig.ask("blob/upload", buf).await;
    let (status, report) = status_of(&outcome);
    assert_eq!(status, Status::UNSUPPORTED);
    assert!(says(&report, "unknown upload source :diag/none"));
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_cancel_stops_the_transfer_and_discards_the_part_file() {
    let data = blob(64 << 10, 21);
    let sha = hex::encode(&Sha256::digest(&data).into()).to_string();
    // A source that accepts connections and never answers: the transfer waits on it.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let sink_dir = TempDir::new("blob-sink-cancel");
    let handlers = BlobHandlers::new().directory("fw/image", sink_dir.path());
    let rig = Rig::start(handlers.clone()).await;
    let url = format!("http://{silent_addr}/blobs/{sha}");
    let payload = fetch_directive(&url, &[], "fw/image", &data);
    let mut replies = rig
        .handle()
        .request(
            rig.connection,
            "blob/fetch-and-process",
            PayloadBuf::Value(payload),
            Some(STEP),
        )
        .await
        .expect("request sent");
    let part = sink_dir.path().join(format!("{sha}.part"));
    tokio::time::timeout(STEP, async {
        while handlers.running() == 0 || !part.exists() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the transfer starts and opens its part file");
    replies.cancel().expect("cancel sent");
    tokio::time::timeout(STEP, async {
        while handlers.running() != 0 || part.exists() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the cancel ends the transfer and discards the part file");
    assert!(!sink_dir.path().join(&sha).exists());
    rig.stop().await;
}
