//! A bare WebSocket peer that speaks frames by hand, for sending what a well-behaved client
//! never would (oversize and malformed frames) and reading exactly how the server closes.

use async_net::TcpStream;
use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::Message;
use futures_util::StreamExt;
use sentelite_core::codec;
use sentelite_core::frame::{CloseCode, Frame, Hello};

use crate::wait::within;
use std::time::Duration;

/// A raw connection after a completed handshake.
pub struct RawPeer {
    ws: WebSocketStream<TcpStream>,
    /// The server's `max_frame` from the Welcome.
    pub server_max_frame: usize,
}

/// How the server ended a raw connection.
#[derive(Debug, Default)]
pub struct Ending {
    /// Code of the protocol Close frame, if one arrived before the WebSocket close.
    pub frame_code: Option<CloseCode>,
    /// WebSocket close code, if the server sent a close message.
    pub websocket_code: Option<u16>,
}

impl RawPeer {
    /// Connects to `addr` (`127.0.0.1:PORT`), sends Hello and waits for Welcome.
    pub async fn handshake(addr: &str, client_id: &str) -> RawPeer {
        let stream = TcpStream::connect(addr).await.expect("tcp connect");
        let url = format!("ws://{addr}/ws");
        let (mut ws, _) = async_tungstenite::client_async(url, stream)
            .await
            .expect("websocket handshake");
        let hello = Frame::Hello(Hello {
            client_id,
            boot_id: 1,
            token: None,
            capabilities: 0,
            max_frame: 65_536,
            firmware: None,
        });
        let mut buf = [0u8; 256];
        let n = codec::encode(&hello, &mut buf).expect("encode hello");
        ws.send(Message::binary(buf[..n].to_vec()))
            .await
            .expect("send hello");
        let reply = within(Duration::from_secs(10), "welcome", ws.next())
            .await
            .expect("connection open")
            .expect("welcome message");
        let bytes = reply.into_data();
        let server_max_frame = match codec::decode(&bytes) {
            Ok(Frame::Welcome(w)) => w.max_frame as usize,
            other => panic!("expected a welcome, got {other:?}"),
        };
        RawPeer {
            ws,
            server_max_frame,
        }
    }

    /// Sends one binary WebSocket message as is.
    pub async fn send_raw(&mut self, bytes: Vec<u8>) {
        self.ws
            .send(Message::binary(bytes))
            .await
            .expect("send raw message");
    }

    /// Reads until the server closes; reports the Close frame and WebSocket close code.
    pub async fn ending(mut self) -> Ending {
        within(Duration::from_secs(10), "the server to close", async {
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
        })
        .await
    }
}
