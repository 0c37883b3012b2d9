//! Test support: a minimal sentelite server (the core's `ServerSession` behind
//! async-tungstenite) on 127.0.0.1, and helpers that bound every wait.
//!
//! The server runs on its own thread with its own smol executor, so the same server serves
//! clients driven by tokio and by smol. [`TestServer::start_tls`] puts a rustls acceptor with
//! a certificate made at test time in front of the same server, for `wss://`. What it does is
//! steered by the client's frames:
//!
//! | client sends | server does |
//! |---|---|
//! | request `test/stream` with `Bytes([n])` | n parts `Bytes([i])`, then End OK `Bytes("done")` |
//! | request `test/never` | nothing (the client's deadline or cancel ends it) |
//! | event `test/ask` with a payload | requests `device/ping` of the client with that payload |
//! | event `test/go-silent` | stops answering anything, keeps the socket open |
//! | event `test/bye` | closes with `GOING_AWAY` |
//! | event `test/text` | sends a WebSocket text message, which the native link forbids |
//! | subscribe / publish | acks; echoes publishes to the publisher unless excluded |
//! | publish to `test/lossy` | reports 3 dropped deliveries on that channel (PublishDropped) |
#![allow(dead_code)]

pub mod scenarios;
pub mod wss;

use std::future::{Future, pending};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use async_channel::{Receiver, Sender};
use async_tungstenite::tungstenite::Message;
use futures_lite::future;
use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_rustls::TlsAcceptor;
use futures_rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use futures_rustls::rustls;
use futures_util::StreamExt;
use sentelite_core::frame::{PayloadBuf, SubscribeError};
use sentelite_core::{CloseCode, Frame, Payload, ServerConfig, ServerSession, Status};
use sentelite_driver::clock::{Clock, to_core_duration};
use sentelite_driver::{ClientEvent, ClientOptions, Events};

/// Upper bound for any single wait in a test; a broken client fails instead of hanging.
pub const STEP: Duration = Duration::from_secs(5);

/// What the server saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// A Hello on connection `connection_id`.
    Hello {
        connection_id: u64,
        client_id: String,
    },
    /// A one-way event.
    Event { connection_id: u64, event: String },
    /// A part of the client's answer to a server request.
    ClientReply { seq: u32, payload: PayloadBuf },
    /// The end of the client's answer to a server request.
    ClientEnd { status: Status, payload: PayloadBuf },
    /// The client cancelled one of its requests.
    Cancel { id: u32 },
    /// The client sent a Close frame.
    ClientClose { code: CloseCode },
    /// The connection is gone.
    Gone { connection_id: u64 },
    /// The TLS handshake on connection `connection_id` failed, e.g. because the client
    /// refused the certificate.
    TlsFailed { connection_id: u64, reason: String },
    /// Connection `connection_id` was dropped on purpose (see [`Cut`]) after reading `read`
    /// bytes, or a first message of that size.
    Cut { connection_id: u64, read: usize },
}

/// A server on 127.0.0.1 with an ephemeral port, stopped on drop.
pub struct TestServer {
    port: u16,
    tls: bool,
    observed: Receiver<Observed>,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server whose connections use `config`.
    pub fn start(config: ServerConfig) -> Self {
        Self::spawn(config, None, Vec::new())
    }

    /// Starts a server whose first connections are cut, one `Cut` each in order, before it
    /// serves the later ones normally.
    pub fn start_cutting(config: ServerConfig, cuts: Vec<Cut>) -> Self {
        Self::spawn(config, None, cuts)
    }

    /// Starts a `wss://` server with a self-signed certificate made now for `names` (IP
    /// literals become IP subject alternative names). Returns the certificate's DER bytes,
    /// for clients that should trust it.
    pub fn start_tls(config: ServerConfig, names: &[&str]) -> (Self, Vec<u8>) {
        Self::start_tls_with(config, certificate_params(names))
    }

    /// Starts a `wss://` server whose self-signed certificate is made from `params`, e.g.
    /// one whose validity ended in the past.
    pub fn start_tls_with(
        config: ServerConfig,
        params: rcgen::CertificateParams,
    ) -> (Self, Vec<u8>) {
        Self::start_tls_cutting(config, params, Vec::new())
    }

