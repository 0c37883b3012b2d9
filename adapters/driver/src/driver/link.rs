//! One open WebSocket: the per-connection loop, writing what the session and the application
//! queued, reading messages, and closing.

use std::pin::pin;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use async_tungstenite::tungstenite::error::ProtocolError as WsProtocolError;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use async_tungstenite::tungstenite::{Error as WsError, Message};
use async_tungstenite::{WebSocketReceiver, WebSocketSender, WebSocketStream};
use futures_lite::future;
use futures_util::{SinkExt, StreamExt};
use sentelite_core::{CloseCode, Instant, RequestId, State, websocket};

use super::Driver;
use super::wait::Wake;
use crate::Runtime;
use crate::transport;

/// How long a closing connection waits for the peer's WebSocket close.
const CLOSE_GRACE: StdDuration = StdDuration::from_secs(1);

/// The WebSocket over a plain or TLS stream: one type, so one loop serves `ws://` and `wss://`.
pub(super) type Ws = WebSocketStream<transport::Stream>;
/// The writing half of a [`Ws`].
type Sink = WebSocketSender<transport::Stream>;
/// The reading half of a [`Ws`]: read while a write is stuck too, so the server's frames
/// (its pings while it holds our data back) are seen.
type Source = WebSocketReceiver<transport::Stream>;

/// What the connection loop waits for.
enum Input {
    /// The next WebSocket message (`None`: the stream ended).
    Message(Option<Result<Message, WsError>>),
    /// Room for the part that waited (`delivered` false: the response was dropped).
    Room { id: RequestId, delivered: bool },
}

/// What finished first while a write was in progress.
enum WriteOrRead {
    Written(Result<(), WsError>),
    Read(Option<Result<Message, WsError>>),
}

/// Whether the transport is still usable after a received message.
enum Flow {
    Continue,
    Gone(String),
}

/// How the current connection is ending, gathered from whichever side decided first.
#[derive(Debug, Default)]
pub(super) struct CloseNote {
    /// The code of the Close frame sent or received on this connection.
    pub code: Option<CloseCode>,
    /// Why, for the Closed event and the WebSocket close frame.
    pub detail: Option<String>,
    /// The server's WebSocket close frame (code, reason), if it sent one.
    pub peer_websocket: Option<(u16, String)>,
}

impl CloseNote {
    /// Keeps the first explanation: later ones are consequences of it.
    pub(super) fn explain(&mut self, detail: &str) {
        if self.detail.is_none() {
            self.detail = Some(detail.to_owned());
        }
    }
}

impl<R: Runtime> Driver<R> {
    /// Serves one WebSocket until the session or the transport ends it.
    pub(super) async fn serve(&mut self, ws: Ws) {
        let (mut sink, mut source) = ws.split();
        loop {
            self.expire(self.clock.now());
            self.ship_logs(self.clock.now());
            if let Err(reason) = self.flush(&mut sink, &mut source).await {
                self.lost(reason);
                return;
            }
            self.drain_session();
            if self.session.wants_disconnect() {
                self.close_transport(&mut sink, &mut source).await;
                self.session.handle_disconnected(self.clock.now());
                self.drain_session();
                return;
            }
            let wake = self.next_input(&mut source).await;
            let now = self.clock.now();
            let flow = match wake {
                Wake::Io(Input::Message(Some(Ok(message)))) => self.on_message(now, message),
                Wake::Io(Input::Message(Some(Err(error)))) => self.on_ws_error(error),
                Wake::Io(Input::Message(None)) => Flow::Gone("connection closed".into()),
                Wake::Io(Input::Room { id, delivered }) => {
                    if !delivered {
                        // The application dropped the response while its queue was full.
                        self.cancel(id);
                    }
                    Flow::Continue
                }
                Wake::Timer => Flow::Continue,
                Wake::Call(call) => {
                    self.on_call(now, call);
                    Flow::Continue
                }
                Wake::Stop => {
                    self.begin_shutdown();
                    Flow::Continue
                }
                Wake::CloseDeadline => Flow::Gone("no close within the close timeout".into()),
            };
            if let Flow::Gone(reason) = flow {
                // Answer a WebSocket close if there was one; bounded, and harmless otherwise.
                self.close_transport(&mut sink, &mut source).await;
                self.lost(reason);
                return;
            }
            self.drain_session();
        }
    }

    /// Waits for the next message, or, while a response's queue is full, for room in it
    /// instead: the connection is not read until then, and the session knows, so the
    /// server's silence meanwhile is not held against it.
    async fn next_input(&mut self, source: &mut Source) -> Wake<Input> {
        let stalled = self.ours.take_stalled();
        self.session
            .set_read_paused(self.clock.now(), stalled.is_some());
        let Some(mut stalled) = stalled else {
            return self.wait(source.next()).await.map(Input::Message);
        };
        let id = stalled.id;
        let wake = self.wait(stalled.delivery.as_mut()).await;
        if !matches!(wake, Wake::Io(_)) {
            // Interrupted: the part still waits, inside its delivery.
            self.ours.restore_stalled(stalled);
        }
        wake.map(|sent| Input::Room {
            id,
            delivered: sent.is_ok(),
        })
    }

    /// The transport is gone: tell the session, which ends requests and plans a reconnect.
    fn lost(&mut self, reason: String) {
        if self.close.detail.is_none() {
            self.close.detail = Some(reason);
        }
        self.session.handle_disconnected(self.clock.now());
        self.drain_session();
    }

