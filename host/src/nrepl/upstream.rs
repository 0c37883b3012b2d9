//! The reverse direction: a client asks the host to evaluate (`nrepl/browser-request`), and
//! the host forwards the nREPL message to a configured upstream nREPL server (a real Clojure
//! or basilisp nREPL) and streams its responses back.
//!
//! Each request gets its own TCP connection to the upstream, closed once a response with
//! `done` arrives: nREPL sessions live in the server, not the connection, so a client that
//! cloned a session keeps using it across requests.

use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::bencode::{Framer, encode};
use super::wire::{failure, is_done};

/// Longest wait for the upstream's TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Responses buffered towards the client.
const RESPONSES: usize = 64;

/// Sends `message` to the nREPL server at `addr` and streams the responses to it (same
/// `id`) until one is `done`. Every failure — no upstream, refused, cut, too slow — ends the
/// stream with an `err` and `["done","error"]` response, so the client's request always
/// ends.
pub(super) fn forward(
    addr: Option<String>,
    mut message: Map<String, Value>,
    max_message_bytes: usize,
    timeout: Duration,
) -> mpsc::Receiver<Map<String, Value>> {
    static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    if !message.get("id").is_some_and(Value::is_string) {
        let n = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        message.insert("id".into(), json!(format!("sentelite-up-{n}")));
    }
    let (tx, rx) = mpsc::channel(RESPONSES);
    tokio::spawn(async move {
        let result = match addr {
            None => Err("no upstream nREPL server is configured (--nrepl-upstream)".to_owned()),
            Some(addr) => match tokio::time::timeout(
                timeout,
                exchange(&addr, &message, max_message_bytes, &tx),
            )
            .await
            {
                Ok(result) => result,
                Err(_) => Err(format!(
                    "the upstream nREPL server at {addr} took longer than {timeout:?}"
                )),
            },
        };
        if let Err(why) = result {
            tracing::info!(%why, "upstream nREPL request failed");
            let _ = tx.send(failure(&message, &why, &[])).await;
        }
    });
    rx
}

async fn exchange(
    addr: &str,
    message: &Map<String, Value>,
    max_message_bytes: usize,
    tx: &mpsc::Sender<Map<String, Value>>,
) -> Result<(), String> {
    let mut stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| format!("no connection to the upstream nREPL server at {addr} in time"))?
        .map_err(|e| format!("cannot reach the upstream nREPL server at {addr}: {e}"))?;
    stream
        .write_all(&encode(message))
        .await
        .map_err(|e| format!("upstream write failed: {e}"))?;
    let id = message.get("id").cloned();
    let mut framer = Framer::new(max_message_bytes);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while let Some(response) = framer
            .next_message()
            .map_err(|e| format!("the upstream sent bad bencode: {e}"))?
        {
            if response.get("id") != id.as_ref() {
                continue;
            }
            let done = is_done(&response);
            if tx.send(response).await.is_err() || done {
                return Ok(());
            }
        }
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("upstream read failed: {e}"))?;
        if n == 0 {
            return Err("the upstream nREPL server closed the connection before done".into());
        }
        framer.push(&buf[..n]);
    }
}
