//! The handle the application holds. Every method turns into a call for the driver
//! task; results come back typed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_channel::{Receiver, Sender};
use sentelite_core::frame::PayloadBuf;

use crate::call::{Call, ask};
use crate::clock::to_core_duration;
use crate::driver::{Driver, DriverParts};
use crate::transport::Security;
use crate::{ClientError, ClientEvent, ClientOptions, Response, Runtime, target};

/// Counters of one client across all its connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Frames handed to the transport.
    pub frames_sent: u64,
    /// Frames received and decoded.
    pub frames_received: u64,
    /// Bytes handed to the transport (frame bytes, without WebSocket headers).
    pub bytes_sent: u64,
    /// Frame bytes received.
    pub bytes_received: u64,
    /// Reconnect attempts scheduled.
    pub reconnects: u32,
    /// Completed handshakes.
    pub handshakes: u32,
    /// Smoothed heartbeat round-trip time on the current connection.
    pub rtt: Option<Duration>,
    /// Events dropped because the application did not read them in time.
    pub events_dropped: u64,
}

/// State the driver publishes for cheap reads from any handle.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub open: AtomicBool,
    pub stats: Mutex<ClientStats>,
}

/// The receiving end of a client's events. Clones share one queue: each event goes to one
/// of them, so usually a single task reads it.
#[derive(Debug, Clone)]
pub struct Events {
    rx: Receiver<ClientEvent>,
}

impl Events {
    /// The next event; `None` once the client has shut down and every event was read.
    pub async fn recv(&self) -> Option<ClientEvent> {
        self.rx.recv().await.ok()
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Option<ClientEvent> {
        self.rx.try_recv().ok()
    }
}

/// A cheap-to-clone handle to a running client. When the last clone is dropped the client
/// closes, as if [`Client::close`] had been called.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// A handle that does not keep the client running (for front ends installed globally, like the
/// `tracing` layer).
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) struct WeakClient(std::sync::Weak<Inner>);

impl WeakClient {
    /// The client, unless every handle to it was dropped.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn upgrade(&self) -> Option<Client> {
        self.0.upgrade().map(|inner| Client { inner })
    }
}

struct Inner {
    calls: Sender<Call>,
    /// The remote-logging queue, when logging is configured.
    logs: Option<crate::logs::SharedShipper>,
    clock: crate::clock::Clock,
    events: Receiver<ClientEvent>,
    /// Closed to tell the driver to shut down; a signal apart from the calls, so a driver
    /// stuck writing to a peer that does not read still hears it.
    stop: Sender<()>,
    /// Closed by the driver when it exits.
    done: Receiver<()>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("logging", &self.logs.is_some())
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.close();
    }
}

/// Starts a client on `runtime`: the driver task is spawned at once and connects in the
/// background. Fails only on options that can never work (bad URL, ids too long, an extra
/// root that is not a certificate, `wss://` in a build without the `tls` feature).
pub fn start<R: Runtime>(runtime: R, options: ClientOptions) -> Result<Client, ClientError> {
    let target = target::parse(&options.url)?;
    let config = options.session_config()?;
    let security = Security::for_target(&target, &options.extra_root_certs)?;
    let (calls_tx, calls_rx) = async_channel::unbounded();
    let (event_tx, event_rx) = async_channel::bounded(options.event_capacity);
    let (done_tx, done_rx) = async_channel::bounded(1);
    let (stop_tx, stop_rx) = async_channel::bounded(1);
    let shared = Arc::new(Shared::default());
    let clock = crate::clock::Clock::start();
    let logs = options
        .log
        .map(|config| crate::logs::shipper(config, options.log_queue_bytes));
    let driver = Driver::new(DriverParts {
        runtime: runtime.clone(),
        target,
        security,
        config,
        calls: calls_rx,
        calls_tx: calls_tx.clone(),
        events: event_tx,
        done: done_tx,
        stop: stop_rx,
        close_timeout: options.close_timeout,
        response_parts: options.response_parts,
        shared: shared.clone(),
        clock,
        shipper: logs.clone(),
    });
    runtime.spawn(crate::logs::silent(driver.run()));
    Ok(Client {
        inner: Arc::new(Inner {
            calls: calls_tx,
            logs,
            clock,
            stop: stop_tx,
            events: event_rx,
            done: done_rx,
            shared,
        }),
    })
}

impl Client {
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn downgrade(&self) -> WeakClient {
        WeakClient(Arc::downgrade(&self.inner))
    }

