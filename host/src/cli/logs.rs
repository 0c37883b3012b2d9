//! `sentelite logs query` and `sentelite logs tail`: read the log store directly (`--data-dir`)
//! or through a running server's HTTP API (`--server`). `sentelite logs level` changes what
//! a connected client ships, through the same API.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use sentelite_host::logs::{LogEntry, LogQuery, LogStore};
use sentelite_host::server::DEFAULT_DATA_DIR;

use crate::BoxError;

/// Server the commands talk to when `--server` is not given (tail only).
const DEFAULT_SERVER: &str = "http://127.0.0.1:7700";

#[derive(Debug, Subcommand)]
pub(crate) enum LogsCommand {
    /// Print stored records that match the filters (the newest `--limit`, oldest first).
    Query(QueryArgs),
    /// Print records as the server stores them, until interrupted.
    Tail(TailArgs),
    /// Make a connected client ship this level and above from now on.
    Level(LevelArgs),
}

#[derive(Debug, Args)]
pub(crate) struct LevelArgs {
    /// The running server (http://HOST:PORT or its ws:// URL) [default: http://127.0.0.1:7700]
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// The client id
    #[arg(long, value_name = "ID")]
    client: String,
    /// Switch the client's remote logging off instead
    #[arg(long)]
    off: bool,
    /// trace, debug, info, warn, error, fatal or report
    level: String,
}

#[derive(Debug, Args)]
pub(crate) struct Filters {
    /// This level and above: trace, debug, info, warn, error, fatal, report
    #[arg(long, value_name = "L")]
    level: Option<String>,
    /// Only this client id
    #[arg(long, value_name = "ID")]
    client: Option<String>,
    /// Only this event id (`my.ns/event-id`)
    #[arg(long, value_name = "EVENT")]
    id: Option<String>,
    /// Received within this long before now (e.g. 90s, 15m, 2h, 1d)
    #[arg(long, value_name = "DUR")]
    since: Option<String>,
    /// Received before this time (RFC 3339, e.g. 2026-12-01T10:00:00Z) or this long ago
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Message contains this text
    #[arg(long, value_name = "TEXT")]
    grep: Option<String>,
    /// Print one JSON object per line
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
    /// Data directory of the server whose store to read [default: ./sentelite-data]
    #[arg(long, value_name = "DIR", conflicts_with = "server")]
    data_dir: Option<PathBuf>,
    /// A running server (http://HOST:PORT or its ws:// URL) to ask instead
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    #[command(flatten)]
    filters: Filters,
    /// Most records printed [default: 100]
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Print only how many records match
    #[arg(long)]
    count: bool,
}

#[derive(Debug, Args)]
pub(crate) struct TailArgs {
    /// The server to follow (http://HOST:PORT or its ws:// URL) [default: http://127.0.0.1:7700]
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    #[command(flatten)]
    filters: Filters,
}

pub(crate) fn run(command: LogsCommand) -> Result<(), BoxError> {
    match command {
        LogsCommand::Query(args) => query(args),
        LogsCommand::Tail(args) => tail(args),
        LogsCommand::Level(args) => level(args),
    }
}

fn level(args: LevelArgs) -> Result<(), BoxError> {
    let base = http_base(args.server.as_deref().unwrap_or(DEFAULT_SERVER));
    let url = format!("{base}/api/logs/level");
    let body = serde_json::json!({
        "client": args.client,
        "level": args.level,
        "enabled": !args.off,
    });
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut response = agent
        .post(&url)
        .header("content-type", "application/json")
        .send(body.to_string())?;
    let text = response.body_mut().read_to_string().unwrap_or_default();
    if !response.status().is_success() {
        return Err(format!("{url}: {}: {}", response.status(), escape(&text)).into());
    }
    println!("{}", escape(text.trim()));
    Ok(())
}

fn query(args: QueryArgs) -> Result<(), BoxError> {
    let mut query = to_query(&args.filters)?;
    query.limit = args.limit.unwrap_or(0);
    query.min_level()?;
    let mut out = std::io::stdout().lock();
    if let Some(server) = &args.server {
        let url = format!(
            "{}/api/logs{}",
            http_base(server),
            query_string(&query, args.count)
        );
        let body = get(&url)?.into_body().read_to_string()?;
        if args.count {
            let value: serde_json::Value = serde_json::from_str(&body)?;
            writeln!(out, "{}", value["count"])?;
        } else {
            for entry in serde_json::from_str::<Vec<LogEntry>>(&body)? {
                print_entry(&mut out, &entry, args.filters.json)?;
            }
        }
        return Ok(());
    }
    let dir = args
        .data_dir
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let store_file = dir.join(sentelite_host::logs::store::STORE_FILE);
    if !store_file.exists() {
        return Err(format!("no log store at {}", store_file.display()).into());
    }
    let store = LogStore::open(&dir)?;
    if args.count {
        writeln!(out, "{}", store.count(&query)?)?;
    } else {
        for entry in store.query(&query)? {
            print_entry(&mut out, &entry, args.filters.json)?;
        }
    }
    Ok(())
}