    /// Writes everything the session and the application queued. While a write is stuck the
    /// connection is still read (unless a full response holds reading back), so frames the
    /// server sends meanwhile, its pings above all, keep its heartbeat alive: a server that
    /// holds our data back on purpose is not mistaken for a dead one. Timers keep running,
    /// so a server that sends nothing at all is still declared dead.
    async fn flush(&mut self, sink: &mut Sink, source: &mut Source) -> Result<(), String> {
        loop {
            self.collect_transmit();
            if self.outbox.is_empty() {
                return Ok(());
            }
            let batch = self.outbox.take();
            let mut state_before = self.session.state();
            let mut write = pin!(async {
                for message in batch {
                    sink.feed(message).await?;
                }
                sink.flush().await
            });
            loop {
                let reading = !self.session.is_read_paused();
                let read = async {
                    if reading {
                        WriteOrRead::Read(source.next().await)
                    } else {
                        std::future::pending().await
                    }
                };
                let written = async { WriteOrRead::Written(write.as_mut().await) };
                match self.wait_io_or_timer(future::or(written, read)).await {
                    Wake::Io(WriteOrRead::Written(Ok(()))) => break,
                    Wake::Io(WriteOrRead::Written(Err(error))) => {
                        return Err(format!("write failed: {error}"));
                    }
                    Wake::Io(WriteOrRead::Read(message)) => {
                        let now = self.clock.now();
                        let flow = match message {
                            Some(Ok(message)) => self.on_message(now, message),
                            Some(Err(error)) => self.on_ws_error(error),
                            None => Flow::Gone("connection closed".into()),
                        };
                        if let Flow::Gone(reason) = flow {
                            return Err(reason);
                        }
                        self.drain_session();
                    }
                    Wake::Timer => {
                        self.expire(self.clock.now());
                        self.drain_session();
                        if state_before != State::Closing && self.session.state() == State::Closing
                        {
                            return Err("write stalled until the session gave up".into());
                        }
                    }
                    // The write may still finish in time; the close deadline bounds it.
                    Wake::Stop => {
                        self.begin_shutdown();
                        state_before = self.session.state();
                    }
                    Wake::CloseDeadline => {
                        return Err("write stalled past the close timeout".into());
                    }
                    // Not woken by calls; were it, the call's frames join the next batch.
                    Wake::Call(call) => self.on_call(self.clock.now(), call),
                }
            }
        }
    }

    /// Moves the session's own frames (Hello, pings, pongs, subscriptions, Close) to the
    /// outbox, and notes a close this side decided.
    fn collect_transmit(&mut self) {
        self.outbox.collect_transmit(&mut self.session);
        // A close this side decided names the WebSocket close that follows.
        if let Some((code, reason)) = self.session.local_close() {
            self.close.code.get_or_insert(code);
            if !reason.is_empty() {
                self.close.explain(reason);
            }
        }
    }

    /// Sends our WebSocket close (echoing the protocol close code) and waits briefly for the
    /// peer's.
    async fn close_transport(&mut self, sink: &mut Sink, source: &mut Source) {
        let (code, reason) = websocket::close_frame(
            self.close.code.unwrap_or(CloseCode::NORMAL),
            self.close.detail.as_deref().unwrap_or(""),
        );
        let frame = CloseFrame {
            code: WsCloseCode::from(code),
            reason: reason.to_owned().into(),
        };
        let finish = async {
            if sink.close(Some(frame)).await.is_ok() {
                while let Some(Ok(_)) = source.next().await {}
            }
        };
        // A shutdown's own deadline wins over the usual grace.
        let mut until = StdInstant::now() + CLOSE_GRACE;
        if let Some(close_by) = self.close_by {
            until = until.min(close_by);
        }
        let grace = self.runtime.sleep_until(until);
        future::or(finish, grace).await;
    }

    fn on_message(&mut self, now: Instant, message: Message) -> Flow {
        match message {
            Message::Binary(bytes) => {
                let handled = self.session.handle_frame(now, &bytes);
                // Counters first, so whoever the frame wakes reads them including this frame.
                self.app.publish_state(&self.session);
                match handled {
                    Ok(Some(frame)) => self.on_frame(frame),
                    Ok(None) => {}
                    Err(error) => self.close.explain(error.reason),
                }
                Flow::Continue
            }
            Message::Text(_) => {
                self.close_with(CloseCode::PROTOCOL_ERROR, "text message on a binary link");
                Flow::Continue
            }
            Message::Close(frame) => {
                // Without a native Close before it, this is how the server said why.
                self.close.peer_websocket =
                    frame.map(|f| (u16::from(f.code), f.reason.as_str().to_owned()));
                Flow::Gone("websocket closed by peer".to_owned())
            }
            // The WebSocket layer answers pings itself.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Flow::Continue,
        }
    }

    fn on_ws_error(&mut self, error: WsError) -> Flow {
        match error {
            // A socket that ends without a Close frame is a peer that vanished (crashed,
            // killed, cut off), not a peer that broke the protocol.
            WsError::ConnectionClosed
            | WsError::AlreadyClosed
            | WsError::Io(_)
            | WsError::Protocol(WsProtocolError::ResetWithoutClosingHandshake) => {
                Flow::Gone(error.to_string())
            }
            WsError::Capacity(_) => {
                self.close.explain("message larger than max frame");
                self.close_with(CloseCode::FRAME_TOO_LARGE, "message larger than max frame");
                Flow::Continue
            }
            other => {
                self.close.detail.get_or_insert_with(|| other.to_string());
                self.close_with(CloseCode::PROTOCOL_ERROR, "websocket protocol error");
                Flow::Continue
            }
        }
    }

    /// Decides to close this connection with `code`.
    fn close_with(&mut self, code: CloseCode, reason: &'static str) {
        self.close.explain(reason);
        self.session.close(code, reason);
    }
}
