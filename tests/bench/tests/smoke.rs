//! The bench still runs. A short `logs` run on two clients, through the real `sentelite serve`
//! and (when installed) mosquitto, must finish and print a row for each system with records
//! acknowledged. It measures nothing: it keeps the benchmark from rotting between the times
//! someone runs it for figures. A short `blob` run (4 MiB) must print a figure for the
//! verified fetch, SHA-256 alone and curl. Short `events`, `idle`, `wire` and `latency` runs
//! must print their rows with figures that show the servers did the work (frames confirmed,
//! connections held, records on the tail, batches smaller than single records).
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
            );
            let (sent, per_cpu) = row(&stdout, 2, "mosquitto QoS 0 (unacked)")
                .unwrap_or_else(|| panic!("no QoS 0 row beside the QoS 1 row:\n{stdout}"));
            assert!(
                sent > 0.0 && per_cpu > 0.0,
                "mosquitto QoS 0 took nothing:\n{stdout}"
            );
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

/// Runs `sentelite-bench ARGS` (adding `--require-baseline` when peers are required and
/// `baseline` is true) and returns its stdout; panics when it fails.
fn bench(args: &[&str], baseline: bool) -> String {
    let mut bench = Command::new(env!("CARGO_BIN_EXE_sentelite-bench"));
    bench.args(args);
    if baseline && requires_peers() {
        bench.arg("--require-baseline");
    }
    let out = bench.output().expect("run sentelite-bench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "bench {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn requires_peers() -> bool {
    std::env::var("SENTELITE_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

/// The cells of the row whose first cell is `name`, without the outer bars.
fn cells(table: &str, name: &str) -> Option<Vec<String>> {
    let line = table
        .lines()
        .find(|line| line.starts_with(&format!("| {name} |")))?;
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    Some(inner.split('|').map(|c| c.trim().to_owned()).collect())
}

/// The first number in `cell`.
fn number(cell: &str) -> f64 {
    cell.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number in {cell:?}"))
}

fn skipped_mosquitto(table: &str) {
    assert!(
        !requires_peers(),
        "no mosquitto row although required:\n{table}"
    );
    eprintln!(
        "\n*** SKIPPED the mosquitto baseline: mosquitto is not installed \
         (apt-get install mosquitto); set SENTELITE_REQUIRE_PEERS=1 to fail instead ***\n"
    );
}

#[test]
fn a_short_events_run_confirms_frames_on_every_server() {
    let table = bench(
        &["events", "--clients", "2", "--seconds", "1", "--runs", "1"],
        true,
    );
    for system in ["bare tokio-tungstenite", "sentelite", "mosquitto QoS 0"] {
        let Some(row) = cells(&table, system) else {
            assert_eq!(system, "mosquitto QoS 0", "no row for {system}:\n{table}");
            skipped_mosquitto(&table);
            continue;
        };
        if row[1] == "not installed" {
            skipped_mosquitto(&table);
            continue;
        }
        // frames/s and frames per server CPU-second, as confirmed by the server.
        assert!(
            number(&row[1]) > 0.0 && number(&row[2]) > 0.0,
            "{system} confirmed no frames:\n{table}"
        );
    }
}

#[test]
fn a_short_idle_run_measures_both_servers() {
    let table = bench(&["idle", "--connections", "200", "--parallel", "4"], true);
    for system in ["sentelite", "mosquitto"] {
        let row = cells(&table, system).unwrap_or_else(|| panic!("no row {system}:\n{table}"));
        if row[1] == "not installed" {
            skipped_mosquitto(&table);
            continue;
        }
        assert_eq!(
            row[1], "200",
            "{system} did not hold 200 connections:\n{table}"
        );
        // RSS after is read from the server's /proc status and includes the connections.
        assert!(
            number(&row[3]) >= number(&row[2]) && number(&row[3]) > 0.0,
            "{system} RSS:\n{table}"
        );
        number(&row[4]);
    }
}

#[test]
fn a_short_wire_run_shows_batches_smaller_than_single_records() {
    let table = bench(&["wire", "--records", "100"], false);
    let row = |name: &str| cells(&table, name).unwrap_or_else(|| panic!("no row {name}:\n{table}"));
    let total = |name: &str| number(&row(name)[5]);
    // Every single-record form carries the record's text: namespace, id and message.
    let text = "my.app.sensor".len() + "my.app.sensor/sampled".len() + "sample out of range".len();
    let batched = total("sentelite `telemetry/log-batch` request");
    assert!(batched > 0.0, "{table}");
    for single in [
        "sentelite native Event `telemetry/log-msg` (CBOR map) per record",
        "seed's EDN event `[:telemetry/log-msg {…}]` per record",
        "JSON event `[\"telemetry/log-msg\", {…}]` per record",
        "MQTT PUBLISH QoS 0, JSON payload, per record",
        "MQTT PUBLISH QoS 1, JSON payload, per record",
    ] {
        assert!(
            total(single) > batched,
            "{single} is not larger than a batched record:\n{table}"
        );
        assert!(
            number(&row(single)[1]) >= text as f64,
            "{single} is shorter than the record's text:\n{table}"
        );
    }
}

#[test]
fn a_short_latency_run_times_records_to_the_tail() {
    let table = bench(&["latency", "--clients", "4", "--records", "20"], false);
    for load in ["none", "4 clients shipping batches of 50 warn records"] {
        let row = cells(&table, load).unwrap_or_else(|| panic!("no row {load}:\n{table}"));
        let (p50, p99, worst) = (number(&row[1]), number(&row[2]), number(&row[3]));
        assert!(
            p50 > 0.0 && p50 <= p99 && p99 <= worst,
            "{load}: implausible latencies:\n{table}"
        );
    }
    let idle = cells(&table, "none").unwrap();
    assert_eq!(
        idle[4], "0",
        "records lost from the tail of an idle server:\n{table}"
    );
    let loaded = cells(&table, "4 clients shipping batches of 50 warn records").unwrap();
    assert!(number(&loaded[6]) > 0.0, "the load acked nothing:\n{table}");
}

#[test]
fn a_short_hostile_run_ships_logs_while_the_attacks_are_closed() {
    let table = bench(
        &[
            "hostile",
            "--clients",
            "2",
            "--attackers",
            "2",
            "--seconds",
            "1",
            "--runs",
            "1",
        ],
        false,
    );
    let alone = cells(&table, "alone").unwrap_or_else(|| panic!("no row alone:\n{table}"));
    let attacked =
        cells(&table, "under attack").unwrap_or_else(|| panic!("no row under attack:\n{table}"));
    assert!(number(&alone[1]) > 0.0, "nothing acked alone:\n{table}");
    assert!(
        number(&attacked[1]) > 0.0,
        "nothing acked under attack:\n{table}"
    );
    // Every attack round ended the way it was designed to (the server closed or outlasted
    // the attacker), none in the attacker's own error.
    assert!(number(&attacked[3]) > 0.0, "no attack ran:\n{table}");
    assert!(
        attacked[3].contains("(0 of "),
        "attack rounds failed:\n{table}"
    );
}
