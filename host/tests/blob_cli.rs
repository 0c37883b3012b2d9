//! `sentelite blob …` as a user runs it: the built binary against a data dir and against a
//! real server on loopback with a native client answering the directives. Checks what is
//! printed (text and `--json`) and the exit codes: 0 completed, 3 unknown client or
//! refused, 4 failed.

mod support;

use std::process::Output;

use sentelite_core::Status;
use sentelite_core::frame::Payload;
use sentelite_host::Server;
use sentelite_host::blob::BlobSettings;
use sentelite_host::translate::{edn_to_cbor, payload_to_json};
use sha2::{Digest, Sha256};
use support::{Got, TempDir, TestClient, sentelite, start_with_blobs};

fn run(args: &[&str]) -> Output {
    sentelite(args).output().expect("the binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the binary on a blocking thread so the test can play the device meanwhile.
fn spawn(args: Vec<String>) -> tokio::task::JoinHandle<Output> {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let child = sentelite(&args).spawn().expect("the binary starts");
        child.wait_with_output().expect("the binary ends")
    })
}

/// `blob push --server URL --client CLIENT --handler demo/show [--json] BLOB` started on a
/// blocking thread.
fn spawn_push(url: &str, client: &str, json: bool, blob: &str) -> tokio::task::JoinHandle<Output> {
    let mut args = [
        "blob",
        "push",
        "--server",
        url,
        "--client",
        client,
        "--handler",
        "demo/show",
    ]
    .map(String::from)
    .to_vec();
    if json {
        args.push("--json".into());
    }
    args.push(blob.into());
    spawn(args)
}

async fn ended(task: tokio::task::JoinHandle<Output>) -> Output {
    tokio::time::timeout(std::time::Duration::from_secs(20), task)
        .await
        .expect("the command ends in time")
        .unwrap()
}

#[test]
fn add_ls_rm_in_a_data_dir() {
    let dir = TempDir::new("blob-cli-store");
    std::fs::create_dir_all(&dir.0).unwrap();
    let file = dir.0.join("firmware.bin");
    let data: Vec<u8> = (0..70_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&file, &data).unwrap();
    let sha = hex::encode(Sha256::digest(&data));
    let data_dir = dir.0.join("data");
    let data_dir = data_dir.to_str().unwrap();

    let added = run(&[
        "blob",
        "add",
        "--data-dir",
        data_dir,
        file.to_str().unwrap(),
    ]);
    assert!(added.status.success(), "{added:?}");
    assert_eq!(
        stdout(&added),
        format!("{sha} 70000 http://127.0.0.1:7700/blobs/{sha}\n")
    );
    let json = run(&[
        "blob",
        "add",
        "--data-dir",
        data_dir,
        "--base-url",
        "http://hub:9000/",
        "--json",
        file.to_str().unwrap(),
    ]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["sha256"], sha.as_str());
    assert_eq!(value["size"], 70_000);
    assert_eq!(value["url"], format!("http://hub:9000/blobs/{sha}"));

    let listed = run(&["blob", "ls", "--data-dir", data_dir]);
    assert_eq!(stdout(&listed), format!("{sha} 70000\n"));
    let removed = run(&["blob", "rm", "--data-dir", data_dir, &sha]);
    assert!(removed.status.success(), "{removed:?}");
    assert_eq!(stdout(&run(&["blob", "ls", "--data-dir", data_dir])), "");
    let again = run(&["blob", "rm", "--data-dir", data_dir, &sha]);
    assert_eq!(
        again.status.code(),
        Some(1),
        "removing a missing blob fails"
    );
    let bad = run(&["blob", "rm", "--data-dir", data_dir, "xyz"]);
    assert_eq!(bad.status.code(), Some(1));
}

struct Rig {
    server: Server,
    dir: TempDir,
    url: String,
}

async fn rig() -> Rig {
    let (server, _, dir) = start_with_blobs("blob-cli", BlobSettings::default()).await;
    let url = format!("http://{}", server.local_addr());
    Rig { server, dir, url }
}

async fn directive(device: &mut TestClient) -> (u32, serde_json::Value) {
    for _ in 0..16 {
        if let Got::Request { id, payload, .. } = device.next().await {
            return (id, payload_to_json(&payload).unwrap());
        }
    }
    panic!("no directive");
}

