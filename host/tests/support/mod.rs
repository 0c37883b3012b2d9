//! A minimal native-protocol client for the server tests: tokio-tungstenite for the socket,
//! `sentelite_core::ClientSession` for the protocol, and owned copies of what arrives.
#![allow(dead_code)]

pub mod cli;
pub mod lsp;
pub mod text;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sentelite_core::frame::{Frame, Payload, PayloadBuf, SubscribeError};
use sentelite_core::{ClientConfig, ClientSession, CloseCode, Instant, RequestId, Status};
use sentelite_host::{LifecycleEvent, Server, ServerSettings};
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Upper bound for any single wait in a test; a broken server fails instead of hanging.
pub const STEP: Duration = Duration::from_secs(5);

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("sentelite-host-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Settings with short timings, for tests.
pub fn quick_settings() -> ServerSettings {
    ServerSettings {
        close_linger_ms: 200,
        ..ServerSettings::default()
    }
}

/// Starts a server on an ephemeral loopback port.
pub async fn start(settings: ServerSettings) -> (Server, TempDir) {
    start_with(Server::builder().config(settings)).await
}

/// Starts a configured builder on an ephemeral loopback port.
pub async fn start_with(builder: sentelite_host::ServerBuilder) -> (Server, TempDir) {
    let dir = TempDir::new("data");
    let server = builder
        .listen("127.0.0.1:0")
        .data_dir(&dir.0)
        .bind()
        .await
        .expect("server binds");
    (server, dir)
}

/// The built `sentelite` binary with `args`, quiet logging, no stdin and both outputs piped.
pub fn sentelite(args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sentelite"));
    cmd.args(args)
        .env("SENTELITE_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd
}

/// A server on loopback with a blob service over its own data directory (`tag` names it),
/// fast settings, and the service's base URL set to the server's address.
pub async fn start_with_blobs(
    tag: &str,
    settings: sentelite_host::blob::BlobSettings,
) -> (Server, sentelite_host::blob::BlobService, TempDir) {
    let dir = TempDir::new(tag);
    let blobs = sentelite_host::blob::BlobService::start(&dir.0, &settings).expect("blob store");
    let (server, data) = start_with(
        Server::builder()
            .config(quick_settings())
            .with_blobs(blobs.clone()),
    )
    .await;
    drop(data);
    blobs.set_base_url(&format!("http://{}", server.local_addr()));
    (server, blobs, dir)
}

/// Waits for the first lifecycle event matching `pred`.
pub async fn wait_lifecycle(
    rx: &mut broadcast::Receiver<LifecycleEvent>,
    mut pred: impl FnMut(&LifecycleEvent) -> bool,
) -> LifecycleEvent {
    tokio::time::timeout(STEP, async {
        loop {
            let event = rx.recv().await.expect("lifecycle channel open");
            if pred(&event) {
                return event;
            }
        }
    })
    .await
    .expect("lifecycle event in time")
}

/// What a test client received, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Got {
    Welcome {
        uid: String,
        connection_id: u64,
        heartbeat_ms: u32,
        heartbeat_timeout_ms: u32,
        max_frame: u32,
        max_pending: u16,
        max_subscriptions: u16,
    },
    Event {
        event: String,
        payload: PayloadBuf,
    },
    Request {
        id: RequestId,
        event: String,
        payload: PayloadBuf,
    },
    Reply {
        id: RequestId,
        seq: u32,
        payload: PayloadBuf,
    },
    End {
        id: RequestId,
        status: Status,
        payload: PayloadBuf,
    },
    ChannelMsg {
        channel: String,
        from: String,
        payload: PayloadBuf,
    },
    SubscribeAck {
        channel: String,
        subscribed: bool,
        error: SubscribeError,
    },
    Cancel {
        id: RequestId,
    },
    PublishDropped {
        channel: String,
        dropped: u32,
    },
    /// The server's native Close frame.
    Close {
        code: CloseCode,
        reason: String,
    },
    /// The WebSocket close; the connection is over.
    WsClose {
        code: u16,
        reason: String,
    },
}

fn owned(frame: Frame<'_>) -> Option<Got> {
    Some(match frame {
        Frame::Welcome(w) => Got::Welcome {
            uid: w.uid.to_owned(),
            connection_id: w.connection_id,
            heartbeat_ms: w.heartbeat_ms,
            heartbeat_timeout_ms: w.heartbeat_timeout_ms,
            max_frame: w.max_frame,
            max_pending: w.max_pending,
            max_subscriptions: w.max_subscriptions,
        },
        Frame::Event(e) => Got::Event {
            event: e.event.to_owned(),
            payload: e.payload.into(),
        },
        Frame::Request(r) => Got::Request {
            id: r.id,
            event: r.event.to_owned(),
            payload: r.payload.into(),
        },
        Frame::Reply(r) => Got::Reply {
            id: r.id,
            seq: r.seq,
            payload: r.payload.into(),
        },
        Frame::End(e) => Got::End {
            id: e.id,
            status: e.status,
            payload: e.payload.into(),
        },
        Frame::ChannelMsg(m) => Got::ChannelMsg {
            channel: m.channel.to_owned(),
            from: m.from.to_owned(),
            payload: m.payload.into(),
        },
        Frame::SubscribeAck(a) => Got::SubscribeAck {
            channel: a.channel.to_owned(),
            subscribed: a.subscribed,
            error: a.error,
        },
        Frame::Cancel(c) => Got::Cancel { id: c.id },
        Frame::PublishDropped(d) => Got::PublishDropped {
            channel: d.channel.to_owned(),
            dropped: d.dropped,
        },
        Frame::Close(c) => Got::Close {
            code: c.code,
            reason: c.reason.to_owned(),
        },
        _ => return None,
    })
}

/// One native client connection.
pub struct TestClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub session: ClientSession,
    origin: std::time::Instant,
}

