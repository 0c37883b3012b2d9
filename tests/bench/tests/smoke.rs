//! The bench still runs. A short `logs` run on two clients, through the real `sentelite serve`
//! and (when installed) mosquitto, must finish and print a row for each system with records
//! acknowledged. It measures nothing: it keeps the benchmark from rotting between the times
//! someone runs it for figures. A short `blob` run (4 MiB) must print a figure for the
//! verified fetch, SHA-256 alone and curl.
//!
//! mosquitto is an outside program. Without it the baseline row is missing and the test says
//! so loudly; with `SENTELITE_REQUIRE_PEERS=1` (as in CI) its absence is a failure.

use std::process::Command;

/// The numbers in a table row of `system` for `clients`: records acked per second and per
/// server CPU-second.
fn row(table: &str, clients: usize, system: &str) -> Option<(f64, f64)> {
    let prefix = format!("| {clients} | {system} |");
    let line = table.lines().find(|line| line.starts_with(&prefix))?;
    let cells: Vec<&str> = line.split('|').map(str::trim).collect();
    let per_second = cells.get(3)?.parse().ok()?;
    let per_cpu = cells.get(4)?.split_whitespace().next()?.parse().ok()?;
    Some((per_second, per_cpu))
}

#[test]
fn a_short_log_ingest_run_prints_every_row() {
    let require = std::env::var("SENTELITE_REQUIRE_PEERS").is_ok_and(|v| v == "1");
    let mut bench = Command::new(env!("CARGO_BIN_EXE_sentelite-bench"));
    bench.args([
        "logs",
        "--clients",
        "2",
        "--seconds",
        "1",
        "--runs",
        "1",
        "--batch",
        "10",
    ]);
    if require {
        bench.arg("--require-baseline");
    }
    let out = bench.output().expect("run sentelite-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    for system in ["sentelite", "sentelite, file sink off"] {
        let (per_second, per_cpu) =
            row(&stdout, 2, system).unwrap_or_else(|| panic!("no row for {system}:\n{stdout}"));
        assert!(
            per_second > 0.0 && per_cpu > 0.0,
            "{system} acked nothing:\n{stdout}"
        );
    }
    match row(&stdout, 2, "mosquitto QoS 1") {
        Some((per_second, per_cpu)) => {
            assert!(
                per_second > 0.0 && per_cpu > 0.0,
                "mosquitto acked nothing:\n{stdout}"
            )
        }
        None => {
            assert!(!require, "no mosquitto row although required:\n{stdout}");
            eprintln!(
                "\n*** SKIPPED the mosquitto baseline: mosquitto is not installed \
                 (apt-get install mosquitto); set SENTELITE_REQUIRE_PEERS=1 to fail instead ***\n"
            );
        }
    }
}

/// The first number of the row whose first cell starts with `name`.
fn blob_row(table: &str, name: &str) -> Option<f64> {
    let line = table
        .lines()
        .find(|line| line.starts_with(&format!("| {name}")))?;
    line.split('|')
        .nth(2)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[test]
fn a_short_blob_run_prints_the_fetcher_and_curl_rows() {
    let require = std::env::var("SENTELITE_REQUIRE_PEERS").is_ok_and(|v| v == "1");
    let mut bench = Command::new(env!("CARGO_BIN_EXE_sentelite-bench"));
    bench.args(["blob", "--mib", "4", "--runs", "1"]);
    if require {
        bench.arg("--require-baseline");
    }
    let out = bench.output().expect("run sentelite-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    for row in [
        "sentelite fetcher, verified, SHA-256 on a second thread",
        "sentelite fetcher, verified, SHA-256 in line",
        "SHA-256 alone",
    ] {
        let mbps = blob_row(&stdout, row).unwrap_or_else(|| panic!("no row {row}:\n{stdout}"));
        assert!(mbps > 0.0, "{row}: {mbps}\n{stdout}");
    }
    match blob_row(&stdout, "curl to /dev/null, unverified") {
        Some(mbps) => assert!(mbps > 0.0, "curl fetched nothing:\n{stdout}"),
        None => {
            assert!(!require, "no curl row although required:\n{stdout}");
            eprintln!(
                "\n*** SKIPPED the curl baseline: curl is not installed \
                 (apt-get install curl); set SENTELITE_REQUIRE_PEERS=1 to fail instead ***\n"
            );
        }
    }
}
