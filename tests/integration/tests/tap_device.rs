//! The firmware examples' application as a virtual device on a TAP, against the real
//! `sentelite serve`, both inside a network namespace the test creates (see
//! `sentelite_integration_tests::tap`). One device life, checked step by step: the
//! handshake; its log records stored with sequence numbers from 0 and no gap; a request of
//! the device's answered (the application's `sentelite/echo` link check); a level change
//! from the server (`sentelite logs level`) whose effect shows in what is stored; a blob
//! directive completed with the right hash although the proxy in front of the server's blob
//! route cuts the first download; and a server killed and restarted, after which the device
//! delivers what it queued meanwhile, still without a gap.
//!
//! Needs root and `/dev/net/tun`; skips loudly elsewhere, fails under
//! `SENTELITE_REQUIRE_PEERS=1`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use sentelite_integration_tests::TempDir;
use sentelite_integration_tests::serve::{sentelite_binary, workspace_binary};
use sentelite_integration_tests::tap::{DEVICE_CIDR, Namespace, Process, SERVER_IP, TAP};
use sentelite_integration_tests::wait::line_matching;
use sha2::{Digest, Sha256};

const DEVICE: &str = "tap-dev-1";
/// Every step's own limit.
const STEP: Duration = Duration::from_secs(40);

fn server_http() -> String {
    format!("http://{SERVER_IP}:7700")
}

/// `sentelite serve` inside the namespace on `SERVER_IP:7700`, blobs announced behind the
/// cutting proxy on port 7701.
fn start_server(ns: &Namespace, data: &Path) -> Process {
    let config = data.join("sentelite.toml");
    std::fs::write(
        &config,
        format!("[blobs]\npublic-url = \"http://{SERVER_IP}:7701\"\n"),
    )
    .expect("write server config");
    let (server, lines) = ns.spawn(
        ns.command(sentelite_binary())
            .args(["serve", "--listen", &format!("{SERVER_IP}:7700")])
            .arg("--data-dir")
            .arg(data)
            .arg("--config")
            .arg(&config),
    );
    line_matching(&lines, "server listening", Duration::from_secs(20), |l| {
        l.starts_with("listening on")
    });
    server
}

/// Runs a `sentelite` command inside the namespace to its end, at most `STEP`; its stdout.
fn sentelite(ns: &Namespace, args: &[&str]) -> String {
    let mut child = ns
        .command(sentelite_binary())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start sentelite");
    let deadline = Instant::now() + STEP;
    while child.try_wait().expect("poll sentelite").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`sentelite {}` did not end within {STEP:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("sentelite output");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "`sentelite {}`: {text}",
        args.join(" ")
    );
    text
}

/// One stored record, as `sentelite logs query --json` prints it.
#[derive(Debug, Clone)]
struct Stored {
    seq: u64,
    level: String,
    message: String,
}

/// The device's stored records by sequence number (a batch the server stored twice, sent
/// again after a connection died before its ack, counts once).
fn stored(ns: &Namespace) -> BTreeMap<u64, Stored> {
    let out = sentelite(
        ns,
        &[
            "logs",
            "query",
            "--server",
            &server_http(),
            "--client",
            DEVICE,
            "--level",
            "trace",
            "--json",
            "--limit",
            "100000",
        ],
    );
    let mut records = BTreeMap::new();
    for line in out.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}"));
        let record = Stored {
            seq: v["seq"].as_u64().expect("seq"),
            level: v["level"].as_str().expect("level").to_owned(),
            message: v["message"].as_str().expect("message").to_owned(),
        };
        if let Some(earlier) = records.insert(record.seq, record.clone()) {
            assert_eq!(
                earlier.message, record.message,
                "two records with seq {}",
                record.seq
            );
        }
    }
    records
}

