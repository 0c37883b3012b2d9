//! One connection attempt: TCP, TLS for `wss://`, and the WebSocket upgrade, all bounded by
//! the session's handshake deadline.

use std::pin::pin;

use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use sentelite_core::State;

use super::Driver;
use super::link::Ws;
use super::wait::Wake;
use crate::target::Target;
use crate::transport::Security;
use crate::{ClientEvent, Runtime};

/// WebSocket read buffer: frames are small, and a host may run many clients.
const READ_BUFFER: usize = 4096;

/// Where and how to connect; fixed for the client's life.
#[derive(Clone)]
pub(super) struct Dialer {
    target: Target,
    /// Plain or TLS.
    security: Security,
    ws_config: WebSocketConfig,
}

impl Dialer {
    pub(super) fn new(target: Target, security: Security, max_frame: u32) -> Self {
        let max_frame = max_frame as usize;
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .max_message_size(Some(max_frame))
            .max_frame_size(Some(max_frame));
        Self {
            target,
            security,
            ws_config,
        }
    }

    /// Opens TCP, TLS and the WebSocket; any step failing is reported as one reason.
    async fn open<R: Runtime>(&self, runtime: R) -> Result<Ws, String> {
        let target = &self.target;
        let stream = runtime
            .connect(target.host.clone(), target.port)
            .await
            .map_err(|e| format!("connect {}:{}: {e}", target.host, target.port))?;
        // Only TLS can fail here; its message names the cause (e.g. an untrusted
        // certificate).
        let stream = self
            .security
            .wrap(stream)
            .await
            .map_err(|e| format!("tls handshake with {}: {e}", target.host))?;
        let (ws, _) = async_tungstenite::client_async_with_config(
            target.url.as_str(),
            stream,
            Some(self.ws_config),
        )
        .await
        .map_err(|e| format!("websocket handshake: {e}"))?;
        Ok(ws)
    }
}

impl<R: Runtime> Driver<R> {
    /// Makes one connection attempt. Any step failing is one failed connect, retried after
    /// the session's backoff.
    pub(super) async fn dial(&mut self) -> Option<Ws> {
        let runtime = self.runtime.clone();
        // The attempt owns copies of what it needs, so calls can be handled meanwhile.
        let dialer = self.dialer.clone();
        let mut attempt = pin!(async move { dialer.open(runtime).await });
        loop {
            let wake = self.wait(attempt.as_mut()).await;
            let now = self.clock.now();
            match wake {
                Wake::Io(Ok(ws)) => {
                    self.session.handle_connected(now);
                    self.theirs.new_connection();
                    self.close = Default::default();
                    return Some(ws);
                }
                Wake::Io(Err(reason)) => {
                    self.app.emit(ClientEvent::ConnectFailed { reason });
                    self.session.handle_connect_failed(now);
                    self.drain_session();
                    return None;
                }
                Wake::Timer => {
                    self.expire(now);
                    if self.session.state() == State::Idle {
                        // The deadline passed mid-attempt (a silent server, a stuck TLS
                        // handshake): as much a failed connect as a refused one.
                        self.app.emit(ClientEvent::ConnectFailed {
                            reason: "no connection within the handshake timeout".into(),
                        });
                    }
                }
                Wake::Call(call) => self.on_call(now, call),
                Wake::Stop => self.begin_shutdown(),
                // Only set after a shutdown, which abandons the attempt at once.
                Wake::CloseDeadline => {}
            }
            self.drain_session();
            if self.session.state() != State::Connecting {
                // Handshake deadline passed or shut down: abandon the attempt.
                return None;
            }
        }
    }
}
