//! `sentelite elf add|list|remove`: the firmware ELFs a server decodes defmt log frames
//! with, registered through a running server's HTTP API (`--server`, the default) or
//! straight into a data dir the server reads at startup (`--data-dir`).
//!
//! `add` reads the ELF here first, so a file that is not an ELF, has no defmt table or no
//! build id fails before anything is sent, with the reason and a non-zero exit.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use sentelite_host::defmt::{DefmtService, Firmware};

use super::logs::{escape, http_base};
use crate::BoxError;

/// Server the commands talk to when neither `--server` nor `--data-dir` is given.
const DEFAULT_SERVER: &str = "http://127.0.0.1:7700";

#[derive(Debug, Subcommand)]
pub(crate) enum ElfCommand {
    /// Register a firmware ELF: defmt frames from devices announcing its build id are
    /// decoded from now on.
    Add(AddArgs),
    /// List the registered ELFs and what became of each build id's frames.
    List(Target),
    /// Forget the ELF of a build id.
    Remove(RemoveArgs),
}

/// Where the registry is.
#[derive(Debug, Args)]
pub(crate) struct Target {
    /// The running server (http://HOST:PORT or its ws:// URL) [default: http://127.0.0.1:7700]
    #[arg(long, value_name = "URL", conflicts_with = "data_dir")]
    server: Option<String>,
    /// Write to this server data directory instead; a running server sees it on restart
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    /// The firmware ELF (with its .defmt section; debug info adds file and line)
    file: PathBuf,
    /// The build id its devices announce, when not its GNU build-id note
    #[arg(long, value_name = "ID")]
    build_id: Option<String>,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, Args)]
pub(crate) struct RemoveArgs {
    /// The build id
    build_id: String,
    #[command(flatten)]
    target: Target,
}

pub(crate) fn run(command: ElfCommand) -> Result<(), BoxError> {
    match command {
        ElfCommand::Add(args) => add(args),
        ElfCommand::List(target) => list(target),
        ElfCommand::Remove(args) => remove(args),
    }
}

fn add(args: AddArgs) -> Result<(), BoxError> {
    let elf = std::fs::read(&args.file).map_err(|e| format!("{}: {e}", args.file.display()))?;
    let firmware = Firmware::parse(&elf, args.build_id.as_deref())
        .map_err(|e| format!("{}: {e}", args.file.display()))?;
    if let Some(dir) = &args.target.data_dir {
        let info = DefmtService::open(dir)?.add(&elf, args.build_id.as_deref())?;
        println!(
            "registered build id {} ({} formats) in {}",
            escape(&info.build_id),
            info.formats,
            dir.display()
        );
        return Ok(());
    }
    let mut url = api_url(&args.target)?;
    if let Some(id) = &args.build_id {
        url.query_pairs_mut().append_pair("build-id", id);
    }
    let mut response = agent()
        .post(url.as_str())
        .header("content-type", "application/octet-stream")
        .send(&elf[..])?;
    let text = response.body_mut().read_to_string().unwrap_or_default();
    if !response.status().is_success() {
        return Err(format!("{url}: {}: {}", response.status(), escape(&text)).into());
    }
    println!(
        "registered build id {} ({} formats)",
        escape(firmware.build_id()),
        firmware.formats()
    );
    Ok(())
}

fn list(target: Target) -> Result<(), BoxError> {
    if let Some(dir) = &target.data_dir {
        for info in DefmtService::open(dir)?.list() {
            println!(
                "{}  {} formats  {} bytes",
                escape(&info.build_id),
                info.formats,
                info.bytes
            );
        }
        return Ok(());
    }
    let url = api_url(&target)?;
    let mut response = agent().get(url.as_str()).call()?;
    let text = response.body_mut().read_to_string().unwrap_or_default();
    if !response.status().is_success() {
        return Err(format!("{url}: {}: {}", response.status(), escape(&text)).into());
    }
    let value: serde_json::Value = serde_json::from_str(&text)?;
    let text_of = |v: &serde_json::Value, key: &str| escape(v[key].as_str().unwrap_or(""));
    for elf in value["elfs"].as_array().into_iter().flatten() {
        println!(
            "{}  {} formats  {} bytes",
            text_of(elf, "build-id"),
            elf["formats"],
            elf["bytes"]
        );
    }
    for frames in value["frames"].as_array().into_iter().flatten() {
        let id = text_of(frames, "build-id");
        println!(
            "frames of {}: {} decoded, {} undecoded without an ELF, {} did not decode",
            if id.is_empty() {
                "(no build id)".into()
            } else {
                id
            },
            frames["decoded"],
            frames["unmatched"],
            frames["errors"]
        );
    }
    Ok(())
}

fn remove(args: RemoveArgs) -> Result<(), BoxError> {
    if let Some(dir) = &args.target.data_dir {
        if !DefmtService::open(dir)?.remove(&args.build_id)? {
            return Err(format!("no ELF registered for {}", escape(&args.build_id)).into());
        }
        return Ok(());
    }
    let mut url = api_url(&args.target)?;
    url.path_segments_mut()
        .map_err(|()| "the server URL cannot take a path")?
        .push(&args.build_id);
    let mut response = agent().delete(url.as_str()).call()?;
    if !response.status().is_success() {
        let text = response.body_mut().read_to_string().unwrap_or_default();
        return Err(format!("{url}: {}: {}", response.status(), escape(&text)).into());
    }
    Ok(())
}

fn api_url(target: &Target) -> Result<url::Url, BoxError> {
    let base = http_base(target.server.as_deref().unwrap_or(DEFAULT_SERVER));
    Ok(url::Url::parse(&format!("{base}/api/elf"))?)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
}
