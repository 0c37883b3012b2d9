//! A raw text-dialect client for the dialect tests: tokio-tungstenite text frames, and their
//! content read back through the host's own translation (EDN or JSON to a JSON value, where
//! keywords lose their colon), so assertions compare content, not spelling.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::STEP;

/// An EDN text as a JSON value (keywords become their text without the colon).
pub fn edn(text: &str) -> Value {
    let cbor = sentelite_host::translate::edn_to_cbor(text)
        .unwrap_or_else(|e| panic!("not EDN: {text}: {e}"));
    sentelite_host::translate::cbor_to_json(&cbor).expect("translates")
}

/// A JSON text as a JSON value.
pub fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON: {text}: {e}"))
}

/// What a text client read.
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    Text(String),
    Binary(Vec<u8>),
    Close(u16, String),
    /// The connection ended without a close frame.
    Gone,
}

pub struct TextPeer {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl TextPeer {
    /// Opens `ws://addr/ws{query}` (`query` empty or starting with `?`).
    pub async fn connect(addr: SocketAddr, query: &str) -> Self {
        Self::connect_with(addr, query, None).await
    }

    /// Like [`Self::connect`], with an `Authorization` header.
    pub async fn connect_with(addr: SocketAddr, query: &str, authorization: Option<&str>) -> Self {
        let mut request = format!("ws://{addr}/ws{query}")
            .into_client_request()
            .unwrap();
        if let Some(value) = authorization {
            request
                .headers_mut()
                .insert("authorization", value.parse().unwrap());
        }
        let (ws, _) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(request))
            .await
            .expect("connect in time")
            .expect("websocket connects");
        Self { ws }
    }

    pub async fn send(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    pub async fn send_binary(&mut self, bytes: &[u8]) {
        self.ws
            .send(Message::Binary(bytes.to_vec().into()))
            .await
            .expect("send");
    }

    /// The next data message or the end, within `limit`; `None` when nothing came.
    pub async fn hear_within(&mut self, limit: Duration) -> Option<Heard> {
        tokio::time::timeout(limit, async {
            loop {
                return match self.ws.next().await {
                    Some(Ok(Message::Text(t))) => Heard::Text(t.as_str().to_owned()),
                    Some(Ok(Message::Binary(b))) => Heard::Binary(b.to_vec()),
                    Some(Ok(Message::Close(f))) => f
                        .map_or(Heard::Close(1005, String::new()), |f| {
                            Heard::Close(u16::from(f.code), f.reason.as_str().to_owned())
                        }),
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => Heard::Gone,
                };
            }
        })
        .await
        .ok()
    }

    /// The next text message; panics on anything else or after [`STEP`].
    pub async fn text(&mut self) -> String {
        match self.hear_within(STEP).await {
            Some(Heard::Text(t)) => t,
            other => panic!("expected a text message, got {other:?}"),
        }
    }

    /// The next text message for which `keep` is true, skipping others (server pings).
    pub async fn text_where(&mut self, mut keep: impl FnMut(&str) -> bool) -> String {
        tokio::time::timeout(STEP, async {
            loop {
                let t = self.text().await;
                if keep(&t) {
                    return t;
                }
            }
        })
        .await
        .expect("the awaited text message in time")
    }

    /// Reads until the server's close frame, skipping data messages (a native connection
    /// sends its own Close frame first); returns its code and reason.
    pub async fn close_frame(&mut self) -> (u16, String) {
        tokio::time::timeout(STEP, async {
            loop {
                match self.hear_within(STEP).await {
                    Some(Heard::Text(_) | Heard::Binary(_)) => continue,
                    Some(Heard::Close(code, reason)) => return (code, reason),
                    other => panic!("expected a close frame, got {other:?}"),
                }
            }
        })
        .await
        .expect("closed in time")
    }

    /// Closes from the client side and waits for the server's answer.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        let _ = tokio::time::timeout(STEP, async { while self.ws.next().await.is_some() {} }).await;
    }
}

/// The payloads a test handler was given, one per event, in arrival order.
pub struct Noted(tokio::sync::mpsc::UnboundedReceiver<sentelite_core::frame::PayloadBuf>);

impl Noted {
    /// The next payload as JSON; it must arrive within [`STEP`] and be a Value (CBOR) payload.
    pub async fn next_json(&mut self) -> Value {
        let payload = tokio::time::timeout(STEP, self.0.recv())
            .await
            .expect("a handled event in time")
            .expect("the handler is alive");
        let sentelite_core::frame::PayloadBuf::Value(cbor) = &payload else {
            panic!("a Value payload, got {payload:?}");
        };
        sentelite_host::translate::cbor_to_json(cbor).expect("the payload translates")
    }
}

/// A server whose handler of `event` hands each event's payload to the returned [`Noted`].
pub async fn server_noting(event: &'static str) -> (sentelite_host::Server, super::TempDir, Noted) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let builder = sentelite_host::Server::builder()
        .config(super::quick_settings())
        .on_event(event, move |ctx| {
            let _ = tx.send(ctx.payload.clone());
            async {}
        });
    let (server, dir) = super::start_with(builder).await;
    (server, dir, Noted(rx))
}
