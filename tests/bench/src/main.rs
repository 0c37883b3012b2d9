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
//! PUBACK, records of the same wire size; and the same at QoS 0, unanswered, counted as
//! written), with the same number of clients. Needs the
//! `mosquitto` binary (Debian package `mosquitto`); without it the baseline column says so.
//!
//! ```text
//! cargo run --release -p sentelite-bench -- blob [--mib 512] [--runs 3]
//! ```
//!
//! `blob`: a blob added to the store of `sentelite serve`, fetched over loopback by the
//! client's fetch loop with SHA-256 verification (into a sink that keeps nothing), beside
//! `curl -o /dev/null` of the same URL, and the same file served by nginx (when installed).
//!
//! ```text
//! cargo run --release -p sentelite-bench -- events [--clients 16] [--seconds 3] [--runs 3] [--frame-bytes 128]
//! cargo run --release -p sentelite-bench -- idle [--connections 19000]
//! cargo run --release -p sentelite-bench -- wire [--records 1000]
//! cargo run --release -p sentelite-bench -- latency [--clients 256] [--records 2000]
//! cargo run --release -p sentelite-bench -- hostile [--clients 16] [--attackers 8]
//! ```
//!
//! `events`: unbatched native Event frames confirmed per server CPU-second, beside a bare
//! tokio-tungstenite server that only reads (this program's hidden `bare-ws-server`) and
//! mosquitto QoS 0. `idle`: server RSS per handshaken idle connection, sentelite and
//! mosquitto. `wire`: bytes per log record on the wire in each form. `latency`: an error
//! record's time from `Client::log` to a live tail subscriber, idle and under log load.
//! `hostile`: the log ingest load's records acked per second alone and beside hostile peers.
//! Figures, machine and commands: `docs/BENCHMARKS.md`.

mod bare;
mod blob;
mod cpu;
mod events;
mod fetch;
mod figures;
mod hostile;
mod idle;
mod latency;
mod logs;
mod mqtt;
mod mqtt_raw;
mod native;
mod serve;
mod wire;

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
    /// Blob fetch: MB/s of a verified fetch from `sentelite serve`, against curl and nginx.
    Blob(blob::BlobArgs),
    /// Unbatched events: frames per server CPU-second, against a bare WebSocket reader and
    /// mosquitto QoS 0.
    Events(events::EventsArgs),
    /// Idle connections: server RSS per handshaken idle connection, against mosquitto.
    Idle(idle::IdleArgs),
    /// Wire bytes per log record: batched, per-record native, EDN, JSON and MQTT forms.
    Wire(wire::WireArgs),
    /// Error-record latency from `Client::log` to a live tail subscriber, p50/p99, loaded.
    Latency(latency::LatencyArgs),
    /// Log ingest alone and beside hostile peers: the well-behaved clients' throughput ratio.
    Hostile(hostile::HostileArgs),
    /// The events bench's floor: a tokio-tungstenite server that only counts frames.
    #[command(hide = true)]
    BareWsServer(bare::BareArgs),
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let result = match cli.bench {
        Bench::Logs(args) => logs::run(args).await,
        Bench::Blob(args) => blob::run(args).await,
        Bench::Events(args) => events::run(args).await,
        Bench::Idle(args) => idle::run(args).await,
        Bench::Wire(args) => wire::run(args).await,
        Bench::Latency(args) => latency::run(args).await,
        Bench::Hostile(args) => hostile::run(args).await,
        Bench::BareWsServer(args) => bare::serve(args).await,
    };
    if let Err(e) = result {
        eprintln!("sentelite-bench: {e}");
        std::process::exit(1);
    }
}
