//! `sentelite blob add|ls|rm|push|upload|transfers`: the blob store in a data dir, and
//! directives through a running server's HTTP API.
//!
//! `push` and `upload` exit with a code that says how the transfer ended, for scripts:
//! 0 completed; 1 any other error (bad input, server unreachable, upload refused);
//! 3 the client is not connected or refused the directive (unknown handler, busy);
//! 4 the transfer failed or was cancelled; 5 the client rescheduled it for later.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use sentelite_host::FileConfig;
use sentelite_host::blob::api::{PushBody, UploadBody};
use sentelite_host::blob::{BlobId, BlobStore, FetchOptions, HandlerKind};
use sentelite_host::blob::{TransferRecord, TransferState, TransferStore};
use sentelite_host::server::{DEFAULT_DATA_DIR, DEFAULT_LISTEN};

use super::logs::http_base;
use crate::BoxError;

/// Exit code: the client is not connected, or it refused the directive.
pub(crate) const EXIT_REFUSED: u8 = 3;
/// Exit code: the transfer failed or was cancelled.
pub(crate) const EXIT_FAILED: u8 = 4;
/// Exit code: the client will try again later.
pub(crate) const EXIT_RESCHEDULED: u8 = 5;

#[derive(Debug, Subcommand)]
pub(crate) enum BlobCommand {
    /// Store a file under its SHA-256; prints the hash, size and URL.
    Add(AddArgs),
    /// List the stored blobs (hash and size).
    Ls(StoreArgs),
    /// Delete a stored blob.
    Rm(RmArgs),
    /// Tell a client to fetch a blob, and follow its progress to the end.
    Push(PushArgs),
    /// Tell a client to upload something it holds into the server's store.
    Upload(UploadArgs),
    /// Show the transfers clients reported on.
    Transfers(TransfersArgs),
    /// Cancel a directive in flight: its client is sent a Cancel and the transfer ends
    /// `cancelled`.
    Cancel(CancelArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CancelArgs {
    /// The running server (http://HOST:PORT or its ws:// URL)
    #[arg(long, value_name = "URL")]
    server: String,
    /// The transfer id (`blob push --json` and `blob transfers` print it)
    transfer_id: String,
}

#[derive(Debug, Args)]
pub(crate) struct StoreArgs {
    /// Data directory of the server [default: ./sentelite-data]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Print one JSON object per line
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Settings file whose `listen` address names the URL printed
    #[arg(long, value_name = "FILE", conflicts_with = "base_url")]
    config: Option<PathBuf>,
    /// URL clients reach the server at (http://HOST:PORT) [default: the listen address]
    #[arg(long, value_name = "URL")]
    base_url: Option<String>,
    /// The file to store
    file: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct RmArgs {
    /// Data directory of the server [default: ./sentelite-data]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The blob's SHA-256
    sha256: String,
}

#[derive(Debug, Args)]
pub(crate) struct PushArgs {
    /// The running server (http://HOST:PORT or its ws:// URL)
    #[arg(long, value_name = "URL")]
    server: String,
    /// The client to send the directive to
    #[arg(long, value_name = "ID")]
    client: String,
    /// The client's handler for the blob (ns/name)
    #[arg(long, value_name = "H")]
    handler: String,
    /// Directive kind: process, eval, display or render
    #[arg(long, value_name = "KIND", default_value = "process")]
    kind: String,
    /// Further URLs the client may fetch the blob from
    #[arg(long = "mirror", value_name = "URL")]
    mirrors: Vec<String>,
    /// The whole transfer's deadline in milliseconds
    #[arg(long, value_name = "MS")]
    deadline_ms: Option<u64>,
    /// Retries per source before failing over
    #[arg(long, value_name = "N")]
    retry_count: Option<u64>,
    /// Bytes per range request
    #[arg(long, value_name = "BYTES")]
    chunk_size: Option<u64>,
    /// Print one JSON object per update instead of a progress bar
    #[arg(long)]
    json: bool,
    /// A file (uploaded to the server's store first) or the SHA-256 of a stored blob
    blob: String,
}

#[derive(Debug, Args)]
pub(crate) struct UploadArgs {
    /// The running server (http://HOST:PORT or its ws:// URL)
    #[arg(long, value_name = "URL")]
    server: String,
    /// The client that uploads
    #[arg(long, value_name = "ID")]
    client: String,
    /// What it uploads (ns/name)
    #[arg(long, value_name = "NAME")]
    source: String,
    /// Print one JSON object per update
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct TransfersArgs {
    /// Data directory of the server whose records to read [default: ./sentelite-data]
    #[arg(long, value_name = "DIR", conflicts_with = "server")]
    data_dir: Option<PathBuf>,
    /// A running server (http://HOST:PORT or its ws:// URL) to ask instead
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Only this client's transfers
    #[arg(long, value_name = "ID")]
    client: Option<String>,
    /// Most records printed, the newest [default: all]
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Print one JSON object per line
    #[arg(long)]
    json: bool,
}

/// Runs one command; the exit code on success of the command itself.
pub(crate) fn run(command: BlobCommand) -> Result<u8, BoxError> {
    match command {
        BlobCommand::Add(args) => add(args).map(|()| 0),
        BlobCommand::Ls(args) => ls(args).map(|()| 0),
        BlobCommand::Rm(args) => rm(args).map(|()| 0),
        BlobCommand::Push(args) => push(args),
        BlobCommand::Upload(args) => upload(args),
        BlobCommand::Transfers(args) => transfers(args).map(|()| 0),
        BlobCommand::Cancel(args) => cancel(args).map(|()| 0),
    }
}

fn data_dir(dir: Option<PathBuf>) -> PathBuf {
    dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
}

fn add(args: AddArgs) -> Result<(), BoxError> {
    let base = match (args.base_url, args.config) {
        (Some(url), _) => url.trim_end_matches('/').to_owned(),
        (None, config) => {
            let file = match config {
                Some(path) => FileConfig::load(&path)?,
                None => FileConfig::default(),
            };
            match file.settings.blobs.public_url {
                Some(url) => url.trim_end_matches('/').to_owned(),
                None => {
                    let listen = file.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
                    format!("http://{listen}")
                }
            }
        }
    };
    let store = BlobStore::open(&data_dir(args.store.data_dir))?;
    let blob = store.add_file(&args.file)?;
    let url = format!("{base}/blobs/{}", blob.sha256);
    let mut out = std::io::stdout().lock();
    if args.store.json {
        let line = serde_json::json!({ "sha256": blob.sha256, "size": blob.size, "url": url });
        writeln!(out, "{line}")?;
    } else {
        writeln!(out, "{} {} {url}", blob.sha256, blob.size)?;
    }
    Ok(())
}

fn ls(args: StoreArgs) -> Result<(), BoxError> {
    let store = BlobStore::open(&data_dir(args.data_dir))?;
    let mut out = std::io::stdout().lock();
    for blob in store.list()? {
        if args.json {
            writeln!(out, "{}", serde_json::to_string(&blob)?)?;
        } else {
            writeln!(out, "{} {}", blob.sha256, blob.size)?;
        }
    }
    Ok(())
}

fn rm(args: RmArgs) -> Result<(), BoxError> {
    let id = BlobId::parse(&args.sha256)?;
    let store = BlobStore::open(&data_dir(args.data_dir))?;
    if !store.remove(&id)? {
        return Err(format!("no blob {id}").into());
    }
    Ok(())
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent()
}

fn kind_of(name: &str) -> Result<HandlerKind, BoxError> {
    HandlerKind::ALL
        .into_iter()
        .find(|kind| kind.name() == name)
        .ok_or_else(|| format!("--kind {name:?}: process, eval, display or render").into())
}

fn push(args: PushArgs) -> Result<u8, BoxError> {
    let base = http_base(&args.server);
    let kind = kind_of(&args.kind)?;
    let path = Path::new(&args.blob);
    let sha256 = match BlobId::parse(&args.blob) {
        Ok(id) if !path.exists() => id,
        _ => upload_file(&base, path, args.json)?,
    };
    let body = PushBody {
        client: args.client,
        handler: args.handler,
        kind: Some(kind),
        sha256: Some(sha256.to_string()),
        url: None,
        size: None,
        mirrors: args.mirrors,
        content_type: None,
        options: FetchOptions {
            deadline_ms: args.deadline_ms,
            retry_count: args.retry_count,
            chunk_size: args.chunk_size,
            ..FetchOptions::default()
        },
    };
    follow(
        &format!("{base}/api/blobs/push"),
        &serde_json::to_string(&body)?,
        args.json,
    )
}

fn cancel(args: CancelArgs) -> Result<(), BoxError> {
    let base = http_base(&args.server);
    let url = format!("{base}/api/blobs/transfers/{}/cancel", args.transfer_id);
    let answer = agent().post(&url).send_empty()?;
    let status = answer.status().as_u16();
    let body = answer.into_body().read_to_string().unwrap_or_default();
    if status != 202 {
        let why = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or(body);
        return Err(format!("cancel {}: {status}: {why}", args.transfer_id).into());
    }
    println!("cancelling {}", args.transfer_id);
    Ok(())
}

fn upload(args: UploadArgs) -> Result<u8, BoxError> {
    let base = http_base(&args.server);
    let body = UploadBody {
        client: args.client,
        source: args.source,
    };
    follow(
        &format!("{base}/api/blobs/upload"),
        &serde_json::to_string(&body)?,
        args.json,
    )
}

/// Uploads a file into the server's store with resumable `PUT`s: asks what the server
/// holds, then sends the rest in one chunk.
fn upload_file(base: &str, path: &Path, quiet: bool) -> Result<BlobId, BoxError> {
    let blob = sentelite_host::blob::store::hash_file(path)?;
    let url = format!("{base}/blobs/{}", blob.sha256);
    let agent = agent();
    let total = blob.size;
    let status = agent
        .put(&url)
        .header("Content-Range", &format!("bytes */{total}"))
        .send_empty()?;
    let held = match status.status().as_u16() {
        200 | 201 => return Ok(blob.sha256),
        308 => status
            .headers()
            .get("range")
            .and_then(|v| v.to_str().ok())
            .and_then(|r| r.strip_prefix("bytes=0-"))
            .and_then(|n| n.parse::<u64>().ok())
            .map_or(0, |last| last + 1),
        code => {
            let body = status.into_body().read_to_string().unwrap_or_default();
            return Err(format!("{url}: {code}: {body}").into());
        }
    };
    if total == 0 {
        return Err("an empty file is not a blob worth sending".into());
    }
    let mut file = std::fs::File::open(path)?;
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(held))?;
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        bar(total, "upload")
    };
    bar.set_position(held);
    let reader = bar.wrap_read(file.take(total - held));
    let response = agent
        .put(&url)
        .header(
            "Content-Range",
            &format!("bytes {held}-{}/{total}", total - 1),
        )
        .header("Content-Length", &(total - held).to_string())
        .send(ureq::SendBody::from_owned_reader(reader))?;
    bar.finish_and_clear();
    match response.status().as_u16() {
        200 | 201 => Ok(blob.sha256),
        code => {
            let body = response.into_body().read_to_string().unwrap_or_default();
            Err(format!("upload to {url}: {code}: {body}").into())
        }
    }
}

fn bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:>8} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

/// Posts a directive and follows its transfer records to the end; the exit code.
fn follow(url: &str, body: &str, json: bool) -> Result<u8, BoxError> {
    let response = agent()
        .post(url)
        .header("Content-Type", "application/json")
        .send(body)?;
    let status = response.status();
    if !status.is_success() {
        let text = response.into_body().read_to_string().unwrap_or_default();
        let refusal: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let message = refusal["error"].as_str().unwrap_or(&text);
        if json {
            println!("{text}");
        }
        eprintln!("sentelite: {message}");
        return Ok(if refusal["code"] == "unknown-client" {
            EXIT_REFUSED
        } else {
            1
        });
    }
    let lines = BufReader::new(response.into_body().into_reader()).lines();
    let mut bar: Option<ProgressBar> = None;
    let mut last: Option<TransferRecord> = None;
    let mut out = std::io::stdout().lock();
    for line in lines {
        let line = line?;
        let record: TransferRecord = serde_json::from_str(&line)?;
        if json {
            writeln!(out, "{line}")?;
            out.flush()?;
        } else {
            let bar = bar.get_or_insert_with(|| self::bar(record.total.unwrap_or(0), "fetch"));
            if let Some(total) = record.total {
                bar.set_length(total);
            }
            bar.set_position(record.loaded);
        }
        last = Some(record);
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let Some(last) = last else {
        return Err("the server ended the stream without a record".into());
    };
    if !json {
        print_record(&mut out, &last)?;
    }
    Ok(match last.state {
        TransferState::Completed => 0,
        TransferState::Refused => EXIT_REFUSED,
        TransferState::Rescheduled => EXIT_RESCHEDULED,
        TransferState::Failed | TransferState::Cancelled => EXIT_FAILED,
        // The stream ended before the transfer did (the server went away).
        TransferState::Sent | TransferState::Running => 1,
    })
}

fn transfers(args: TransfersArgs) -> Result<(), BoxError> {
    let records = if let Some(server) = &args.server {
        let mut url = format!(
            "{}/api/blobs/transfers?limit={}",
            http_base(server),
            args.limit.unwrap_or(0)
        );
        if let Some(client) = &args.client {
            url.push_str("&client=");
            url.push_str(
                &url::form_urlencoded::byte_serialize(client.as_bytes()).collect::<String>(),
            );
        }
        let response = agent().get(&url).call()?;
        if !response.status().is_success() {
            return Err(format!("{url}: {}", response.status()).into());
        }
        serde_json::from_str::<Vec<TransferRecord>>(&response.into_body().read_to_string()?)?
    } else {
        let dir = data_dir(args.data_dir);
        let file = dir.join(sentelite_host::blob::transfers::TRANSFERS_FILE);
        if !file.exists() {
            return Err(format!("no transfer records at {}", file.display()).into());
        }
        TransferStore::open(&dir)?.list(args.client.as_deref(), args.limit.unwrap_or(0))?
    };
    let mut out = std::io::stdout().lock();
    for record in &records {
        if args.json {
            writeln!(out, "{}", serde_json::to_string(record)?)?;
        } else {
            print_record(&mut out, record)?;
        }
    }
    Ok(())
}

fn print_record(out: &mut impl Write, r: &TransferRecord) -> std::io::Result<()> {
    let state = serde_json::to_value(r.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let total = r.total.map_or("?".to_owned(), |t| t.to_string());
    write!(
        out,
        "{} {:?} {} {state} {}/{total}",
        r.transfer_id, r.client, r.kind, r.loaded
    )?;
    if let Some(sha) = &r.sha256 {
        write!(out, " {sha}")?;
    }
    if let Some(error) = &r.error {
        write!(out, " error={error:?}")?;
    }
    writeln!(out)
}