fn value(edn: &str) -> Vec<u8> {
    edn_to_cbor(edn).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_uploads_a_file_and_follows_the_transfer_to_exit_0() {
    let rig = rig().await;
    let mut device = TestClient::open(rig.server.local_addr(), "dev-cli").await;
    let file = rig.dir.0.join("image.bin");
    let data = vec![9u8; 200_000];
    std::fs::write(&file, &data).unwrap();
    let sha = hex::encode(Sha256::digest(&data));
    let task = spawn_push(&rig.url, "dev-cli", true, file.to_str().unwrap());
    let (id, map) = directive(&mut device).await;
    assert_eq!(map["metadata"]["sha256"], sha.as_str());
    assert_eq!(map["url"], format!("{}/blobs/{sha}", rig.url));
    // The file was uploaded to the store before the directive went out.
    assert_eq!(
        std::fs::read(rig.dir.0.join("blobs").join(&sha)).unwrap(),
        data
    );
    let tid = map["transfer-id"].as_str().unwrap().to_owned();
    let part = value(&format!(
        "{{:transfer-id \"{tid}\" :loaded 100000 :total 200000 :percent 50}}"
    ));
    device.reply(id, 0, Payload::Value(&part)).await;
    let end = value(&format!(
        "{{:transfer-id \"{tid}\" :status :success :bytes-transferred 200000 :sha256 \"{sha}\"}}"
    ));
    device.end(id, Status::OK, Payload::Value(&end)).await;
    let out = ended(task).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let states: Vec<&str> = lines.iter().map(|l| l["state"].as_str().unwrap()).collect();
    assert_eq!(states.first(), Some(&"sent"));
    assert_eq!(states.last(), Some(&"completed"));
    assert!(lines.iter().any(|l| l["loaded"] == 100_000), "{lines:?}");
    assert!(lines.iter().all(|l| l["transfer-id"] == tid.as_str()));

    // The record is queryable, from the file and through the server.
    let data_dir = rig.dir.0.to_str().unwrap();
    let listed = run(&["blob", "transfers", "--data-dir", data_dir, "--json"]);
    let record: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(record["state"], "completed");
    assert_eq!(record["client"], "dev-cli");
    let remote = run(&[
        "blob",
        "transfers",
        "--server",
        &rig.url,
        "--client",
        "dev-cli",
    ]);
    let text = stdout(&remote);
    assert!(
        text.starts_with(&tid) && text.contains("completed 200000/200000"),
        "{text}"
    );
    let other = run(&[
        "blob",
        "transfers",
        "--server",
        &rig.url,
        "--client",
        "nobody",
    ]);
    assert_eq!(stdout(&other), "");
    rig.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_exit_codes_tell_refused_from_failed() {
    let rig = rig().await;
    let file = rig.dir.0.join("small.bin");
    std::fs::write(&file, b"small blob").unwrap();
    let sha = hex::encode(Sha256::digest(b"small blob"));

    let unknown = ended(spawn_push(
        &rig.url,
        "nobody",
        false,
        file.to_str().unwrap(),
    ))
    .await;
    assert_eq!(unknown.status.code(), Some(3), "{unknown:?}");
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("nobody"));

    let mut device = TestClient::open(rig.server.local_addr(), "dev-x").await;
    // The blob is stored now (the first push uploaded it), so it is named by its hash.
    let task = spawn_push(&rig.url, "dev-x", false, &sha);
    let (id, _) = directive(&mut device).await;
    let error = value(
        "{:error \"sha256 mismatch on every source\" :retry-count 2 :status-code 200 :state :failed}",
    );
    device.end(id, Status::ERROR, Payload::Value(&error)).await;
    let failed = ended(task).await;
    assert_eq!(failed.status.code(), Some(4), "{failed:?}");
    assert!(stdout(&failed).contains("failed"), "{failed:?}");

    let task = spawn_push(&rig.url, "dev-x", false, &sha);
    let (id, _) = directive(&mut device).await;
    device
        .end(
            id,
            Status::UNSUPPORTED,
            Payload::Value(&value("{:error \"unknown handler :demo/show\"}")),
        )
        .await;
    let refused = ended(task).await;
    assert_eq!(refused.status.code(), Some(3), "{refused:?}");

    let missing = ended(spawn_push(&rig.url, "dev-x", false, &"0".repeat(64))).await;
    assert_eq!(
        missing.status.code(),
        Some(1),
        "an unknown blob: {missing:?}"
    );
    rig.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_push_in_flight_and_refuses_ids_not_in_flight() {
    let rig = rig().await;
    let mut device = TestClient::open(rig.server.local_addr(), "dev-cancel").await;
    let file = rig.dir.0.join("slow.bin");
    std::fs::write(&file, vec![3u8; 50_000]).unwrap();
    let task = spawn_push(&rig.url, "dev-cancel", true, file.to_str().unwrap());
    // The device takes the directive and never finishes it on its own.
    let (id, map) = directive(&mut device).await;
    let tid = map["transfer-id"].as_str().unwrap().to_owned();

    let cancelled = run(&["blob", "cancel", "--server", &rig.url, &tid]);
    assert_eq!(cancelled.status.code(), Some(0), "{cancelled:?}");
    assert_eq!(stdout(&cancelled), format!("cancelling {tid}\n"));
    let mut told = false;
    for _ in 0..16 {
        if let Got::Cancel { id: which } = device.next().await {
            assert_eq!(which, id);
            told = true;
            break;
        }
    }
    assert!(told, "the device is sent a Cancel");
    device.end(id, Status::CANCELLED, Payload::Empty).await;

    // The push that was following it ends with the failure exit code, its last line
    // `cancelled`.
    let out = ended(task).await;
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let last: serde_json::Value =
        serde_json::from_str(stdout(&out).lines().last().unwrap()).unwrap();
    assert_eq!(last["state"], "cancelled", "{last}");

    // Once ended, and for ids never sent, there is nothing to cancel.
    for gone in [tid.as_str(), "no-such-transfer"] {
        let refused = run(&["blob", "cancel", "--server", &rig.url, gone]);
        assert_eq!(refused.status.code(), Some(1), "{refused:?}");
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(err.contains("404") && err.contains("in flight"), "{err}");
    }
    rig.server.shutdown().await;
}
