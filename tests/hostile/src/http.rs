//! Raw TCP and HTTP/1.1 as an attacker writes it: sockets from a chosen source address,
//! requests cut short or never sent, and the server's answer read byte by byte.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Opens a TCP connection to `addr` (`127.0.0.1:PORT`), from `source` when given (any
/// `127.x.y.z` is local on Linux, so one machine can play several client addresses).
pub async fn connect_from(source: Option<IpAddr>, addr: &str) -> std::io::Result<TcpStream> {
    let addr: SocketAddr = addr.parse().expect("server address");
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    socket.connect(addr).await
}

/// Opens a TCP connection to `addr` whose receive buffer is only `bytes` large, so a peer
/// that never reads pushes back on the server after little data.
pub async fn connect_with_receive_buffer(addr: &str, bytes: u32) -> TcpStream {
    let addr: SocketAddr = addr.parse().expect("server address");
    let socket = TcpSocket::new_v4().expect("tcp socket");
    socket
        .set_recv_buffer_size(bytes)
        .expect("set receive buffer size");
    socket.connect(addr).await.expect("tcp connect")
}

/// Opens a TCP connection to `addr` from the default source address.
pub async fn connect(addr: &str) -> TcpStream {
    connect_from(None, addr).await.expect("tcp connect")
}

/// Reads and discards until the server closes the connection (end of stream or reset).
/// Returns the time from `since` to the close, or `None` if it was still open at `since +
/// limit`.
pub async fn closed_after(
    stream: &mut TcpStream,
    since: Instant,
    limit: Duration,
) -> Option<Duration> {
    let deadline = tokio::time::Instant::from_std(since + limit);
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(since.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// An HTTP response head and body as received.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code of the status line.
    pub status: u16,
    /// The head, status line and headers, as text.
    pub head: String,
    /// The body (read up to its `Content-Length`; empty when there is none).
    pub body: Vec<u8>,
}

/// Reads one response: the head up to the blank line, then `Content-Length` bytes of body.
/// `None` if the connection ends first.
pub async fn read_response(stream: &mut TcpStream) -> Option<Response> {
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    while !bytes.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        bytes.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&bytes).into_owned();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.ok()?;
    Some(Response { status, head, body })
}

/// `GET /health`, keeping the connection open afterwards (HTTP/1.1 keep-alive).
pub async fn get_health_keep_alive(stream: &mut TcpStream) -> Option<Response> {
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: sentelite\r\n\r\n")
        .await
        .ok()?;
    read_response(stream).await
}

/// Whether `/health` answers `200 ok` on a fresh connection within `limit`.
pub async fn health_ok(addr: &str, limit: Duration) -> bool {
    let probe = async {
        let mut stream = connect_from(None, addr).await.ok()?;
        let response = get_health_keep_alive(&mut stream).await?;
        Some(response.status == 200 && response.body == b"ok")
    };
    matches!(tokio::time::timeout(limit, probe).await, Ok(Some(true)))
}

/// A WebSocket upgrade request for `/ws`, with an `Origin` header when given.
pub fn upgrade_request(origin: Option<&str>) -> String {
    upgrade_request_to("/ws", origin)
}

/// A WebSocket upgrade request for `target` (`/ws?dialect=native`, say).
pub fn upgrade_request_to(target: &str, origin: Option<&str>) -> String {
    let mut request = format!(
        "GET {target} HTTP/1.1\r\nHost: sentelite\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
    );
    if let Some(origin) = origin {
        request.push_str(&format!("Origin: {origin}\r\n"));
    }
    request.push_str("\r\n");
    request
}

/// Sends a WebSocket upgrade request and returns the server's answer (101 when upgraded;
/// the socket then speaks WebSocket).
pub async fn upgrade(stream: &mut TcpStream, origin: Option<&str>) -> Option<Response> {
    upgrade_to(stream, "/ws", origin).await
}

/// Like [`upgrade`], for `target`.
pub async fn upgrade_to(
    stream: &mut TcpStream,
    target: &str,
    origin: Option<&str>,
) -> Option<Response> {
    stream
        .write_all(upgrade_request_to(target, origin).as_bytes())
        .await
        .ok()?;
    read_response(stream).await
}
