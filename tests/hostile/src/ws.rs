//! A WebSocket peer driven by hand: it upgrades from a chosen source address with chosen
//! headers, sends native frames (or any bytes) one message at a time, never answers unless
//! told to, and reports exactly how the server closed it.

use std::net::IpAddr;
use std::time::Duration;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::protocol::Role;
use futures_util::{SinkExt, StreamExt};
use sentelite_core::codec::{self, EncodeError};
use sentelite_core::frame::{CloseCode, Frame, Hello, Status};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

use crate::http::{self, Response};

/// The WebSocket stream of a [`Peer`].
pub type Ws = WebSocketStream<Compat<TcpStream>>;

/// Encodes a native frame into a buffer of exactly its size.
pub fn encode(frame: &Frame<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; codec::encoded_len(frame)];
    match codec::encode(frame, &mut buf) {
        Ok(n) => {
            buf.truncate(n);
            buf
        }
        Err(EncodeError::BufferTooSmall { required }) => panic!("frame needs {required} bytes"),
        Err(e) => panic!("frame not encoded: {e}"),
    }
}

/// The fields of a Hello, owned, so tests can make them as long or as wrong as they like.
#[derive(Debug, Clone)]
pub struct HelloFields {
    /// `client_id`.
    pub client_id: String,
    /// `boot_id`.
    pub boot_id: u32,
    /// `token`.
    pub token: Option<String>,
    /// `capabilities` bit set.
    pub capabilities: u32,
    /// `max_frame` this peer claims to accept.
    pub max_frame: u32,
    /// `firmware`.
    pub firmware: Option<String>,
}

impl HelloFields {
    /// A plain Hello for `client_id`: boot id 1, no token, no capabilities.
    pub fn new(client_id: &str) -> Self {
        Self {
            client_id: client_id.to_owned(),
            boot_id: 1,
            token: None,
            capabilities: 0,
            max_frame: 65_536,
            firmware: None,
        }
    }

    /// The Hello frame borrowing these fields.
    pub fn frame(&self) -> Frame<'_> {
        Frame::Hello(Hello {
            client_id: &self.client_id,
            boot_id: self.boot_id,
            token: self.token.as_deref(),
            capabilities: self.capabilities,
            max_frame: self.max_frame,
            firmware: self.firmware.as_deref(),
        })
    }
}

/// How the server ended a connection.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ending {
    /// Code of the native Close frame, if one arrived before the WebSocket close.
    pub frame_code: Option<CloseCode>,
    /// Code of the WebSocket close message, if one arrived.
    pub websocket_code: Option<u16>,
}

/// The server's answer to a Hello.
#[derive(Debug)]
pub enum HelloAnswer {
    /// Accepted: the server's uid for this client.
    Welcome {
        /// uid from the Welcome.
        uid: String,
    },
    /// Refused: how the connection ended.
    Refused(Ending),
}

/// One native frame the server sent, kept as bytes (decode with [`codec::decode`]).
pub type FrameBytes = Vec<u8>;

/// A hand-driven WebSocket connection to the server.
pub struct Peer {
    /// The WebSocket stream, for tests that need to send something unusual.
    pub ws: Ws,
}

impl Peer {
    /// Upgrades a TCP connection from `source` (default address when `None`) with an
    /// optional `Origin` header. Returns the server's HTTP answer when it did not upgrade.
    pub async fn open_from(
        source: Option<IpAddr>,
        addr: &str,
        origin: Option<&str>,
    ) -> Result<Peer, Option<Response>> {
        let mut stream = http::connect_from(source, addr).await.map_err(|_| None)?;
        match http::upgrade(&mut stream, origin).await {
            Some(response) if response.status == 101 => Ok(Peer::over(stream).await),
            other => Err(other),
        }
    }

    /// Upgrades a fresh connection to `target` (`/ws?dialect=json`, say); panics if refused.
    pub async fn open_at(addr: &str, target: &str) -> Peer {
        let mut stream = http::connect(addr).await;
        match http::upgrade_to(&mut stream, target, None).await {
            Some(response) if response.status == 101 => Peer::over(stream).await,
            other => panic!("websocket upgrade to {target} refused: {other:?}"),
        }
    }

    /// Upgrades a fresh connection from the default address; panics if refused.
    pub async fn open(addr: &str) -> Peer {
        match Peer::open_from(None, addr, None).await {
            Ok(peer) => peer,
            Err(answer) => panic!("websocket upgrade refused: {answer:?}"),
        }
    }

    /// Speaks WebSocket (as the client) on a stream whose upgrade already succeeded.
    pub async fn over(stream: TcpStream) -> Peer {
        let ws = WebSocketStream::from_raw_socket(stream.compat(), Role::Client, None).await;
        Peer { ws }
    }

    /// Opens a connection and sends `hello`; returns the peer and the server's answer.
    pub async fn handshake(addr: &str, hello: &HelloFields) -> (Peer, HelloAnswer) {
        let mut peer = Peer::open(addr).await;
        peer.send_frame(&hello.frame()).await;
        let answer = peer.hello_answer().await;
        (peer, answer)
    }

