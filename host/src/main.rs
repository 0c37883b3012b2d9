//! `sentelite`: runs the host server (`serve`) or a demo device (`device`).
//!
//! Logs go to stderr, filtered by `SENTELITE_LOG` (e.g. `SENTELITE_LOG=sentelite_host=debug`);
//! stdout carries only the `listening on ws://ADDR/ws` line, so scripts can read the port.

mod cli;

use std::error::Error;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use sentelite_host::blob::BlobService;
use sentelite_host::defmt::DefmtService;
use sentelite_host::logs::LogService;
use sentelite_host::lsp::LspService;
use sentelite_host::nrepl::{NreplOptions, NreplService};
use sentelite_host::server::{DEFAULT_DATA_DIR, DEFAULT_LISTEN};
use sentelite_host::{FileConfig, Server};
use tracing_subscriber::EnvFilter;

pub(crate) type BoxError = Box<dyn Error + Send + Sync>;

#[derive(Debug, Parser)]
#[command(
    name = "sentelite",
    version,
    about = "sentelite host server and demo device"
)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Run the host server until Ctrl-C.
    Serve(ServeArgs),
    /// Run a demo device that connects to a server.
    Device(DeviceArgs),
    /// Query or follow the logs clients sent.
    #[command(subcommand)]
    Logs(cli::logs::LogsCommand),
    /// Store, serve and push blobs; see the transfers clients reported.
    #[command(subcommand)]
    Blob(cli::blob::BlobCommand),
    /// Register firmware ELFs whose defmt log frames the server decodes.
    #[command(subcommand)]
    Elf(cli::elf::ElfCommand),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port) [default: 127.0.0.1:7700]
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Directory for server data, created if missing [default: ./sentelite-data]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// TOML settings file with kebab-case keys (max-connections, heartbeat-interval-ms, …);
    /// flags given here override it
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Shared secret every client must present
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    /// Serve nREPL for editors on ADDR, evaluating on connected clients that declare an
    /// evaluator [default when given without ADDR: 127.0.0.1:7888]
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = sentelite_host::nrepl::DEFAULT_NREPL_ADDR)]
    nrepl: Option<String>,
    /// Forward clients' `nrepl/browser-request`s to this nREPL server (host:port)
    #[arg(long, value_name = "ADDR")]
    nrepl_upstream: Option<String>,
}

