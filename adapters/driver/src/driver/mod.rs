//! The one driver loop shared by every runtime.
//!
//! It follows the core's calling pattern: after every input (a received message, a timer, an
//! application call) it drains `poll_transmit` into the WebSocket and `poll_event` into the
//! application's event queue, then waits on three things at once: the next WebSocket message,
//! the session's `poll_timeout`, and the next call.
//!
//! | module | job |
//! |---|---|
//! | `dial` | one connection attempt: TCP, TLS, WebSocket upgrade, under the handshake deadline |
//! | `link` | one open WebSocket: read, write, close |
//! | `wait` | racing IO against the session's timer and the application's calls |
//! | `outbox` | encoding frames into WebSocket messages waiting to be written |
//! | `calls` | carrying out what the application's handles ask |
//! | `requests` | requests in flight: ours (with their responses) and the server's |
//! | `notify` | frames and session events turned into application events; published stats |
//! | `shipping` | the log shipper's batches as `telemetry/log-batch` requests |

mod calls;
mod dial;
mod link;
mod notify;
mod outbox;
mod requests;
mod shipping;
mod wait;

use std::future::pending;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use async_channel::{Receiver, Sender};
use sentelite_core::{ClientConfig, ClientSession, State};

use crate::call::Call;
use crate::client::Shared;
use crate::clock::Clock;
use crate::target::Target;
use crate::transport::Security;
use crate::{ClientEvent, Runtime};

use dial::Dialer;
use link::CloseNote;
use notify::Notifier;
use outbox::Outbox;
use requests::{OurRequests, ServerRequests};
use wait::Wake;

/// Requests of ours in flight at once.
const MAX_PENDING: usize = 64;
/// Channels the client can want at once.
const MAX_CHANNELS: usize = 32;

type Session = ClientSession<MAX_PENDING, MAX_CHANNELS>;

/// Everything a driver is built from.
pub(crate) struct DriverParts<R> {
    pub runtime: R,
    pub target: Target,
    /// Plain or TLS, fixed for the client's life.
    pub security: Security,
    pub config: ClientConfig,
    /// Calls from the application's handles.
    pub calls: Receiver<Call>,
    /// Handed to responses and incoming requests so they can reach the driver.
    pub calls_tx: Sender<Call>,
    /// The application's event queue.
    pub events: Sender<ClientEvent>,
    /// Dropped when the driver exits, which wakes [`crate::Client::close`].
    pub done: Sender<()>,
    /// Closed by the application to shut the client down.
    pub stop: Receiver<()>,
    /// Longest time from the shutdown to the driver's exit.
    pub close_timeout: StdDuration,
    /// Parts queued per response before the connection stops being read.
    pub response_parts: usize,
    pub shared: Arc<Shared>,
    /// The clock shared with the application's handles (log records are stamped with it).
    pub clock: Clock,
    /// The remote-logging queue, when logging is configured.
    pub shipper: Option<crate::logs::SharedShipper>,
}

/// The driver task's state.
pub(crate) struct Driver<R: Runtime> {
    runtime: R,
    clock: Clock,
    dialer: Dialer,
    session: Session,
    outbox: Outbox,
    calls: Receiver<Call>,
    calls_tx: Sender<Call>,
    app: Notifier,
    ours: OurRequests,
    theirs: ServerRequests,
    /// How the current connection is ending.
    close: CloseNote,
    /// Closed by the application to shut the client down.
    stop: Receiver<()>,
    close_timeout: StdDuration,
    /// When a shutdown stops waiting for the peer; set when the shutdown begins.
    close_by: Option<StdInstant>,
    response_parts: usize,
    /// Remote logging, when configured.
    shipping: Option<shipping::Shipping>,
    /// Dropped when the driver exits, which wakes [`crate::Client::close`].
    _done: Sender<()>,
}

impl<R: Runtime> Driver<R> {
    pub(crate) fn new(parts: DriverParts<R>) -> Self {
        let clock = parts.clock;
        let dialer = Dialer::new(parts.target, parts.security, parts.config.max_frame);
        Self {
            runtime: parts.runtime,
            clock,
            dialer,
            session: Session::new(parts.config, clock.now()),
            outbox: Outbox::new(),
            calls: parts.calls,
            calls_tx: parts.calls_tx,
            app: Notifier::new(parts.events, parts.shared),
            ours: OurRequests::default(),
            theirs: ServerRequests::default(),
            close: CloseNote::default(),
            stop: parts.stop,
            close_timeout: parts.close_timeout,
            close_by: None,
            response_parts: parts.response_parts,
            shipping: parts.shipper.map(shipping::Shipping::new),
            _done: parts.done,
        }
    }

    /// Runs until the client is shut down.
    pub(crate) async fn run(mut self) {
        loop {
            let now = self.clock.now();
            self.expire(now);
            self.drain_session();
            if self.session.state() == State::Closed {
                break;
            }
            if self.session.poll_connect(now) {
                if let Some(ws) = self.dial().await {
                    self.serve(ws).await;
                }
                continue;
            }
            // No transport: wait for the reconnect timer or a call.
            match self.wait(pending::<()>()).await {
                Wake::Call(call) => self.on_call(self.clock.now(), call),
                Wake::Stop => self.begin_shutdown(),
                Wake::Io(()) | Wake::Timer | Wake::CloseDeadline => {}
            }
        }
        self.app.shared.open.store(false, Ordering::Release);
    }

    /// The application closed the client: close the session for good and start the clock
    /// on how long that may take.
    fn begin_shutdown(&mut self) {
        if self.close_by.is_none() {
            self.close_by = Some(StdInstant::now() + self.close_timeout);
            self.session.shutdown("client closed");
        }
    }
}
