//! `sentelite device`: a virtual device on the host. It connects with the tokio client,
//! keeps the link alive (the session pings on the server's heartbeat schedule and reconnects
//! with backoff), prints one line per lifecycle event on stdout, and answers the server's
//! requests: `device/ping` is echoed, anything else is `unsupported`. Ctrl-C closes the
//! connection cleanly and returns.
//!
//! With `--count N` it also generates `N` realistic log records (at `--rate` records a
//! second, cycling through `--levels`), ships them through the client's log queue, and exits
//! once every record is acknowledged by the server or reported to it as dropped, printing
//! `sent N acked N dropped N`. It keeps retrying through server restarts meanwhile.
//!
//! With `--blob-dir DIR` it also runs the server's blob fetch directives
//! (`blob/fetch-and-*`, any handler name) into `DIR`, each blob stored under its SHA-256 hex
//! once verified, and prints `blob transfer id=N event=… answered=OK` when one ends.
//!
//! Lines look like `open uid=u1 connection=7`, `closed code=heartbeat-timeout reason="…"
//! by=local`, `reconnect attempt=2 in 1830ms`, `message event=app/x payload=bytes(3)`, so
//! scripts and tests can follow a device by reading its stdout.

use std::error::Error;
use std::future::Future;
use std::io;
use std::path::PathBuf;

use sentelite_core::log::{FilterConfig, LevelSet, LogConfig, QueueConfig};
use sentelite_core::value::{encoder, finish, keyword};
use sentelite_tokio::blob::{BlobHandlers, FileSink, is_blob_directive, serve_directive};
use sentelite_tokio::{
    Client, ClientEvent, ClientOptions, IncomingRequest, Initiator, Level, PayloadBuf, Status,
    capability,
};

/// What `sentelite device` was asked to do.
#[derive(Debug, Clone)]
pub struct DeviceOptions {
    /// Server URL, `ws://host:port/path`.
    pub server: String,
    /// Client id the device announces.
    pub name: String,
    /// Shared secret for servers that ask for one.
    pub token: Option<String>,
    /// Log records to generate and ship, if any.
    pub logs: Option<LogLoad>,
    /// Directory that fetch directives store blobs into (`--blob-dir`); without it they are
    /// refused as unsupported like any other unknown request.
    pub blob_dir: Option<PathBuf>,
}

/// Log records `sentelite device` generates.
#[derive(Debug, Clone)]
pub struct LogLoad {
    /// How many records.
    pub count: u64,
    /// Records per second (at least 1).
    pub rate: u64,
    /// Levels to cycle through.
    pub levels: Vec<Level>,
}

/// Namespaces, event ids and messages of the generated records: a few repeat, as in a real
/// program's logs.
const SOURCES: [(&str, Option<&str>, &str); 4] = [
    ("sensor.temp", Some("sensor.temp/sampled"), "sample taken"),
    (
        "sensor.temp",
        Some("sensor.temp/out-of-range"),
        "reading out of range",
    ),
    ("net.link", Some("net.link/retry"), "link retry"),
    ("app.main", None, "heartbeat"),
];

/// Runs the device until Ctrl-C, printing its events on stdout.
pub async fn run(options: DeviceOptions) -> Result<(), Box<dyn Error + Send + Sync>> {
    run_until(options, tokio::signal::ctrl_c(), |line| println!("{line}")).await
}

