//! `sentelite-bench`: figures measured side by side with a baseline in the same run, printed
//! as markdown tables. The machine is shared and noisy: read the ratios.
//!
//! ```text
//! cargo run --release -p sentelite-bench -- logs [--clients 16,256] [--seconds 3] [--runs 3]
//! ```
//!
//! `logs`: log records acknowledged and stored per CPU-second of the server, for
//! `sentelite serve` (batches of records as `telemetry/log-batch` requests, each answered once
//! committed to the SQLite store) and for mosquitto (one QoS 1 message per record, answered by
//! PUBACK, records of the same wire size), with the same number of clients. Needs the
//! `mosquitto` binary (Debian package `mosquitto`); without it the baseline column says so.

mod cpu;
mod logs;
mod mqtt;
mod serve;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "sentelite-bench",
    about = "side-by-side benchmarks of sentelite"
)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Log ingest: records acked and stored per server CPU-second, against mosquitto QoS 1.
    Logs(logs::LogsArgs),
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let result = match cli.bench {
        Bench::Logs(args) => logs::run(args).await,
    };
    if let Err(e) = result {
        eprintln!("sentelite-bench: {e}");
        std::process::exit(1);
    }
}
