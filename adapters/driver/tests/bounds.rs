//! Bounds the client keeps against a server that misbehaves: `close()` returns within
//! `ClientOptions::close_timeout` even when the server reads nothing, and a response the
//! application does not read holds a bounded number of parts while the connection waits
//! (and stays up), then delivers every part in order. Also how a server's bare WebSocket
//! close is reported.
//!
//! The server here is a small one of its own (the core's `ServerSession` behind
//! async-tungstenite on 127.0.0.1), so each test controls exactly when the server reads and
//! writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use futures_lite::future;
use futures_util::StreamExt;
use sentelite_core::{Frame, Payload, ServerConfig, ServerSession, Status};
use sentelite_driver::clock::{Clock, to_core_duration};
use sentelite_driver::{
    Client, ClientEvent, ClientOptions, CloseCode, Initiator, PayloadBuf, RequestOutcome,
};

/// Upper bound for any single wait; a broken client fails instead of hanging.
const STEP: Duration = Duration::from_secs(5);
/// Upper bound for moving the whole flood (12 MiB) on a loaded machine.
const BULK: Duration = Duration::from_secs(30);
/// A flood of this many parts of [`PART_SIZE`] is three times what loopback sockets buffered
/// before the server's writes blocked (about 4 MiB on the machine this was written on).
const PARTS: u32 = 384;
const PART_SIZE: usize = 32 * 1024;

/// What the server does once the handshake is done.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Never reads or writes again, but keeps the socket open.
    Deaf,
    /// Closes the WebSocket with this code and reason, without a native Close frame.
    WebSocketClose(u16, &'static str),
    /// Answers a request with `parts` parts of `size` bytes (the part number in the first
    /// four bytes), then End OK; counts the parts it managed to write.
    Flood { parts: u32, size: usize },
}

