//! A blob test rig: an in-process sentelite server that sends `blob/*` directives to a tokio
//! client whose `BlobHandlers` run them, with the directive builder and the checks the blob
//! tests share (reports, part files, a corrupt copy of a blob).

use std::path::Path;
use std::time::Duration;

use sentelite_core::blob::directive::{Directive, HandlerKind, Metadata, Options};
use sentelite_host::{ConnectionId, ReplyItem, RequestOutcome, Server, ServerHandle};
use sentelite_tokio::blob::{BlobHandlers, is_blob_directive, serve_directive};
use sentelite_tokio::{Client, ClientEvent, ClientOptions, PayloadBuf, Status, TokioRuntime};
use sha2::{Digest, Sha256};

use crate::{TempDir, blob_server};

/// Upper bound for any one step; every wait below is bounded by it.
pub const STEP: Duration = Duration::from_secs(30);

/// Deterministic bytes that differ everywhere.
pub fn blob(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A server, a client routing blob directives to `handlers`, and the client's connection id.
pub struct Rig {
    server: Server,
    client: Client,
    /// The client's connection, for requests to it.
    pub connection: ConnectionId,
    _data: TempDir,
}

impl Rig {
    /// Starts a server and a client that routes blob directives to `handlers`.
    pub async fn start(handlers: BlobHandlers) -> Rig {
        let data = TempDir::new("blob-server-data");
        let server = Server::builder()
            .listen("127.0.0.1:0")
            .data_dir(data.path())
            .bind()
            .await
            .expect("server binds");
        let options = ClientOptions::new(format!("ws://{}/ws", server.local_addr()), "blob-device");
        let client = sentelite_tokio::connect(options).expect("client starts");
        let events = client.events();
        let (opened_tx, opened_rx) = tokio::sync::oneshot::channel();
        let runtime = TokioRuntime::current().expect("tokio");
        tokio::spawn(async move {
            let mut opened = Some(opened_tx);
            while let Some(event) = events.recv().await {
                match event {
                    ClientEvent::Opened { connection_id, .. } => {
                        if let Some(tx) = opened.take() {
                            let _ = tx.send(connection_id);
                        }
                    }
                    ClientEvent::Request(req) if is_blob_directive(&req.event) => {
                        let (handlers, runtime) = (handlers.clone(), runtime.clone());
                        tokio::spawn(async move {
                            serve_directive(req, &handlers, &runtime).await;
                        });
                    }
                    ClientEvent::Cancelled { id } => {
                        handlers.cancel(id);
                    }
                    _ => {}
                }
            }
        });
        let connection = tokio::time::timeout(STEP, opened_rx)
            .await
            .expect("client opens in time")
            .expect("opened");
        Rig {
            server,
            client,
            connection,
            _data: data,
        }
    }

    /// The server's handle.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Sends a directive and collects its parts and outcome.
    pub async fn ask(&self, event: &str, payload: Vec<u8>) -> (Vec<PayloadBuf>, RequestOutcome) {
        let mut replies = self
            .handle()
            .request(
                self.connection,
                event,
                PayloadBuf::Value(payload),
                Some(STEP),
            )
            .await
            .expect("request sent");
        let mut parts = Vec::new();
        let outcome = tokio::time::timeout(STEP, async {
            loop {
                match replies.next().await {
                    Some(ReplyItem::Part { payload, .. }) => parts.push(payload),
                    Some(ReplyItem::End(outcome)) => return outcome,
                    None => return RequestOutcome::Closed,
                }
            }
        })
        .await
        .expect("the directive ends in time");
        (parts, outcome)
    }

    /// Closes the client and shuts the server down.
    pub async fn stop(self) {
        self.client.close().await;
        self.server.shutdown().await;
    }
}

/// A `blob/fetch-*` directive for `data` from `url` and `mirrors` into `handler`: 5 s
/// without progress ends an attempt, 5 retries per source.
pub fn fetch_directive(url: &str, mirrors: &[&str], handler: &str, data: &[u8]) -> Vec<u8> {
    let options = Options {
        timeout_ms: Some(5_000),
        retry_count: Some(5),
        ..Options::default()
    };
    fetch_directive_with("t1", url, mirrors, handler, data, options)
}

/// A `blob/fetch-process` directive named `transfer_id` with the given options.
pub fn fetch_directive_with(
    transfer_id: &str,
    url: &str,
    mirrors: &[&str],
    handler: &str,
    data: &[u8],
    options: Options,
) -> Vec<u8> {
    let sha: [u8; 32] = Sha256::digest(data).into();
    let d = Directive {
        kind: HandlerKind::Process,
        transfer_id,
        url,
        mirrors: mirrors.iter().copied().collect(),
        handler,
        metadata: Metadata {
            size: Some(data.len() as u64),
            sha256: Some(sha),
            content_type: Some("application/octet-stream"),
        },
        options,
    };
    let mut buf = vec![0u8; 4096];
    let n = d.encode(&mut buf).expect("directive fits");
    buf.truncate(n);
    buf
}

/// True when the payload's bytes contain `text` (CBOR keeps text strings verbatim).
pub fn says(payload: &PayloadBuf, text: &str) -> bool {
    let bytes = match payload {
        PayloadBuf::Value(b) | PayloadBuf::Bytes(b) => b.as_slice(),
        _ => return false,
    };
    bytes.windows(text.len()).any(|w| w == text.as_bytes())
}

/// The status and report of a completed directive; panics on any other outcome.
pub fn status_of(outcome: &RequestOutcome) -> (Status, PayloadBuf) {
    match outcome {
        RequestOutcome::Completed { status, payload } => (*status, payload.clone()),
        other => panic!("the directive did not complete: {other:?}"),
    }
}

/// Names of the `.part` files in `dir`.
pub fn part_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".part"))
                .collect()
        })
        .unwrap_or_default()
}

/// A corrupt mirror serving same-size bytes under the same name.
pub fn corrupt_copy(root: &Path, sha: &str, data: &[u8]) {
    let mut bad = data.to_vec();
    let i = bad.len() / 3;
    bad[i] ^= 0x40;
    std::fs::write(blob_server::blob_dir(root).join(sha), bad).expect("write corrupt copy");
}
