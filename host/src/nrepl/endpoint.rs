//! The TCP side: the listener, one task per editor connection (reader, writer), the port
//! file and the sweep of idle sessions.

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::Inner;
use super::bencode::{Framer, encode};
use super::proxy::Editor;
use crate::registry::lock;

/// Responses queued towards one editor before forwarding waits.
const OUTBOX: usize = 256;

/// The running endpoint. Dropping it does not stop it; call [`NreplEndpoint::shutdown`].
#[derive(Debug)]
pub struct NreplEndpoint {
    local_addr: SocketAddr,
    stop: CancellationToken,
    port_file: Option<std::path::PathBuf>,
}

impl NreplEndpoint {
    /// Where editors connect.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The line nREPL servers print on start, which editors and `jack-in` look for.
    pub fn banner(&self) -> String {
        let (host, port) = (self.local_addr.ip(), self.local_addr.port());
        format!("nREPL server started on port {port} on host {host} - nrepl://{host}:{port}")
    }

    /// Stops listening, ends every editor connection and removes the port file.
    pub fn shutdown(&self) {
        self.stop.cancel();
        if let Some(path) = &self.port_file {
            let _ = std::fs::remove_file(path);
        }
    }
}

pub(super) async fn start(inner: Arc<Inner>) -> std::io::Result<NreplEndpoint> {
    let listener = TcpListener::bind(inner.options.listen).await?;
    let local_addr = listener.local_addr()?;
    if let Some(path) = &inner.options.port_file {
        std::fs::write(path, local_addr.port().to_string())?;
    }
    let stop = CancellationToken::new();
    tokio::spawn(accept_loop(inner.clone(), listener, stop.clone()));
    tokio::spawn(sweep(inner.clone(), stop.clone()));
    Ok(NreplEndpoint {
        local_addr,
        stop,
        port_file: inner.options.port_file.clone(),
    })
}

async fn accept_loop(inner: Arc<Inner>, listener: TcpListener, stop: CancellationToken) {
    let slots = Arc::new(Semaphore::new(inner.options.max_connections));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => match slots.clone().try_acquire_owned() {
                    Ok(slot) => {
                        tracing::info!(%remote, "nREPL editor connected");
                        tokio::spawn(serve(inner.clone(), stream, stop.child_token(), slot));
                    }
                    Err(_) => {
                        tracing::warn!(%remote, limit = inner.options.max_connections, "nREPL editor refused: too many connections");
                        tokio::spawn(refuse(stream, inner.options.max_connections));
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "nREPL accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// Closes idle sessions once a minute (or sooner for short time-to-lives).
async fn sweep(inner: Arc<Inner>, stop: CancellationToken) {
    let every = (inner.options.session_ttl / 4).clamp(
        std::time::Duration::from_millis(50),
        std::time::Duration::from_secs(60),
    );
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {
                let closed = lock(&inner.sessions).expire(inner.options.session_ttl);
                if closed > 0 {
                    tracing::info!(closed, "idle nREPL sessions closed");
                }
            }
        }
    }
}

/// Tells an editor past the connection limit why, then closes (bounded: an editor that does
/// not read is not waited for).
async fn refuse(mut stream: TcpStream, limit: usize) {
    let mut message = Map::new();
    message.insert(
        "err".into(),
        json!(format!(
            "the host takes at most {limit} nREPL connections at once\n"
        )),
    );
    message.insert(
        "status".into(),
        json!(["done", "error", "too-many-connections"]),
    );
    let write = async {
        stream.write_all(&encode(&message)).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), write).await;
}

/// One editor connection: reads messages, hands them to the proxy, writes what comes back.
/// `_slot` is its place under the connection limit, given back when it ends.
async fn serve(
    inner: Arc<Inner>,
    stream: TcpStream,
    stop: CancellationToken,
    _slot: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let (out, mut outbox) = mpsc::channel::<Map<String, Value>>(OUTBOX);
    let write_task = tokio::spawn(async move {
        while let Some(message) = outbox.recv().await {
            if writer.write_all(&encode(&message)).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    let mut editor = Editor::new(inner.clone(), out.clone(), stop.clone());
    let mut framer = Framer::new(inner.options.max_message_bytes);
    let mut buf = vec![0u8; 16 * 1024];
    'read: loop {
        let n = tokio::select! {
            () = stop.cancelled() => break,
            read = reader.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
        };
        framer.push(&buf[..n]);
        loop {
            match framer.next_message() {
                Ok(Some(message)) => editor.handle(message).await,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "nREPL editor sent bad bencode; closing");
                    let mut report = Map::new();
                    report.insert("err".into(), json!(format!("{e}\n")));
                    report.insert("status".into(), json!(["error", "bad-message"]));
                    let _ = out.send(report).await;
                    break 'read;
                }
            }
        }
    }
    // Everything this editor had in flight stops; its sessions stay for a reconnect.
    stop.cancel();
    drop(editor);
    drop(out);
    let _ = write_task.await;
    tracing::info!("nREPL editor disconnected");
}