/// A one-connection-at-a-time server on its own thread, stopped on drop.
struct Server {
    port: u16,
    /// Parts written to the socket so far (flood only).
    written: Arc<AtomicUsize>,
    stop: Option<async_channel::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(behaviour: Behaviour, config: ServerConfig) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("local addr").port();
        let written = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let counter = written.clone();
        let thread = std::thread::spawn(move || {
            smol::block_on(async {
                let listener = smol::net::TcpListener::try_from(listener).expect("async listener");
                let serving = async {
                    while let Ok((stream, _)) = listener.accept().await {
                        serve(stream, behaviour, config, &counter).await;
                    }
                };
                // Closing the stop channel ends the server and drops its connection.
                future::or(serving, async {
                    let _ = stopped.recv().await;
                })
                .await;
            });
        });
        Self {
            port,
            written,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/sentelite", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serves one connection: the handshake, then `behaviour`.
async fn serve(
    stream: smol::net::TcpStream,
    behaviour: Behaviour,
    config: ServerConfig,
    written: &AtomicUsize,
) {
    let Ok(mut ws) = async_tungstenite::accept_async(stream).await else {
        return;
    };
    let clock = Clock::start();
    let mut session: ServerSession<8> = ServerSession::new(config, clock.now());
    let mut buf = vec![0u8; 256 * 1024];
    while let Some(Ok(message)) = ws.next().await {
        let Message::Binary(bytes) = message else {
            continue;
        };
        let now = clock.now();
        let mut out = Vec::new();
        match session.handle_frame(now, &bytes) {
            Ok(Some(Frame::Hello(hello))) => {
                let uid = format!("user-{}", hello.client_id);
                let n = session
                    .accept(now, &uid, 1, &mut buf)
                    .expect("welcome encodes");
                out.push(buf[..n].to_vec());
            }
            Ok(Some(Frame::Request(request))) => {
                if let Behaviour::Flood { parts, size } = behaviour {
                    let id = request.id;
                    for seq in 0..parts {
                        let mut payload = vec![0u8; size];
                        payload[..4].copy_from_slice(&seq.to_le_bytes());
                        let n = session
                            .reply(id, seq, Payload::Bytes(&payload), &mut buf)
                            .expect("part encodes");
                        if ws.send(Message::binary(buf[..n].to_vec())).await.is_err() {
                            return;
                        }
                        written.fetch_add(1, Ordering::SeqCst);
                    }
                    let n = session
                        .end(id, Status::OK, Payload::Empty, &mut buf)
                        .expect("end encodes");
                    out.push(buf[..n].to_vec());
                }
            }
            _ => {}
        }
        while let Ok(Some(n)) = session.poll_transmit(&mut buf) {
            out.push(buf[..n].to_vec());
        }
        for frame in out {
            if ws.send(Message::binary(frame)).await.is_err() {
                return;
            }
        }
        if session.is_open() {
            match behaviour {
                // Keep the socket open and never look at it again.
                Behaviour::Deaf => std::future::pending::<()>().await,
                Behaviour::WebSocketClose(code, reason) => {
                    let frame = CloseFrame {
                        code: code.into(),
                        reason: reason.into(),
                    };
                    let _ = ws.close(Some(frame)).await;
                    // Answer nothing more; the client ends the connection.
                    while let Some(Ok(_)) = ws.next().await {}
                    return;
                }
                Behaviour::Flood { .. } => {}
            }
        }
    }
}

async fn within<T>(what: &str, limit: Duration, fut: impl Future<Output = T>) -> T {
    let timer = async {
        smol::Timer::after(limit).await;
        None
    };
    match future::or(async { Some(fut.await) }, timer).await {
        Some(value) => value,
        None => panic!("timed out after {limit:?} waiting for {what}"),
    }
}

async fn opened(client: &Client) {
    within("open", STEP, async {
        loop {
            match client.events().recv().await {
                Some(ClientEvent::Opened { .. }) => return,
                Some(_) => {}
                None => panic!("event stream ended"),
            }
        }
    })
    .await;
}

fn ms(n: u64) -> sentelite_core::Duration {
    to_core_duration(Duration::from_millis(n))
}

/// A server that completes the handshake and then reads nothing: the client's writes back
/// up until its socket is full. `close()` must still return within the close timeout
/// (before, it waited for a write that never finished).
#[test]
fn close_returns_within_the_close_timeout_when_the_server_reads_nothing() {
    let server = Server::start(
        Behaviour::Deaf,
        ServerConfig {
            max_frame: 1024 * 1024,
            // Long enough that no heartbeat rescues the stuck write during the test.
            heartbeat_interval: ms(60_000),
            heartbeat_timeout: ms(120_000),
            ..ServerConfig::default()
        },
    );
    let mut options = ClientOptions::new(server.url(), "dev-close");
    options.close_timeout = Duration::from_millis(500);
    let client = sentelite_smol::connect(options).expect("valid options");
    smol::block_on(async {
        opened(&client).await;
        // Fill the socket: each send returns once the driver took it; a send that does not
        // return means the driver is stuck writing to a server that does not read.
        let payload = PayloadBuf::Bytes(vec![7; 256 * 1024]);
        let mut stuck = false;
        for _ in 0..400 {
            let send = client.send("test/fill", payload.clone());
            let timer = async {
                smol::Timer::after(Duration::from_millis(300)).await;
                None
            };
            match future::or(async { Some(send.await) }, timer).await {
                Some(result) => result.expect("send while open"),
                None => {
                    stuck = true;
                    break;
                }
            }
        }
        assert!(stuck, "the client's writes never backed up");
        let started = Instant::now();
        within("close", Duration::from_secs(3), client.close()).await;
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(500 + 1000),
            "close took {took:?} with a 500 ms close timeout"
        );
        assert!(!client.is_open());
    });
}

/// A response the application does not read: its queue stays within `response_parts`, the
/// client stops reading so the server's writes back up (memory stays bounded on both ends),
/// and the connection survives a pause several heartbeat timeouts long. Once read, every
/// part arrives, in order, then the end.
#[test]
fn an_unread_response_holds_a_bounded_queue_and_then_delivers_every_part_in_order() {
    let server = Server::start(
        Behaviour::Flood {
            parts: PARTS,
            size: PART_SIZE,
        },
        ServerConfig {
            max_frame: 64 * 1024,
            // The client declares the server dead after 600 ms without reading anything.
            heartbeat_interval: ms(200),
            heartbeat_timeout: ms(600),
            ..ServerConfig::default()
        },
    );
    let mut options = ClientOptions::new(server.url(), "dev-slow-reader");
    options.response_parts = 4;
    let client = sentelite_smol::connect(options).expect("valid options");
    smol::block_on(async {
        opened(&client).await;
        let mut response = client
            .request("test/flood", PayloadBuf::Empty, Duration::from_secs(60))
            .await
            .expect("request");

        // Wait until the server cannot write any more: its count stops moving.
        let mut last = usize::MAX;
        within("the server's writes to back up", BULK, async {
            loop {
                smol::Timer::after(Duration::from_millis(300)).await;
                let now = server.written.load(Ordering::SeqCst);
                if now == last && now > 0 {
                    return;
                }
                last = now;
            }
        })
        .await;
        // Several heartbeat timeouts without reading: the pause is ours, not the server's.
        smol::Timer::after(Duration::from_millis(1500)).await;
        let written = server.written.load(Ordering::SeqCst);
        assert!(
            written < PARTS as usize,
            "the server wrote all {written} parts: nothing pushed back"
        );
        assert!(
            response.queued_parts() <= 4,
            "{} parts queued, bound is 4",
            response.queued_parts()
        );
        assert!(client.is_open(), "the paused connection was given up");
        while let Some(event) = client.events().try_recv() {
            assert!(
                !matches!(event, ClientEvent::Closed { .. }),
                "closed while paused: {event:?}"
            );
        }

        let mut next = 0u32;
        within("every part", BULK, async {
            while let Some(part) = response.next_part().await {
                assert!(response.queued_parts() <= 4);
                let PayloadBuf::Bytes(bytes) = part else {
                    panic!("parts are bytes");
                };
                assert_eq!(bytes.len(), PART_SIZE);
                let seq = u32::from_le_bytes(bytes[..4].try_into().expect("four bytes"));
                assert_eq!(seq, next, "parts out of order");
                next += 1;
            }
        })
        .await;
        assert_eq!(next, PARTS);
        assert!(matches!(
            response.outcome(),
            Some(RequestOutcome::Completed {
                status: Status::OK,
                ..
            })
        ));
        assert_eq!(client.stats().reconnects, 0);
        within("close", STEP, client.close()).await;
    });
}

/// A server that closes the WebSocket with 4005 (`auth-failed` in the WebSocket code space)
/// but no native Close frame: the client reports the server's close with that code and
/// reason, as the host does for clients, not a lost transport.
#[test]
fn a_websocket_close_without_a_native_close_is_reported_as_the_servers_close() {
    let server = Server::start(
        Behaviour::WebSocketClose(4005, "token revoked"),
        ServerConfig::default(),
    );
    let mut options = ClientOptions::new(server.url(), "dev-ws-close");
    options.backoff_initial = Duration::from_secs(30);
    options.backoff_max = Duration::from_secs(30);
    let client = sentelite_smol::connect(options).expect("valid options");
    smol::block_on(async {
        opened(&client).await;
        let closed = within("closed", STEP, async {
            loop {
                match client.events().recv().await {
                    Some(ClientEvent::Closed {
                        code,
                        reason,
                        initiator,
                    }) => return (code, reason, initiator),
                    Some(_) => {}
                    None => panic!("event stream ended"),
                }
            }
        })
        .await;
        assert_eq!(
            closed,
            (
                CloseCode::AUTH_FAILED,
                "token revoked".to_owned(),
                Initiator::Peer
            )
        );
        within("close", STEP, client.close()).await;
    });
}

/// Dropping a response whose queue is full cancels the request and lets the client read
/// again: the rest of the server's parts are taken (and dropped as late) instead of the
/// connection staying paused for a response nobody holds.
#[test]
fn dropping_a_full_response_resumes_reading() {
    let server = Server::start(
        Behaviour::Flood {
            parts: PARTS,
            size: PART_SIZE,
        },
        ServerConfig {
            max_frame: 64 * 1024,
            ..ServerConfig::default()
        },
    );
    let mut options = ClientOptions::new(server.url(), "dev-drop");
    options.response_parts = 2;
    let client = sentelite_smol::connect(options).expect("valid options");
    smol::block_on(async {
        opened(&client).await;
        let response = client
            .request("test/flood", PayloadBuf::Empty, Duration::from_secs(60))
            .await
            .expect("request");
        let mut last = usize::MAX;
        within("the server's writes to back up", BULK, async {
            loop {
                smol::Timer::after(Duration::from_millis(300)).await;
                let now = server.written.load(Ordering::SeqCst);
                if now == last && now > 0 {
                    return;
                }
                last = now;
            }
        })
        .await;
        assert!(last < PARTS as usize, "nothing pushed back");
        drop(response);
        within("the server to finish writing", BULK, async {
            while server.written.load(Ordering::SeqCst) < PARTS as usize {
                smol::Timer::after(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(client.is_open());
        assert_eq!(client.stats().reconnects, 0);
        within("close", STEP, client.close()).await;
    });
}

/// A request that times out while one of its parts waits for room in the full queue: the
/// queued parts, then that part, then `TimedOut`. Nothing the client accepted is lost.
#[test]
fn a_request_ending_while_its_part_waits_keeps_that_part() {
    let server = Server::start(
        Behaviour::Flood {
            parts: PARTS,
            size: PART_SIZE,
        },
        ServerConfig {
            max_frame: 64 * 1024,
            ..ServerConfig::default()
        },
    );
    let mut options = ClientOptions::new(server.url(), "dev-timeout");
    options.response_parts = 3;
    let client = sentelite_smol::connect(options).expect("valid options");
    smol::block_on(async {
        opened(&client).await;
        let mut response = client
            .request("test/flood", PayloadBuf::Empty, Duration::from_millis(500))
            .await
            .expect("request");
        // Past the deadline without reading.
        smol::Timer::after(Duration::from_millis(1200)).await;
        let mut seqs = Vec::new();
        within("the parts", STEP, async {
            while let Some(PayloadBuf::Bytes(bytes)) = response.next_part().await {
                seqs.push(u32::from_le_bytes(
                    bytes[..4].try_into().expect("four bytes"),
                ));
            }
        })
        .await;
        assert_eq!(
            seqs,
            vec![0, 1, 2, 3],
            "three queued parts and the one that waited"
        );
        assert_eq!(response.outcome(), Some(&RequestOutcome::TimedOut));
        assert!(client.is_open());
        within("close", STEP, client.close()).await;
    });
}