impl TestClient {
    /// Opens the WebSocket and sends the Hello; does not wait for the answer.
    pub async fn connect(addr: SocketAddr, config: ClientConfig) -> Self {
        let (ws, _) = tokio::time::timeout(
            STEP,
            tokio_tungstenite::connect_async(format!("ws://{addr}/ws")),
        )
        .await
        .expect("connect in time")
        .expect("websocket connects");
        Self::hello_over(ws, config).await
    }

    /// Starts the session over an open WebSocket and sends the Hello.
    async fn hello_over(
        ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
        config: ClientConfig,
    ) -> Self {
        let origin = std::time::Instant::now();
        let mut session = ClientSession::new(config, Instant::ZERO);
        assert!(session.poll_connect(Instant::ZERO));
        session.handle_connected(Instant::ZERO);
        let mut client = Self {
            ws,
            session,
            origin,
        };
        client.flush().await;
        client
    }

    /// Like [`Self::connect`], from a chosen local address (any 127.x.y.z on Linux
    /// loopback), so tests can play several peers.
    pub async fn connect_from(
        addr: SocketAddr,
        source: std::net::IpAddr,
        config: ClientConfig,
    ) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::new(source, 0))
            .expect("bind source");
        let stream = tokio::time::timeout(STEP, socket.connect(addr))
            .await
            .expect("connect in time")
            .expect("tcp connects");
        let (ws, _) = tokio::time::timeout(
            STEP,
            tokio_tungstenite::client_async(
                format!("ws://{addr}/ws"),
                MaybeTlsStream::Plain(stream),
            ),
        )
        .await
        .expect("upgrade in time")
        .expect("websocket connects");
        Self::hello_over(ws, config).await
    }

    /// Connects with a plain config for `client_id`.
    pub async fn connect_as(addr: SocketAddr, client_id: &str) -> Self {
        Self::connect(addr, ClientConfig::new(client_id).unwrap()).await
    }

    /// Connects and waits for the Welcome; returns it.
    pub async fn handshake(addr: SocketAddr, config: ClientConfig) -> (Self, Got) {
        let mut client = Self::connect(addr, config).await;
        let welcome = client.next().await;
        assert!(
            matches!(welcome, Got::Welcome { .. }),
            "expected welcome, got {welcome:?}"
        );
        (client, welcome)
    }

    /// Handshakes with a plain config for `client_id`.
    pub async fn open(addr: SocketAddr, client_id: &str) -> Self {
        Self::handshake(addr, ClientConfig::new(client_id).unwrap())
            .await
            .0
    }

    pub fn now(&self) -> Instant {
        Instant::from_micros(self.origin.elapsed().as_micros() as u64)
    }

    /// Sends everything the session wants sent.
    pub async fn flush(&mut self) {
        loop {
            let mut buf = [0u8; 512];
            match self.session.poll_transmit(&mut buf).expect("encodes") {
                Some(n) => self.send_raw(&buf[..n]).await,
                None => break,
            }
        }
    }

    /// Sends bytes as one binary message, unchecked.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.ws
            .send(Message::Binary(bytes.to_vec().into()))
            .await
            .expect("send");
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// The next thing that arrives (pings and pongs are handled inside).
    pub async fn next(&mut self) -> Got {
        tokio::time::timeout(STEP, self.next_unbounded())
            .await
            .expect("a frame in time")
    }

    async fn next_unbounded(&mut self) -> Got {
        loop {
            let msg = match self.ws.next().await {
                Some(Ok(msg)) => msg,
                Some(Err(e)) => panic!("websocket error: {e}"),
                None => panic!("websocket ended without a close frame"),
            };
            match msg {
                Message::Binary(bytes) => {
                    let now = self.now();
                    let got = match self.session.handle_frame(now, &bytes) {
                        Ok(Some(frame)) => owned(frame),
                        Ok(None) => None,
                        Err(e) => panic!("server broke the protocol: {e}"),
                    };
                    self.flush().await;
                    if let Some(got) = got {
                        return got;
                    }
                }
                Message::Close(frame) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.as_str().to_owned()))
                        .unwrap_or((1005, String::new()));
                    return Got::WsClose { code, reason };
                }
                _ => {}
            }
        }
    }

    /// Behaves as a live client for `span`: runs the session's timers (its pings, its own
    /// heartbeat timeout) and reads whatever arrives. Returns what arrived, in order; stops
    /// early at the WebSocket close.
    pub async fn run_for(&mut self, span: Duration) -> Vec<Got> {
        let until = tokio::time::Instant::now() + span;
        let mut got = Vec::new();
        loop {
            let now = self.now();
            self.session.handle_timeout(now);
            self.flush().await;
            let tick = (tokio::time::Instant::now() + Duration::from_millis(20)).min(until);
            match tokio::time::timeout_at(tick, self.next_unbounded()).await {
                Ok(item @ Got::WsClose { .. }) => {
                    got.push(item);
                    return got;
                }
                Ok(item) => got.push(item),
                Err(_) if tick >= until => return got,
                Err(_) => {}
            }
        }
    }

    /// Waits for the End of our request `id`, skipping other frames.
    pub async fn end_of(&mut self, id: RequestId) -> (Status, PayloadBuf) {
        for _ in 0..64 {
            if let Got::End {
                id: got,
                status,
                payload,
            } = self.next().await
                && got == id
            {
                return (status, payload);
            }
        }
        panic!("no end for request {id}");
    }

    /// Reads until the WebSocket close and returns its code and reason.
    pub async fn expect_ws_close(&mut self) -> (u16, String) {
        for _ in 0..64 {
            if let Got::WsClose { code, reason } = self.next().await {
                return (code, reason);
            }
        }
        panic!("no websocket close within 64 frames");
    }

    pub async fn subscribe(&mut self, channel: &str) {
        self.session.subscribe(channel).expect("subscribe");
        self.flush().await;
    }

    pub async fn unsubscribe_raw(&mut self, channel: &str) {
        let mut buf = [0u8; 128];
        let frame = Frame::Unsubscribe(sentelite_core::frame::ChannelRef { channel });
        let n = sentelite_core::encode(&frame, &mut buf).unwrap();
        self.send_raw(&buf[..n]).await;
    }

    pub async fn publish(&mut self, channel: &str, payload: Payload<'_>, exclude_sender: bool) {
        let mut buf = vec![0u8; 512 + payload.len()];
        let n = self
            .session
            .publish(channel, payload, exclude_sender, &mut buf)
            .expect("publish");
        self.send_raw(&buf[..n]).await;
    }

    pub async fn send_event(&mut self, event: &str, payload: Payload<'_>) {
        let mut buf = [0u8; 512];
        let n = self
            .session
            .send_event(event, payload, &mut buf)
            .expect("event");
        self.send_raw(&buf[..n]).await;
    }

    pub async fn request(
        &mut self,
        event: &str,
        payload: Payload<'_>,
        timeout: Option<Duration>,
    ) -> RequestId {
        let mut buf = [0u8; 512];
        let now = self.now();
        let timeout = timeout.map(|t| sentelite_core::Duration::from_millis(t.as_millis() as u64));
        let (id, n) = self
            .session
            .request(now, event, payload, timeout, &mut buf)
            .expect("request");
        self.send_raw(&buf[..n]).await;
        id
    }

    pub async fn reply(&mut self, id: RequestId, seq: u32, payload: Payload<'_>) {
        let mut buf = [0u8; 512];
        let n = self
            .session
            .reply(id, seq, payload, &mut buf)
            .expect("reply");
        self.send_raw(&buf[..n]).await;
    }

    /// Sends a Cancel frame without ending the request locally, so the server's answer to
    /// it stays visible.
    pub async fn cancel_raw(&mut self, id: RequestId) {
        let mut buf = [0u8; 16];
        let frame = Frame::Cancel(sentelite_core::frame::Cancel { id });
        let n = sentelite_core::encode(&frame, &mut buf).unwrap();
        self.send_raw(&buf[..n]).await;
    }

    pub async fn end(&mut self, id: RequestId, status: Status, payload: Payload<'_>) {
        let mut buf = [0u8; 512];
        let n = self
            .session
            .end(id, status, payload, &mut buf)
            .expect("end");
        self.send_raw(&buf[..n]).await;
    }
}
