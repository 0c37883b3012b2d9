//! Native-protocol WebSocket clients built from the core's codec on tokio-tungstenite, for the
//! benches that need many plain connections: a real Hello/Welcome handshake, pre-encoded
//! frames, and a request whose answer proves the server read everything sent before it.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use sentelite_core::frame::{Event, Frame, Hello, Request};
use sentelite_core::{Payload, Status};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A client's WebSocket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a handshake or a confirmation may take.
const STEP: Duration = Duration::from_secs(30);

/// A plain WebSocket to `url` (Nagle off, as the driver's own connections).
pub async fn connect(url: &str) -> Result<Ws, String> {
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
        .await
        .map_err(|e| format!("connect {url}: {e}"))?;
    Ok(ws)
}

/// A WebSocket to `url` over `stream`, with small buffers: thousands of these stay open.
pub async fn connect_over(
    url: &str,
    stream: TcpStream,
) -> Result<WebSocketStream<TcpStream>, String> {
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
        .await
        .map_err(|e| format!("connect {url}: {e}"))?;
    Ok(ws)
}

/// Sends the Hello of `client_id` and waits for the Welcome.
pub async fn handshake<S>(ws: &mut WebSocketStream<S>, client_id: &str) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let hello = Frame::Hello(Hello {
        client_id,
        boot_id: 1,
        token: None,
        capabilities: 0,
        max_frame: 64 * 1024,
        firmware: None,
    });
    send(ws, &hello).await?;
    let deadline = Instant::now() + STEP;
    loop {
        let bytes = next_binary(ws, deadline).await?;
        match sentelite_core::decode(&bytes) {
            Ok(Frame::Welcome(_)) => return Ok(()),
            Ok(Frame::Close(close)) => return Err(format!("refused: {close:?}")),
            _ => {}
        }
    }
}

/// A native Event frame of exactly `bytes` bytes (`bench/sample` with filler bytes).
pub fn event_frame(bytes: usize) -> Result<Vec<u8>, String> {
    let encode = |filler: &[u8]| {
        to_vec(&Frame::Event(Event {
            event: "bench/sample",
            payload: Payload::Bytes(filler),
        }))
    };
    let empty = encode(&[])?;
    // The filler's length prefix grows by a byte at 128, so try the nearest lengths.
    let base = bytes.checked_sub(empty.len()).ok_or_else(|| {
        format!(
            "--frame-bytes {bytes} is below the smallest event frame ({})",
            empty.len()
        )
    })?;
    for filler in [base, base.saturating_sub(1), base.saturating_sub(2)] {
        let frame = encode(&vec![0x5a; filler])?;
        if frame.len() == bytes {
            return Ok(frame);
        }
    }
    Err(format!("no event frame of exactly {bytes} bytes"))
}

/// Sends a `sentelite/echo` request and waits for its End: the server handles a connection's
/// frames in order, so the answer proves it read every frame sent before the request.
pub async fn confirm(ws: &mut Ws) -> Result<(), String> {
    let request = Frame::Request(Request {
        id: 1,
        event: sentelite_host::builtin::ECHO,
        timeout_ms: 30_000,
        payload: Payload::Empty,
    });
    send(ws, &request).await?;
    let deadline = Instant::now() + STEP;
    loop {
        let bytes = next_binary(ws, deadline).await?;
        match sentelite_core::decode(&bytes) {
            Ok(Frame::End(end)) if end.id == 1 && end.status == Status::OK => return Ok(()),
            Ok(Frame::End(end)) => return Err(format!("echo ended {:?}", end.status)),
            Ok(Frame::Close(close)) => return Err(format!("closed: {close:?}")),
            _ => {}
        }
    }
}

async fn send<S>(ws: &mut WebSocketStream<S>, frame: &Frame<'_>) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let bytes = to_vec(frame)?;
    ws.send(Message::Binary(bytes.into()))
        .await
        .map_err(|e| e.to_string())
}

/// The next binary message, before `deadline`.
async fn next_binary<S>(ws: &mut WebSocketStream<S>, deadline: Instant) -> Result<Vec<u8>, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let next = tokio::time::timeout_at(deadline.into(), ws.next())
            .await
            .map_err(|_| "no answer within 30 s".to_owned())?;
        match next {
            Some(Ok(Message::Binary(bytes))) => return Ok(bytes.to_vec()),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("connection closed".into()),
        }
    }
}

/// `frame` encoded.
pub fn to_vec(frame: &Frame<'_>) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; sentelite_core::codec::encoded_len(frame)];
    let n = sentelite_core::encode(frame, &mut buf).map_err(|e| format!("{e:?}"))?;
    buf.truncate(n);
    Ok(buf)
}