/// Runs the device until `stop` completes, handing each event line to `print`.
pub(crate) async fn run_until(
    options: DeviceOptions,
    stop: impl Future<Output = io::Result<()>>,
    mut print: impl FnMut(String),
) -> Result<(), Box<dyn Error + Send + Sync>> {
    let mut client_options = ClientOptions::new(options.server, options.name);
    client_options.token = options.token;
    client_options.firmware = Some(concat!("sentelite-device/", env!("CARGO_PKG_VERSION")).into());
    // It answers only `device/ping`, so relayed requests are harmless.
    client_options.capabilities = capability::CHANNELS | capability::RELAY_TARGET;
    if let Some(load) = &options.logs {
        client_options.capabilities |= capability::LOGS;
        client_options.log = Some(LogConfig {
            filter: FilterConfig {
                levels: LevelSet::of(&load.levels),
                ..FilterConfig::default()
            },
            queue: QueueConfig {
                max_records: 100_000,
                ..QueueConfig::default()
            },
            batch_size: 100,
            batch_timeout: sentelite_core::Duration::from_millis(200),
            ..LogConfig::default()
        });
        client_options.log_queue_bytes = 8 * 1024 * 1024;
    }
    let client = sentelite_tokio::connect(client_options)?;
    let events = client.events();
    let blobs = options.blob_dir.clone().map(|dir| {
        BlobHandlers::new().any_handler(move |sha| Box::new(FileSink::new(dir.clone(), sha)))
    });
    let runtime = sentelite_tokio::TokioRuntime::current().ok_or("no tokio runtime")?;
    // Transfers run as their own tasks and report their end here, to be printed in order.
    let (ended_tx, mut ended) = tokio::sync::mpsc::unbounded_channel::<String>();
    let generating = async {
        match &options.logs {
            Some(load) => generate(&client, load).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stop);
    tokio::pin!(generating);
    loop {
        tokio::select! {
            signal = &mut stop => {
                print("stopping".to_owned());
                client.close().await;
                return signal.map_err(Into::into);
            }
            sent = &mut generating => {
                let stats = client.log_stats().unwrap_or_default();
                print(format!(
                    "sent {sent} acked {} dropped {}",
                    stats.queue.acked, stats.queue.dropped
                ));
                client.close().await;
                return Ok(());
            }
            Some(line) = ended.recv() => print(line),
            event = events.recv() => {
                // The client only ends on its own after `close`, so this is a clean exit.
                let Some(event) = event else { return Ok(()) };
                match event {
                    ClientEvent::Request(request) if is_blob_directive(&request.event) => {
                        match &blobs {
                            Some(handlers) => {
                                let (handlers, runtime) = (handlers.clone(), runtime.clone());
                                let ended_tx = ended_tx.clone();
                                let (id, event) = (request.id(), shown(&request.event));
                                print(format!("blob transfer id={id} event={event} started"));
                                tokio::spawn(async move {
                                    let status =
                                        serve_directive(request, &handlers, &runtime).await;
                                    let _ = ended_tx.send(format!(
                                        "blob transfer id={id} event={event} answered={}",
                                        status.name()
                                    ));
                                });
                            }
                            None => print(answer_request(request).await),
                        }
                    }
                    ClientEvent::Cancelled { id } if blobs.as_ref().is_some_and(|b| b.cancel(id)) => {
                        print(format!("blob transfer id={id} cancelled by the server"));
                    }
                    ClientEvent::Request(request) => print(answer_request(request).await),
                    other => print(describe(&other)),
                }
            }
        }
    }
}

/// Logs `load.count` records at `load.rate` a second, then waits until every one is
/// acknowledged or reported dropped. Returns how many were logged.
async fn generate(client: &Client, load: &LogLoad) -> u64 {
    let rate = load.rate.max(1);
    // Records go out in small bursts every 10 ms (or one at a time when slower).
    let per_tick = rate.div_ceil(100).max(1);
    let tick = std::time::Duration::from_nanos(1_000_000_000 * per_tick / rate);
    let mut interval = tokio::time::interval(tick);
    let levels = if load.levels.is_empty() {
        vec![Level::Warn, Level::Error]
    } else {
        load.levels.clone()
    };
    let mut sent = 0u64;
    let mut data = [0u8; 32];
    while sent < load.count {
        interval.tick().await;
        for _ in 0..per_tick.min(load.count - sent) {
            let (namespace, id, message) = SOURCES[(sent % SOURCES.len() as u64) as usize];
            let level = levels[(sent % levels.len() as u64) as usize];
            let n = record_data(sent, &mut data);
            client.log(level, namespace, id, message, &data[..n]);
            sent += 1;
        }
    }
    loop {
        if client.log_stats().is_none_or(|s| s.settled()) {
            return sent;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// `{:n i}` as the record's structured data.
fn record_data(i: u64, buf: &mut [u8]) -> usize {
    let mut e = encoder(buf);
    let written = e
        .map(1)
        .and_then(|e| keyword(e, "n"))
        .and_then(|e| e.u64(i))
        .is_ok();
    if written { finish(e) } else { 0 }
}

/// The device's answer to a server request: `device/ping` echoes its payload.
fn answer(event: &str, payload: &PayloadBuf) -> (Status, PayloadBuf) {
    match event {
        "device/ping" => (Status::OK, payload.clone()),
        _ => (Status::UNSUPPORTED, PayloadBuf::Empty),
    }
}

/// Answers one request and says how it went.
async fn answer_request(request: IncomingRequest) -> String {
    let id = request.id();
    let event = request.event.clone();
    let (status, payload) = answer(&event, &request.payload);
    match request.end(status, payload).await {
        Ok(()) => format!(
            "request id={id} event={} answered={}",
            shown(&event),
            status.name()
        ),
        Err(error) => format!(
            "request id={id} event={} unanswered error={}",
            shown(&event),
            scrubbed(&format!("{error:?}"))
        ),
    }
}

/// One stdout line for an event.
fn describe(event: &ClientEvent) -> String {
    match event {
        ClientEvent::Opened { uid, connection_id } => {
            format!("open uid={} connection={connection_id}", shown(uid))
        }
        ClientEvent::Closed {
            code,
            reason,
            initiator,
        } => format!(
            "closed code={} reason=\"{}\" by={}",
            code.name(),
            shown(reason),
            initiator_name(*initiator)
        ),
        ClientEvent::ConnectFailed { reason } => {
            format!("connect-failed reason=\"{}\"", shown(reason))
        }
        ClientEvent::ReconnectScheduled { attempt, delay } => {
            format!("reconnect attempt={attempt} in {}ms", delay.as_millis())
        }
        ClientEvent::Message { event, payload } => format!(
            "message event={} payload={}",
            shown(event),
            payload_summary(payload)
        ),
        ClientEvent::ChannelMessage {
            channel,
            from,
            payload,
        } => format!(
            "channel channel={} from={} payload={}",
            shown(channel),
            shown(from),
            payload_summary(payload)
        ),
        ClientEvent::SubscribeResult {
            channel,
            subscribed,
            error,
        } => format!(
            "subscribe channel={} subscribed={subscribed} error={}",
            shown(channel),
            error.map_or("none", |e| e.name())
        ),
        ClientEvent::Cancelled { id } => format!("cancelled id={id}"),
        ClientEvent::Request(request) => {
            format!(
                "request id={} event={}",
                request.id(),
                shown(&request.event)
            )
        }
        other => format!("event {}", scrubbed(&format!("{other:?}"))),
    }
}

/// A peer-supplied string made safe to print: besides what [`scrubbed`] escapes, quotes and
/// backslashes are escaped, so a quoted field cannot be ended early or faked.
fn shown(text: &str) -> String {
    escape(text, |c| c == '"' || c == '\\')
}

/// Text that may hold peer-supplied strings (a `Debug` rendering) with terminal control
/// characters and direction overrides escaped.
fn scrubbed(text: &str) -> String {
    escape(text, |_| false)
}

fn escape(text: &str, also: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || is_direction_control(c) || also(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Unicode bidirectional formatting characters, which reorder how a terminal shows the rest
/// of a line.
fn is_direction_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn initiator_name(initiator: Initiator) -> &'static str {
    match initiator {
        Initiator::Local => "local",
        Initiator::Peer => "peer",
        Initiator::Transport => "transport",
    }
}

/// Kind and size of a payload; the content may be binary or long.
fn payload_summary(payload: &PayloadBuf) -> String {
    match payload {
        PayloadBuf::Empty => "empty".to_owned(),
        PayloadBuf::Bytes(b) => format!("bytes({})", b.len()),
        PayloadBuf::Value(b) => format!("value({})", b.len()),
        PayloadBuf::Json(s) => format!("json({})", s.len()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sentelite_tokio::CloseCode;

    use super::*;

    #[test]
    fn pings_are_echoed_and_the_rest_unsupported() {
        let payload = PayloadBuf::Bytes(vec![1, 2, 3]);
        assert_eq!(
            answer("device/ping", &payload),
            (Status::OK, payload.clone())
        );
        assert_eq!(
            answer("device/reboot", &payload),
            (Status::UNSUPPORTED, PayloadBuf::Empty)
        );
    }

    #[test]
    fn lifecycle_lines() {
        assert_eq!(
            describe(&ClientEvent::Opened {
                uid: "u1".into(),
                connection_id: 7
            }),
            "open uid=u1 connection=7"
        );
        assert_eq!(
            describe(&ClientEvent::Closed {
                code: CloseCode::HEARTBEAT_TIMEOUT,
                reason: "peer silent".into(),
                initiator: Initiator::Local,
            }),
            "closed code=heartbeat-timeout reason=\"peer silent\" by=local"
        );
        assert_eq!(
            describe(&ClientEvent::ReconnectScheduled {
                attempt: 2,
                delay: Duration::from_millis(1234)
            }),
            "reconnect attempt=2 in 1234ms"
        );
        assert_eq!(
            describe(&ClientEvent::Message {
                event: "app/x".into(),
                payload: PayloadBuf::Json("{}".into())
            }),
            "message event=app/x payload=json(2)"
        );
    }

    #[test]
    fn peer_strings_cannot_reach_the_terminal_raw() {
        let hostile = "x\u{1b}]0;owned\u{7}\r\n\u{1b}[2J\u{202e}\"q\\";
        let lines = [
            describe(&ClientEvent::Opened {
                uid: hostile.into(),
                connection_id: 1,
            }),
            describe(&ClientEvent::Closed {
                code: CloseCode::NORMAL,
                reason: hostile.into(),
                initiator: Initiator::Peer,
            }),
            describe(&ClientEvent::ConnectFailed {
                reason: hostile.into(),
            }),
            describe(&ClientEvent::Message {
                event: hostile.into(),
                payload: PayloadBuf::Json(hostile.into()),
            }),
            describe(&ClientEvent::ChannelMessage {
                channel: hostile.into(),
                from: hostile.into(),
                payload: PayloadBuf::Bytes(hostile.as_bytes().to_vec()),
            }),
            describe(&ClientEvent::SubscribeResult {
                channel: hostile.into(),
                subscribed: false,
                error: None,
            }),
        ];
        for line in &lines {
            assert!(
                !line
                    .chars()
                    .any(|c| c.is_control() || is_direction_control(c)),
                "raw control character in {line:?}"
            );
            assert!(!line.contains("owned\u{7}"), "{line:?}");
        }
        assert_eq!(
            lines[1],
            "closed code=normal reason=\"x\\u{1b}]0;owned\\u{7}\\r\\n\\u{1b}[2J\\u{202e}\\\"q\\\\\" by=peer"
        );
    }

    /// With no server listening the device reports failures and backs off; a stop request
    /// ends it cleanly.
    #[tokio::test]
    async fn reports_reconnects_and_stops_on_request() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let options = DeviceOptions {
            blob_dir: None,
            server: format!("ws://127.0.0.1:{port}/ws"),
            name: "dev-test".into(),
            token: None,
            logs: None,
        };
        let (line_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let stop = async move { stop_rx.await.map_err(io::Error::other) };
        let device = tokio::spawn(run_until(options, stop, move |line| {
            let _ = line_tx.send(line);
        }));
        let mut seen = Vec::new();
        let waited = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(line) = lines.recv().await {
                let done = line.starts_with("reconnect attempt=1 in ");
                seen.push(line);
                if done {
                    break;
                }
            }
        })
        .await;
        assert!(waited.is_ok(), "no reconnect line in {seen:?}");
        assert!(seen[0].starts_with("connect-failed reason="), "{seen:?}");
        stop_tx.send(()).expect("device running");
        let result = tokio::time::timeout(Duration::from_secs(5), device)
            .await
            .expect("device stops")
            .expect("device task");
        assert!(result.is_ok(), "{result:?}");
        // The device task is gone, so the line channel ends after what it printed last.
        let mut rest = Vec::new();
        while let Some(line) = lines.recv().await {
            rest.push(line);
        }
        assert_eq!(
            rest.last().map(String::as_str),
            Some("stopping"),
            "{rest:?}"
        );
    }

    /// `--blob-dir`: a fetch directive from the server ends OK with the blob in the directory
    /// under its SHA-256 hex, and the device prints the transfer's end.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blob_dir_takes_fetch_directives() {
        use sentelite_core::blob::directive::{Directive, HandlerKind, Metadata, Options};

        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        // SHA-256 of those bytes (Python's hashlib).
        let sha_hex =
            "3c65ea93424a9c362fec0e3a69ea36031e8a358441479dd665cc6110eabe7b08".to_string();
        let sha = sentelite_core::blob::hex::decode(&sha_hex).unwrap();
        // The blob over plain HTTP: a whole-body answer is a valid reply to `Range: bytes=0-`.
        let body = data.clone();
        let app = axum::Router::new().route(
            "/blobs/{sha}",
            axum::routing::get(move || {
                let body = body.clone();
                async move { body }
            }),
        );
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http_addr = http.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(http, app).await;
        });
        let data_dir =
            std::env::temp_dir().join(format!("sentelite-device-blob-{}", std::process::id()));
        let blob_dir = data_dir.join("blobs");
        let server = crate::Server::builder()
            .listen("127.0.0.1:0")
            .data_dir(&data_dir)
            .bind()
            .await
            .unwrap();
        let options = DeviceOptions {
            server: format!("ws://{}/ws", server.local_addr()),
            name: "blob-dev".into(),
            token: None,
            logs: None,
            blob_dir: Some(blob_dir.clone()),
        };
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (line_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
        let device = tokio::spawn(run_until(
            options,
            async move {
                let _ = stop_rx.await;
                Ok(())
            },
            move |line| {
                let _ = line_tx.send(line);
            },
        ));
        let handle = server.handle();
        let connection = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                if let Some(c) = handle.connections().first() {
                    return c.connection_id;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the device connects");
        let url = format!("http://{http_addr}/blobs/{sha_hex}");
        let directive = Directive {
            kind: HandlerKind::Process,
            transfer_id: "t-dev",
            url: &url,
            mirrors: Default::default(),
            handler: "any/thing",
            metadata: Metadata {
                size: Some(data.len() as u64),
                sha256: Some(sha),
                content_type: None,
            },
            options: Options::default(),
        };
        let mut buf = vec![0u8; 2048];
        let n = directive.encode(&mut buf).unwrap();
        buf.truncate(n);
        let replies = handle
            .request(
                connection,
                "blob/fetch-and-process",
                PayloadBuf::Value(buf),
                Some(Duration::from_secs(20)),
            )
            .await
            .unwrap();
        let (_, outcome) = tokio::time::timeout(Duration::from_secs(20), replies.collect())
            .await
            .expect("the directive ends");
        assert!(
            matches!(&outcome, crate::RequestOutcome::Completed { status, .. } if *status == Status::OK),
            "{outcome:?}"
        );
        assert_eq!(std::fs::read(blob_dir.join(&sha_hex)).unwrap(), data);
        let ended = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.recv().await {
                if line.contains("answered=") {
                    return line;
                }
            }
            String::new()
        })
        .await
        .expect("the device prints the end");
        assert!(
            ended.ends_with("answered=ok") || ended.ends_with("answered=OK"),
            "{ended}"
        );
        let _ = stop_tx.send(());
        let _ = device.await;
        server.shutdown().await;
        let _ = std::fs::remove_dir_all(&data_dir);
    }
}