#[derive(Debug, Args)]
struct DeviceArgs {
    /// Server URL, e.g. ws://127.0.0.1:7700/ws
    #[arg(long, value_name = "URL")]
    server: String,
    /// Client id the device announces
    #[arg(long, value_name = "ID", default_value = "sentelite-device")]
    name: String,
    /// Shared secret, if the server asks for one
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    /// Generate and ship this many log records, then exit once all are acknowledged (or
    /// reported dropped), printing `sent N acked N dropped N`
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Log records generated per second
    #[arg(long, value_name = "N", default_value_t = 1000)]
    rate: u64,
    /// Levels of the generated records, comma-separated (trace, debug, info, warn, error,
    /// fatal, report)
    #[arg(
        long,
        value_name = "L,L,...",
        value_delimiter = ',',
        default_value = "warn,error"
    )]
    levels: Vec<String>,
    /// Run the server's blob fetch directives into this directory (file name = SHA-256)
    #[arg(long, value_name = "DIR")]
    blob_dir: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    if let Mode::Blob(command) = cli.mode {
        return match tokio::task::spawn_blocking(move || cli::blob::run(command)).await {
            Ok(Ok(code)) => ExitCode::from(code),
            Ok(Err(e)) => {
                eprintln!("sentelite: {e}");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("sentelite: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let result = match cli.mode {
        Mode::Serve(args) => serve(args).await,
        Mode::Device(args) => device(args).await,
        Mode::Logs(command) => tokio::task::spawn_blocking(move || cli::logs::run(command))
            .await
            .unwrap_or_else(|e| Err(e.into())),
        Mode::Elf(command) => tokio::task::spawn_blocking(move || cli::elf::run(command))
            .await
            .unwrap_or_else(|e| Err(e.into())),
        Mode::Blob(_) => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sentelite: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter =
        EnvFilter::try_from_env("SENTELITE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

async fn serve(args: ServeArgs) -> Result<(), BoxError> {
    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let data_dir = args
        .data_dir
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let mut settings = file.settings;
    if args.token.is_some() {
        settings.token = args.token;
    }
    let stop = StopSignals::register()?;
    settings.validate()?;
    let mut builder = Server::builder();
    let logs = if settings.logs.enabled {
        // defmt frames are log records: their decoder lives and dies with the log store.
        let defmt = DefmtService::open(&data_dir)?;
        builder = builder.with_defmt(defmt.clone());
        Some(LogService::start(&data_dir, &settings.logs)?.with_defmt(defmt))
    } else {
        None
    };
    if let Some(logs) = &logs {
        builder = builder.with_logs(logs.clone());
    }
    let blobs = BlobService::start(&data_dir, &settings.blobs)?;
    builder = builder.with_blobs(blobs.clone());
    // The reverse direction works without the endpoint: then only the upstream is used.
    let nrepl = if args.nrepl.is_some() || args.nrepl_upstream.is_some() {
        let addr = args
            .nrepl
            .as_deref()
            .unwrap_or(sentelite_host::nrepl::DEFAULT_NREPL_ADDR);
        let addr = addr.parse().map_err(|e| format!("--nrepl {addr:?}: {e}"))?;
        let mut options = NreplOptions::new(addr);
        settings.nrepl.apply_to(&mut options);
        options.upstream = args.nrepl_upstream.clone();
        Some(NreplService::new(options))
    } else {
        None
    };
    if let Some(nrepl) = &nrepl {
        builder = builder.with_nrepl(nrepl.clone());
    }
    let lsp = if settings.lsp.languages.is_empty() {
        None
    } else {
        Some(LspService::new(settings.lsp.clone())?)
    };
    if let Some(lsp) = &lsp {
        builder = builder.with_lsp(lsp.clone());
    }
    let server = builder
        .listen(listen)
        .data_dir(data_dir)
        .config(settings)
        .with_builtin_handlers()
        .on_lifecycle(connection_log())
        .bind()
        .await?;
    // A wildcard bind names no address clients can reach: then the first `blob push`
    // teaches the URL it used (unless the settings' `public-url` did).
    if !server.local_addr().ip().is_unspecified() {
        blobs.set_base_url(&format!("http://{}", server.local_addr()));
    }
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on ws://{}/ws", server.local_addr())?;
        out.flush()?;
    }
    let nrepl_endpoint = match nrepl.as_ref().filter(|_| args.nrepl.is_some()) {
        Some(nrepl) => {
            let endpoint = nrepl.start(server.handle()).await?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", endpoint.banner())?;
            out.flush()?;
            Some(endpoint)
        }
        None => None,
    };
    stop.wait().await;
    if let Some(endpoint) = &nrepl_endpoint {
        endpoint.shutdown();
    }
    if let Some(logs) = &logs {
        logs.close();
    }
    server.shutdown().await;
    if let Some(logs) = &logs {
        logs.flush().await;
    }
    Ok(())
}

/// One line in the server's own log per client that connects or leaves, with its address.
/// Peer-supplied strings are printed with `?` so control characters arrive escaped.
fn connection_log() -> impl Fn(&sentelite_host::LifecycleEvent) + Send + Sync + 'static {
    use sentelite_host::LifecycleEvent;
    let remotes = std::sync::Mutex::new(std::collections::HashMap::new());
    move |event| match event {
        LifecycleEvent::Connected {
            connection_id,
            remote,
        } => {
            if let Ok(mut map) = remotes.lock() {
                map.insert(*connection_id, *remote);
            }
        }
        LifecycleEvent::Handshake {
            connection_id,
            uid,
            client_id,
            boot_id,
            ..
        } => {
            let remote = remotes
                .lock()
                .ok()
                .and_then(|m| m.get(connection_id).copied());
            tracing::info!(
                connection = connection_id,
                client = ?client_id,
                %uid,
                boot_id,
                remote = ?remote,
                "client connected"
            );
        }
        LifecycleEvent::Closed {
            connection_id,
            uid,
            client_id,
            code,
            reason,
            initiator,
        } => {
            let remote = remotes
                .lock()
                .ok()
                .and_then(|mut m| m.remove(connection_id));
            // Connections that never finished a handshake are not clients: debug only.
            if client_id.is_some() {
                tracing::info!(
                    connection = connection_id,
                    client = ?client_id.as_deref().unwrap_or("-"),
                    uid = uid.as_deref().unwrap_or("-"),
                    remote = ?remote,
                    code = code.name(),
                    ?initiator,
                    reason = ?reason,
                    "client disconnected"
                );
            } else {
                tracing::debug!(connection = connection_id, remote = ?remote, code = code.name(), "connection closed before its handshake");
            }
        }
    }
}

async fn device(args: DeviceArgs) -> Result<(), BoxError> {
    let levels = args
        .levels
        .iter()
        .map(|name| {
            sentelite_core::log::Level::from_name(name)
                .ok_or_else(|| format!("--levels: unknown level {name:?}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    sentelite_host::device::run(sentelite_host::device::DeviceOptions {
        server: args.server,
        name: args.name,
        token: args.token,
        blob_dir: args.blob_dir,
        logs: args.count.map(|count| sentelite_host::device::LogLoad {
            count,
            rate: args.rate,
            levels,
        }),
    })
    .await
}

/// Ctrl-C, or SIGTERM where there is one (service managers stop services with it).
///
/// Registered before the listening line is printed: a signal that arrives right after it
/// must shut down gracefully, not kill the process.
struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn register() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Self {})
        }
    }

    async fn wait(self) {
        #[cfg(unix)]
        {
            let Self {
                mut interrupt,
                mut terminate,
            } = self;
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