    /// [`Self::start_tls_with`], cutting the first connections as
    /// [`Self::start_cutting`] does (a [`Cut::AfterFirstBytes`] falls inside the TLS
    /// handshake).
    pub fn start_tls_cutting(
        config: ServerConfig,
        params: rcgen::CertificateParams,
        cuts: Vec<Cut>,
    ) -> (Self, Vec<u8>) {
        let signing_key = rcgen::KeyPair::generate().expect("key pair");
        let made = params
            .self_signed(&signing_key)
            .expect("self-signed certificate");
        let cert = made.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(signing_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring offers TLS 1.2 and 1.3")
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .expect("certificate and key match");
        let server = Self::spawn(config, Some(TlsAcceptor::from(Arc::new(tls))), cuts);
        (server, cert.to_vec())
    }

    fn spawn(config: ServerConfig, tls: Option<TlsAcceptor>, cuts: Vec<Cut>) -> Self {
        let secure = tls.is_some();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("local addr").port();
        let (observed_tx, observed) = async_channel::unbounded();
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let thread = std::thread::spawn(move || {
            let executor = smol::LocalExecutor::new();
            smol::block_on(executor.run(async {
                let listener = smol::net::TcpListener::try_from(listener).expect("async listener");
                let mut connection_id = 0;
                let mut cuts = cuts.into_iter();
                loop {
                    let accepted = future::or(async { Some(listener.accept().await) }, async {
                        let _ = stopped.recv().await;
                        None
                    })
                    .await;
                    let Some(Ok((stream, _))) = accepted else {
                        break;
                    };
                    connection_id += 1;
                    executor
                        .spawn(accept(
                            stream,
                            tls.clone(),
                            cuts.next(),
                            connection_id,
                            config,
                            observed_tx.clone(),
                        ))
                        .detach();
                }
            }));
        });
        Self {
            port,
            tls: secure,
            observed,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// A server with short heartbeats: pings every 100 ms, dead after 400 ms of silence.
    pub fn start_fast_heartbeat() -> Self {
        Self::start(ServerConfig {
            heartbeat_interval: core_ms(100),
            heartbeat_timeout: core_ms(400),
            ..ServerConfig::default()
        })
    }

    /// The URL clients connect to: `ws://`, or `wss://` for a TLS server.
    pub fn url(&self) -> String {
        self.url_for_host("127.0.0.1")
    }

    /// The URL naming the server by `host` (e.g. `localhost`) instead of its address.
    pub fn url_for_host(&self, host: &str) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{host}:{}/sentelite", self.port)
    }

    /// The port, for clients that build their own URL.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits for the next observation `pick` accepts, skipping others.
    pub async fn expect<T>(&self, what: &str, mut pick: impl FnMut(Observed) -> Option<T>) -> T {
        within(what, async {
            loop {
                let seen = self.observed.recv().await.expect("server thread alive");
                if let Some(found) = pick(seen) {
                    return found;
                }
            }
        })
        .await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Closing the stop channel ends the accept loop; the executor drops live connections.
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Certificate parameters for `names` (IP literals become IP subject alternative names),
/// with rcgen's default validity (1975 to 4096) unless changed.
pub fn certificate_params(names: &[&str]) -> rcgen::CertificateParams {
    let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    rcgen::CertificateParams::new(names).expect("valid certificate names")
}

fn core_ms(ms: u64) -> sentelite_core::Duration {
    to_core_duration(Duration::from_millis(ms))
}

/// Client options for `server` with quick reconnects.
pub fn options(server: &TestServer) -> ClientOptions {
    let mut options = ClientOptions::new(server.url(), "dev-test");
    options.backoff_initial = Duration::from_millis(50);
    options.backoff_max = Duration::from_millis(200);
    options.handshake_timeout = Duration::from_secs(2);
    options
}

/// Runs `fut`, failing the test if it takes longer than [`STEP`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    let timer = async {
        smol::Timer::after(STEP).await;
        None
    };
    match future::or(async { Some(fut.await) }, timer).await {
        Some(value) => value,
        None => panic!("timed out waiting for {what}"),
    }
}

/// Waits for the next client event `pick` accepts, skipping others.
pub async fn wait_for<T>(
    events: &Events,
    what: &str,
    mut pick: impl FnMut(ClientEvent) -> Option<T>,
) -> T {
    within(what, async {
        loop {
            let event = events.recv().await.expect("event stream ended");
            if let Some(found) = pick(event) {
                return found;
            }
        }
    })
    .await
}

/// One accepted TCP connection: the TLS handshake first when the server has TLS.
/// Where a connection of [`TestServer::start_cutting`] is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// After the client's first bytes (its HTTP upgrade request, or its TLS hello on a
    /// `wss://` URL) and before any answer.
    AfterFirstBytes,
    /// After the WebSocket upgrade and the client's first message (its Hello), before the
    /// Welcome.
    AfterHello,
}

async fn accept(
    mut stream: smol::net::TcpStream,
    tls: Option<TlsAcceptor>,
    cut: Option<Cut>,
    connection_id: u64,
    config: ServerConfig,
    observed: Sender<Observed>,
) {
    match cut {
        Some(Cut::AfterFirstBytes) => {
            use futures_lite::AsyncReadExt;
            let mut first = [0u8; 512];
            let read = stream.read(&mut first).await.unwrap_or(0);
            let _ = observed.try_send(Observed::Cut {
                connection_id,
                read,
            });
            return;
        }
        Some(Cut::AfterHello) | None => {}
    }
    let cut_after_hello = cut == Some(Cut::AfterHello);
    let Some(acceptor) = tls else {
        return serve(stream, cut_after_hello, connection_id, config, observed).await;
    };
    match acceptor.accept(stream).await {
        Ok(stream) => serve(stream, cut_after_hello, connection_id, config, observed).await,
        Err(error) => {
            let _ = observed.try_send(Observed::TlsFailed {
                connection_id,
                reason: error.to_string(),
            });
        }
    }
}

/// One server connection, over plain TCP or TLS.
async fn serve(
    stream: impl AsyncRead + AsyncWrite + Unpin,
    cut_after_hello: bool,
    connection_id: u64,
    config: ServerConfig,
    observed: Sender<Observed>,
) {
    let Ok(mut ws) = async_tungstenite::accept_async(stream).await else {
        return;
    };
    if cut_after_hello {
        if let Some(Ok(Message::Binary(first))) = ws.next().await {
            let _ = observed.try_send(Observed::Cut {
                connection_id,
                read: first.len(),
            });
        }
        // Dropping the socket without a Close frame: the peer vanishes.
        return;
    }
    let clock = Clock::start();
    let mut conn = Connection {
        session: ServerSession::new(config, clock.now()),
        connection_id,
        uid: String::new(),
        buf: vec![0; 64 * 1024],
        out: Vec::new(),
        silent: false,
        text_due: false,
        observed,
    };
    'serve: loop {
        while let Ok(Some(n)) = conn.session.poll_transmit(&mut conn.buf) {
            conn.out.push(conn.buf[..n].to_vec());
        }
        for frame in conn.out.drain(..) {
            if ws.send(Message::binary(frame)).await.is_err() {
                break 'serve;
            }
        }
        if std::mem::take(&mut conn.text_due) && ws.send(Message::text("hi")).await.is_err() {
            break;
        }
        while conn.session.poll_event().is_some() {}
        if conn.session.wants_disconnect() {
            let _ = ws.close(None).await;
            break;
        }
        // A silent server also ignores its own timers: it must not even send a Close.
        let deadline = if conn.silent {
            None
        } else {
            conn.session.poll_timeout()
        };
        let timer = async {
            match deadline {
                Some(at) => {
                    smol::Timer::at(clock.to_std(at)).await;
                }
                None => pending::<()>().await,
            }
            None
        };
        let message = future::or(async { Some(ws.next().await) }, timer).await;
        let now = clock.now();
        match message {
            None => conn.session.handle_timeout(now),
            Some(Some(Ok(Message::Binary(bytes)))) => {
                if !conn.silent {
                    conn.on_frame(now, &bytes);
                }
            }
            Some(Some(Ok(_))) => {}
            Some(Some(Err(_)) | None) => break,
        }
    }
    conn.session.handle_disconnected(clock.now());
    let _ = conn.observed.try_send(Observed::Gone { connection_id });
}