    /// Logs a record for the server: `namespace` (`my.app.pump`), an optional event id
    /// (`my.app.pump/started`), the text, and structured data as a CBOR map (or empty). It
    /// waits in the client's queue until the server acknowledges it, through reconnects;
    /// records the queue has no room for are reported to the server as a gap. Returns `None`
    /// when [`ClientOptions::log`] is not set.
    pub fn log(
        &self,
        level: crate::Level,
        namespace: &str,
        id: Option<&str>,
        message: &str,
        data: &[u8],
    ) -> Option<crate::LogOutcome> {
        let shipper = self.inner.logs.as_ref()?;
        let now = self.inner.clock.now();
        let (outcome, wake) = {
            let mut s = crate::logs::lock(shipper);
            let before = s.poll_timeout();
            let outcome = s.log(
                now,
                &crate::logs::record(level, namespace, id, message, data),
            );
            // Due now, or due sooner than the timer the driver is waiting on (the first
            // record after an empty queue starts the batch timeout).
            let sooner = s
                .poll_timeout()
                .is_some_and(|at| before.is_none_or(|b| at < b));
            (outcome, s.batch_due(now) || sooner)
        };
        if wake {
            // The driver sends the batch, or re-arms its timer, on its next turn.
            let _ = self.inner.calls.try_send(Call::LogsQueued);
        }
        Some(outcome)
    }

    /// True when a record of `level` would be kept: check before building an expensive one.
    pub fn log_enabled(&self, level: crate::Level) -> bool {
        self.inner
            .logs
            .as_ref()
            .is_some_and(|s| crate::logs::lock(s).wants(level))
    }

    /// What logging has done so far; `None` when logging is off.
    pub fn log_stats(&self) -> Option<crate::LogStats> {
        let shipper = crate::logs::lock(self.inner.logs.as_ref()?);
        Some(crate::LogStats {
            queued: shipper.queue().len(),
            queue: shipper.queue_stats(),
            filtered: shipper.filter_stats(),
            unreported_gap: shipper.queue().pending_gap().is_some()
                || shipper.queue().in_flight().is_some(),
        })
    }

    /// Sends a one-way event. Fails with [`ClientError::NotConnected`] unless the connection
    /// is open.
    pub async fn send(&self, event: &str, payload: PayloadBuf) -> Result<(), ClientError> {
        let event = event.to_owned();
        ask(&self.inner.calls, |result| Call::Send {
            event,
            payload,
            result,
        })
        .await
    }

    /// Starts a request that the server answers in parts; `timeout` bounds the whole answer.
    pub async fn request(
        &self,
        event: &str,
        payload: PayloadBuf,
        timeout: Duration,
    ) -> Result<Response, ClientError> {
        let event = event.to_owned();
        let timeout = to_core_duration(timeout);
        ask(&self.inner.calls, |result| Call::Request {
            event,
            payload,
            timeout,
            result,
        })
        .await
    }

    /// Wants `channel`: subscribes now if connected and again after every reconnect. The
    /// server's answer arrives as [`ClientEvent::SubscribeResult`].
    pub async fn subscribe(&self, channel: &str) -> Result<(), ClientError> {
        let channel = channel.to_owned();
        ask(&self.inner.calls, |result| Call::Subscribe {
            channel,
            result,
        })
        .await
    }

    /// Stops wanting `channel`.
    pub async fn unsubscribe(&self, channel: &str) -> Result<(), ClientError> {
        let channel = channel.to_owned();
        ask(&self.inner.calls, |result| Call::Unsubscribe {
            channel,
            result,
        })
        .await
    }

    /// Publishes to a channel through the server; with `exclude_sender` this connection
    /// does not get its own message back.
    pub async fn publish(
        &self,
        channel: &str,
        payload: PayloadBuf,
        exclude_sender: bool,
    ) -> Result<(), ClientError> {
        let channel = channel.to_owned();
        ask(&self.inner.calls, |result| Call::Publish {
            channel,
            payload,
            exclude_sender,
            result,
        })
        .await
    }

    /// The client's events.
    pub fn events(&self) -> Events {
        Events {
            rx: self.inner.events.clone(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> ClientStats {
        *self
            .inner
            .shared
            .stats
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// True while the handshake is done and the connection is up.
    pub fn is_open(&self) -> bool {
        self.inner.shared.open.load(Ordering::Acquire)
    }

    /// Closes the connection (with a Close frame if open) and stops reconnecting. Returns
    /// once the driver has finished, which takes at most [`ClientOptions::close_timeout`]:
    /// writing what is queued, the Close frame and waiting for the server's WebSocket close
    /// all count against it, and a server that reads or answers nothing is dropped when it
    /// runs out.
    pub async fn close(&self) {
        self.inner.stop.close();
        // Resolves when the driver drops its end.
        let _ = self.inner.done.recv().await;
    }
}
