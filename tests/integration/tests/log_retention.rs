//! Log retention runs on its own timer: with `[logs] max-records` and a short
//! `retention-interval-ms`, `sentelite serve` trims its store back to the limit within an
//! interval of records arriving, nobody asking. Written against the binary, its settings
//! file and the CLI only (`sentelite device --count`, `sentelite logs query --server`).

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use sentelite_integration_tests::ServeProcess;
use sentelite_integration_tests::serve::sentelite_binary;

const KEEP: u64 = 5;
const INTERVAL_MS: u64 = 1500;
const DEVICE: &str = "retained-1";

fn run(args: &[&str]) -> Output {
    let out = Command::new(sentelite_binary())
        .args(args)
        .output()
        .expect("run sentelite");
    assert!(
        out.status.success(),
        "sentelite {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Records in the store, as `sentelite logs query --count` reports them.
fn stored(server: &ServeProcess) -> u64 {
    let url = format!("http://{}", server.addr);
    let out = run(&["logs", "query", "--server", &url, "--count"]);
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("not a count: {text:?}"))
}

/// Ships `count` records from a device and waits until all are acknowledged (stored).
fn ship(server: &ServeProcess, count: u64) {
    let n = count.to_string();
    let out = run(&[
        "device",
        "--server",
        &server.ws_url,
        "--name",
        DEVICE,
        "--count",
        &n,
        "--rate",
        "1000",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("acked {count} dropped 0")),
        "device did not get every record acknowledged: {text}"
    );
}

#[test]
fn retention_trims_the_store_on_its_interval_without_being_asked() {
    let server = ServeProcess::start_with_config(&format!(
        "[logs]\nmax-records = {KEEP}\nretention-interval-ms = {INTERVAL_MS}\n"
    ));
    // Records beyond the limit must be seen in the store first; a retention pass that
    // happened to fall between shipping and counting would hide them, so ship again.
    let mut over = None;
    for _ in 0..3 {
        ship(&server, 20);
        let n = stored(&server);
        if n > KEEP {
            over = Some(n);
            break;
        }
    }
    let over = over.expect("the store never held more than the limit");
    let since = Instant::now();
    let limit = Duration::from_millis(INTERVAL_MS) + Duration::from_secs(10);
    let mut now = over;
    while now > KEEP && since.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(100));
        now = stored(&server);
    }
    assert_eq!(
        now,
        KEEP,
        "{over} records stayed above max-records = {KEEP} for {:?}",
        since.elapsed()
    );

    // The newest records are the ones kept: the last device run's last sequence numbers.
    let url = format!("http://{}", server.addr);
    let out = run(&["logs", "query", "--server", &url, "--json"]);
    let mut seqs: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            v["seq"].as_u64().expect("a seq")
        })
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (20 - KEEP..20).collect::<Vec<_>>());
}