fn tail(args: TailArgs) -> Result<(), BoxError> {
    let query = to_query(&args.filters)?;
    query.min_level()?;
    let base = http_base(args.server.as_deref().unwrap_or(DEFAULT_SERVER));
    let url = format!("{base}/api/logs/tail{}", query_string(&query, false));
    let response = get(&url)?;
    let reader = BufReader::new(response.into_body().into_reader());
    let mut out = std::io::stdout().lock();
    for line in reader.lines() {
        let line = line?;
        match serde_json::from_str::<LogEntry>(&line) {
            Ok(entry) => print_entry(&mut out, &entry, args.filters.json)?,
            Err(_) => eprintln!("sentelite: {}", escape(&line)),
        }
        out.flush()?;
    }
    Ok(())
}

fn get(url: &str) -> Result<ureq::http::Response<ureq::Body>, BoxError> {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let response = agent.get(url).call()?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.into_body().read_to_string().unwrap_or_default();
        return Err(format!("{url}: {status}: {}", escape(&body)).into());
    }
    Ok(response)
}

/// `ws://host:port/ws` or `http://host:port[/]` → `http://host:port`.
pub(crate) fn http_base(server: &str) -> String {
    let trimmed = server.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("ws://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .unwrap_or(trimmed);
    let host = rest.strip_suffix("/ws").unwrap_or(rest);
    format!("http://{host}")
}

fn to_query(filters: &Filters) -> Result<LogQuery, BoxError> {
    let now = unix_millis(SystemTime::now());
    let since_ms = match &filters.since {
        Some(text) => Some(now.saturating_sub(millis(parse_duration(text)?))),
        None => None,
    };
    let until_ms = match &filters.until {
        Some(text) => Some(match humantime::parse_rfc3339_weak(text) {
            Ok(at) => unix_millis(at),
            Err(_) => now.saturating_sub(millis(parse_duration(text).map_err(|_| {
                format!("--until {text:?}: expected an RFC 3339 time or a duration")
            })?)),
        }),
        None => None,
    };
    Ok(LogQuery {
        level: filters.level.clone(),
        client: filters.client.clone(),
        id: filters.id.clone(),
        since_ms,
        until_ms,
        grep: filters.grep.clone(),
        limit: 0,
    })
}

fn parse_duration(text: &str) -> Result<Duration, BoxError> {
    humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e}").into())
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn unix_millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, millis)
}

fn query_string(q: &LogQuery, count: bool) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    let mut add = |key, value: Option<String>| {
        if let Some(v) = value {
            pairs.push((key, v));
        }
    };
    add("level", q.level.clone());
    add("client", q.client.clone());
    add("id", q.id.clone());
    add("since-ms", q.since_ms.map(|v| v.to_string()));
    add("until-ms", q.until_ms.map(|v| v.to_string()));
    add("grep", q.grep.clone());
    add("limit", (q.limit > 0).then(|| q.limit.to_string()));
    add("count", count.then(|| "true".to_owned()));
    if pairs.is_empty() {
        return String::new();
    }
    let encoded: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect();
    format!("?{}", encoded.join("&"))
}

fn percent_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// One record as a line: time, level, client, namespace, id, message, data.
fn print_entry(out: &mut impl Write, entry: &LogEntry, json: bool) -> std::io::Result<()> {
    if json {
        return writeln!(out, "{}", serde_json::to_string(entry).unwrap_or_default());
    }
    let at = UNIX_EPOCH + Duration::from_millis(entry.received_ms);
    let id = entry
        .id
        .as_deref()
        .map(|i| format!(" [{}]", escape(i)))
        .unwrap_or_default();
    let data = if entry.data.is_null() {
        String::new()
    } else {
        format!(" {}", entry.data)
    };
    writeln!(
        out,
        "{} {:<6} {} {}{} {}{}",
        humantime::format_rfc3339_millis(at),
        entry.level.to_uppercase(),
        escape(&entry.client_id),
        escape(&entry.ns),
        id,
        escape(&entry.message),
        escape(&data),
    )
}

/// Peer-supplied text with control characters escaped, so a record cannot drive the terminal.
pub(crate) fn escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_become_http_bases() {
        assert_eq!(http_base("ws://127.0.0.1:7700/ws"), "http://127.0.0.1:7700");
        assert_eq!(http_base("http://h:1/"), "http://h:1");
        assert_eq!(http_base("h:2"), "http://h:2");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("a\u{1b}[2Jb\n"), "a\\u{1b}[2Jb\\n");
        assert_eq!(escape("plain ü"), "plain ü");
    }

    #[test]
    fn filters_go_into_the_query_string_encoded() {
        let q = LogQuery {
            level: Some("warn".into()),
            grep: Some("disk full&x".into()),
            limit: 5,
            ..LogQuery::default()
        };
        assert_eq!(
            query_string(&q, true),
            "?level=warn&grep=disk+full%26x&limit=5&count=true"
        );
        assert_eq!(query_string(&LogQuery::default(), false), "");
    }
}