    /// Opens a connection that must be welcomed.
    pub async fn welcomed(addr: &str, hello: &HelloFields) -> Peer {
        match Peer::handshake(addr, hello).await {
            (peer, HelloAnswer::Welcome { .. }) => peer,
            (_, HelloAnswer::Refused(ending)) => {
                panic!("hello of {:?} refused: {ending:?}", hello.client_id)
            }
        }
    }

    /// Sends one native frame as one binary message.
    pub async fn send_frame(&mut self, frame: &Frame<'_>) {
        self.send_bytes(encode(frame)).await;
    }

    /// Sends one binary message as is.
    pub async fn send_bytes(&mut self, bytes: Vec<u8>) {
        self.ws
            .send(Message::binary(bytes))
            .await
            .expect("send websocket message");
    }

    /// Sends one text message (a text dialect's frame); `false` once the connection is gone.
    pub async fn send_text(&mut self, text: impl Into<String>) -> bool {
        self.ws.send(Message::text(text.into())).await.is_ok()
    }

    /// Queues one text message without flushing; `false` once the connection is gone.
    pub async fn feed_text(&mut self, text: impl Into<String>) -> bool {
        self.ws.feed(Message::text(text.into())).await.is_ok()
    }

    /// Queues one binary message without flushing (flush with [`Peer::flush`]).
    pub async fn feed_bytes(&mut self, bytes: Vec<u8>) -> bool {
        self.ws.feed(Message::binary(bytes)).await.is_ok()
    }

    /// Flushes queued messages.
    pub async fn flush(&mut self) -> bool {
        self.ws.flush().await.is_ok()
    }

    /// The next native frame from the server, or `None` when the connection ended (or
    /// nothing came within `limit`).
    pub async fn next_frame(&mut self, limit: Duration) -> Option<FrameBytes> {
        let next = async {
            while let Some(Ok(message)) = self.ws.next().await {
                if let Message::Binary(bytes) = message {
                    return Some(bytes.to_vec());
                }
            }
            None
        };
        tokio::time::timeout(limit, next).await.ok().flatten()
    }

    /// The next text message from the server, or `None` when the connection ended (or
    /// nothing came within `limit`).
    pub async fn next_text(&mut self, limit: Duration) -> Option<String> {
        let next = async {
            while let Some(Ok(message)) = self.ws.next().await {
                if let Message::Text(text) = message {
                    return Some(text.as_str().to_owned());
                }
            }
            None
        };
        tokio::time::timeout(limit, next).await.ok().flatten()
    }

    /// Reads the server's answer to a Hello just sent.
    pub async fn hello_answer(&mut self) -> HelloAnswer {
        let Some(bytes) = self.next_frame(Duration::from_secs(10)).await else {
            return HelloAnswer::Refused(self.rest_of_ending().await);
        };
        match codec::decode(&bytes) {
            Ok(Frame::Welcome(welcome)) => HelloAnswer::Welcome {
                uid: welcome.uid.to_owned(),
            },
            Ok(Frame::Close(close)) => {
                let mut ending = self.rest_of_ending().await;
                ending.frame_code = Some(close.code);
                HelloAnswer::Refused(ending)
            }
            other => panic!("expected a welcome or a close, got {other:?}"),
        }
    }

    /// Reads until the server closes; panics if it has not within `limit`.
    pub async fn ending(mut self, limit: Duration) -> Ending {
        let ending = async {
            let mut ending = Ending::default();
            while let Some(Ok(message)) = self.ws.next().await {
                match message {
                    Message::Binary(bytes) => {
                        if let Ok(Frame::Close(close)) = codec::decode(&bytes) {
                            ending.frame_code = Some(close.code);
                        }
                    }
                    Message::Close(frame) => {
                        ending.websocket_code = frame.map(|f| u16::from(f.code));
                        break;
                    }
                    _ => {}
                }
            }
            ending
        };
        crate::within(limit, "the server to close the connection", ending).await
    }

    async fn rest_of_ending(&mut self) -> Ending {
        let rest = async {
            let mut ending = Ending::default();
            while let Some(Ok(message)) = self.ws.next().await {
                if let Message::Close(frame) = message {
                    ending.websocket_code = frame.map(|f| u16::from(f.code));
                    break;
                }
            }
            ending
        };
        tokio::time::timeout(Duration::from_secs(10), rest)
            .await
            .unwrap_or_default()
    }
}

/// The id and status of an End frame, if `bytes` is one.
pub fn end_status(bytes: &[u8]) -> Option<(u32, Status)> {
    match codec::decode(bytes) {
        Ok(Frame::End(end)) => Some((end.id, end.status)),
        _ => None,
    }
}

/// Wire tag of a native frame (the byte after the version), readable even for frame kinds
/// this build cannot decode.
pub fn frame_tag(bytes: &[u8]) -> Option<u8> {
    bytes.get(1).copied()
}