/// Polls the store until `done` holds, at most `STEP`.
fn stored_until(
    ns: &Namespace,
    what: &str,
    done: impl Fn(&BTreeMap<u64, Stored>) -> bool,
) -> BTreeMap<u64, Stored> {
    let deadline = Instant::now() + STEP;
    loop {
        let records = stored(ns);
        if done(&records) {
            return records;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not stored within {STEP:?}; have {} records, last {:?}",
            records.len(),
            records.values().last()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Sequence numbers run from 0 without a gap.
fn assert_no_gap(records: &BTreeMap<u64, Stored>) {
    let seqs: Vec<u64> = records.keys().copied().collect();
    let expected: Vec<u64> = (0..seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "stored sequence numbers have a gap");
}

fn has(records: &BTreeMap<u64, Stored>, level: &str, text: &str) -> bool {
    records
        .values()
        .any(|r| r.level == level && r.message.contains(text))
}

fn wait_line(lines: &Receiver<String>, what: &str, wanted: impl Fn(&str) -> bool) -> String {
    line_matching(lines, what, STEP, wanted)
}

#[test]
fn the_example_app_on_a_tap_logs_follows_levels_fetches_through_a_cut_and_outlives_a_restart() {
    let Some(ns) = Namespace::create("tap_device") else {
        return;
    };
    let device_binary = workspace_binary("sentelite-virtual-device", "sentelite-virtual-device");
    let data = TempDir::new("tap-serve");
    let mut server = start_server(&ns, data.path());
    let (_proxy, proxy_lines) =
        ns.spawn(ns.command(env!("CARGO_BIN_EXE_sentelite-cut-proxy")).args([
            &format!("{SERVER_IP}:7701"),
            &format!("{SERVER_IP}:7700"),
            "1",
            "200000",
        ]));
    wait_line(&proxy_lines, "proxy listening", |l| {
        l.starts_with("listening on")
    });
    let (_device, device_lines) = ns.spawn(ns.command(&device_binary).args([
        "--tap",
        TAP,
        "--address",
        DEVICE_CIDR,
        "--server",
        &format!("ws://{SERVER_IP}:7700/ws"),
        "--name",
        DEVICE,
        "--tick-ms",
        "200",
        "--boot-id",
        "7",
        "--batch-ms",
        "300",
    ]));

    // The handshake: the application switches its LED on when the session opens.
    wait_line(&device_lines, "device `led on`", |l| l == "led on");

    // Logs: numbered from 0 without a gap; `info` shipped, `debug` not yet.
    let records = stored_until(&ns, "five records", |r| r.len() >= 5);
    assert_no_gap(&records);
    assert!(
        records[&0].message.starts_with("booted build"),
        "{:?}",
        records[&0]
    );
    assert!(
        !records.values().any(|r| r.level == "debug"),
        "debug shipped before asked for"
    );
    // A request of the device's (`sentelite/echo`), answered and matched to its asker.
    let records = stored_until(&ns, "the link check", |r| {
        r.values().any(|r| r.message.contains("link check"))
    });
    let check = records
        .values()
        .find(|r| r.message.contains("link check"))
        .expect("link check record");
    assert_eq!(check.level, "info", "{check:?}");
    assert!(check.message.contains("(1 parts)"), "{check:?}");

    // The server lowers the device's level to debug at run time.
    let out = sentelite(
        &ns,
        &[
            "logs",
            "level",
            "--server",
            &server_http(),
            "--client",
            DEVICE,
            "debug",
        ],
    );
    assert!(out.contains("\"delivered\":1"), "{out}");
    let records = stored_until(&ns, "a debug tick", |r| has(r, "debug", "detail"));
    assert!(
        has(&records, "warn", "log levels changed: debug and above"),
        "no change record"
    );
    assert_no_gap(&records);

    // A blob directive; the proxy in front of the blob route cuts the first download.
    let blob: Vec<u8> = (0..512 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let sha = Sha256::digest(&blob)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    let file = data.path().join("image.bin");
    std::fs::write(&file, &blob).expect("write blob");
    let file = file.to_str().expect("utf-8 path");
    let pushed = sentelite(
        &ns,
        &[
            "blob",
            "push",
            "--server",
            &server_http(),
            "--client",
            DEVICE,
            "--handler",
            "fw/image",
            "--json",
            file,
        ],
    );
    let last: serde_json::Value =
        serde_json::from_str(pushed.lines().last().expect("push output")).expect("push JSON");
    assert_eq!(last["state"], "completed", "{pushed}");
    assert_eq!(last["sha256"], sha.as_str(), "{pushed}");
    assert!(
        last["url"].as_str().is_some_and(|u| u.contains(":7701/")),
        "the blob was not fetched through the proxy: {pushed}"
    );
    wait_line(&proxy_lines, "proxy cut", |l| l == "cuts 1");
    let staged = wait_line(&device_lines, "device `update staged`", |l| {
        l.starts_with("update staged")
    });
    assert_eq!(
        staged,
        format!("update staged sha256={sha} bytes={}", blob.len())
    );

    // The server dies without a goodbye and comes back on the same data: the device
    // reconnects and delivers what it logged meanwhile.
    let before = stored(&ns);
    let last_before = *before.keys().last().expect("records");
    server.kill();
    std::thread::sleep(Duration::from_secs(2));
    server = start_server(&ns, data.path());
    let records = stored_until(&ns, "the records queued while the server was down", |r| {
        has(r, "warn", "reconnecting")
            && r.keys().last().is_some_and(|&last| last > last_before + 10)
    });
    assert_no_gap(&records);
    wait_line(&device_lines, "device `led on` after the restart", |l| {
        l == "led on"
    });
    drop(server);
}
