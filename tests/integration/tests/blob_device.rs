//! The README's blob try-it with the real binaries: `sentelite serve`, `sentelite device
//! --blob-dir DIR`, and `sentelite blob push` of a file to that device, which fetches it from
//! the server's `/blobs/<sha256>` route into DIR under its hash.

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sentelite_integration_tests::serve::{sentelite_binary, spawn_reading_lines};
use sentelite_integration_tests::wait::line_matching;
use sentelite_integration_tests::{ServeProcess, TempDir};
use sha2::{Digest, Sha256};

/// Reads the device's lines until one contains `needle`, for at most 30 s.
fn wait_for(lines: &mpsc::Receiver<String>, needle: &str) -> String {
    line_matching(
        lines,
        &format!("`{needle}` sentelite device"),
        Duration::from_secs(30),
        |line| line.contains(needle),
    )
}

#[test]
fn blob_push_to_a_device_with_a_blob_dir_stores_the_verified_file() {
    let server = ServeProcess::start(&[]);
    let work = TempDir::new("blob-device");
    let blob_dir = work.path().join("device-blobs");
    let (mut device, lines) = spawn_reading_lines(
        Command::new(sentelite_binary())
            .args(["device", "--server", &server.ws_url, "--name", "blob-dev-1"])
            .arg("--blob-dir")
            .arg(&blob_dir)
            .stderr(Stdio::inherit()),
    );
    wait_for(&lines, "open ");

    let data: Vec<u8> = (0..(3u32 << 20))
        .map(|i| (i.wrapping_mul(2_246_822_519) >> 11) as u8)
        .collect();
    let sha = hex::encode(Sha256::digest(&data));
    let file = work.path().join("image.bin");
    std::fs::write(&file, &data).expect("write file");
    let push = Command::new(sentelite_binary())
        .args([
            "blob",
            "push",
            "--server",
            &format!("http://{}", server.addr),
        ])
        .args(["--client", "blob-dev-1", "--handler", "fw/image", "--json"])
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .expect("run sentelite blob push");
    let out = String::from_utf8_lossy(&push.stdout).into_owned();
    // The same blob again, by hash: the device holds it already, so nothing is fetched.
    let again = Command::new(sentelite_binary())
        .args([
            "blob",
            "push",
            "--server",
            &format!("http://{}", server.addr),
        ])
        .args([
            "--client",
            "blob-dev-1",
            "--handler",
            "fw/image",
            "--json",
            &sha,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run sentelite blob push again");
    let listed = Command::new(sentelite_binary())
        .args([
            "blob",
            "transfers",
            "--server",
            &format!("http://{}", server.addr),
        ])
        .args(["--client", "blob-dev-1", "--json"])
        .output()
        .expect("run sentelite blob transfers");
    let _ = device.kill();
    let _ = device.wait();
    assert_eq!(
        push.status.code(),
        Some(0),
        "push: {out} {:?}",
        String::from_utf8_lossy(&push.stderr)
    );
    assert!(
        out.lines().last().is_some_and(|l| l.contains("completed")),
        "{out}"
    );
    assert_eq!(
        std::fs::read(blob_dir.join(&sha)).expect("stored under its hash"),
        data
    );
    let last = |output: &std::process::Output| -> serde_json::Value {
        let text = String::from_utf8_lossy(&output.stdout);
        let line = text
            .lines()
            .last()
            .unwrap_or_else(|| panic!("no output: {output:?}"));
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}"))
    };
    let first = last(&push);
    assert_eq!(first["bytes-transferred"], data.len(), "{first}");
    assert_eq!(again.status.code(), Some(0), "{again:?}");
    let second = last(&again);
    assert_eq!(second["state"], "completed", "{second}");
    assert_eq!(second["bytes-transferred"], 0, "already held: {second}");
    assert!(listed.status.success(), "{listed:?}");
    let records = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(
        records.matches(&format!("\"{sha}\"")).count(),
        2,
        "both transfers are on record:\n{records}"
    );
    let ended = wait_for(&lines, "answered=");
    assert!(
        ended.ends_with("answered=ok") || ended.ends_with("answered=OK"),
        "{ended}"
    );
}