struct Connection {
    session: ServerSession<8>,
    connection_id: u64,
    uid: String,
    buf: Vec<u8>,
    out: Vec<Vec<u8>>,
    silent: bool,
    text_due: bool,
    observed: Sender<Observed>,
}

impl Connection {
    fn observe(&self, seen: Observed) {
        let _ = self.observed.try_send(seen);
    }

    fn push(&mut self, result: Result<usize, sentelite_core::SendError>) {
        let n = result.expect("test server frame encodes");
        self.out.push(self.buf[..n].to_vec());
    }

    fn on_frame(&mut self, now: sentelite_core::Instant, bytes: &[u8]) {
        let Ok(Some(frame)) = self.session.handle_frame(now, bytes) else {
            return;
        };
        match frame {
            Frame::Hello(hello) => {
                self.observe(Observed::Hello {
                    connection_id: self.connection_id,
                    client_id: hello.client_id.to_owned(),
                });
                self.uid = format!("user-{}", hello.client_id);
                let result = self
                    .session
                    .accept(now, &self.uid, self.connection_id, &mut self.buf);
                self.push(result);
            }
            Frame::Event(event) => {
                self.observe(Observed::Event {
                    connection_id: self.connection_id,
                    event: event.event.to_owned(),
                });
                match event.event {
                    "test/ask" => {
                        let result = self
                            .session
                            .request(
                                now,
                                "device/ping",
                                event.payload,
                                Some(core_ms(5000)),
                                &mut self.buf,
                            )
                            .map(|(_, n)| n);
                        self.push(result);
                    }
                    "test/go-silent" => self.silent = true,
                    "test/text" => self.text_due = true,
                    "test/bye" => self
                        .session
                        .close(CloseCode::GOING_AWAY, "server restarting"),
                    _ => {}
                }
            }
            Frame::Request(request) => match request.event {
                "test/stream" => {
                    let count = match request.payload {
                        Payload::Bytes([n]) => *n,
                        _ => 0,
                    };
                    for i in 0..count {
                        let result = self.session.reply(
                            request.id,
                            u32::from(i),
                            Payload::Bytes(&[i]),
                            &mut self.buf,
                        );
                        self.push(result);
                    }
                    let result = self.session.end(
                        request.id,
                        Status::OK,
                        Payload::Bytes(b"done"),
                        &mut self.buf,
                    );
                    self.push(result);
                }
                "test/never" => {}
                _ => {
                    let result = self.session.end(
                        request.id,
                        Status::UNSUPPORTED,
                        Payload::Empty,
                        &mut self.buf,
                    );
                    self.push(result);
                }
            },
            Frame::Reply(reply) => self.observe(Observed::ClientReply {
                seq: reply.seq,
                payload: reply.payload.into(),
            }),
            Frame::End(end) => self.observe(Observed::ClientEnd {
                status: end.status,
                payload: end.payload.into(),
            }),
            Frame::Cancel(cancel) => self.observe(Observed::Cancel { id: cancel.id }),
            Frame::Close(close) => self.observe(Observed::ClientClose { code: close.code }),
            Frame::Subscribe(sub) => {
                let result = self.session.subscribe_ack(
                    sub.channel,
                    true,
                    SubscribeError::NONE,
                    &mut self.buf,
                );
                self.push(result);
            }
            Frame::Unsubscribe(sub) => {
                let result = self.session.subscribe_ack(
                    sub.channel,
                    false,
                    SubscribeError::NONE,
                    &mut self.buf,
                );
                self.push(result);
            }
            Frame::Publish(publish) if publish.channel == "test/lossy" => {
                let result = self
                    .session
                    .publish_dropped(publish.channel, 3, &mut self.buf);
                self.push(result);
            }
            Frame::Publish(publish) if !publish.exclude_sender => {
                let result = self.session.channel_msg(
                    publish.channel,
                    &self.uid,
                    publish.payload,
                    &mut self.buf,
                );
                self.push(result);
            }
            _ => {}
        }
    }
}
