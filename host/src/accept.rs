//! The listener: accepts TCP connections, admits them ([`crate::admission`]), and serves
//! HTTP/1 on each until it upgrades to a WebSocket, closes, or runs out of time.
//!
//! Before the upgrade a peer has proved nothing, so every HTTP connection runs under time
//! limits: its request headers must arrive within `header-read-timeout-ms` (counted from the
//! accept, and again from the end of each response), and a kept-alive connection waiting for
//! its next request is closed after `idle-keepalive-timeout-ms`. Shutting down closes idle
//! HTTP connections at once and lets a request in progress finish.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tower_service::Service as _;

use crate::admission::{HalfOpen, HandshakeSlot};
use crate::connection::shared_read::SharedRead;
use crate::server::Shared;

/// Largest request head (request line and headers) an HTTP connection may buffer. A
/// WebSocket upgrade needs well under 1 KiB; hyper's own default is ~400 KiB, which a table
/// of half-open connections would multiply.
const MAX_REQUEST_HEAD_BYTES: usize = 16 * 1024;

/// Pause after an accept error that is not about one connection (out of file descriptors):
/// retrying at once would spin while nothing can change.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Accepts connections until shutdown.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    router: Router,
) -> std::io::Result<()> {
    let http = http1_builder(&shared);
    loop {
        let accepted = tokio::select! {
            () = shared.shutdown.cancelled() => return Ok(()),
            accepted = listener.accept() => accepted,
        };
        let (tcp, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_per_connection(&e) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let (slot, half_open) = match shared.admission.admit(remote.ip().to_canonical()) {
            Ok(admitted) => admitted,
            Err(refused) => {
                tracing::debug!(%remote, %refused, "connection closed at accept");
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        shared.tracker.spawn(serve_http(
            shared.clone(),
            &http,
            tcp,
            router.clone(),
            remote,
            slot,
            half_open,
        ));
    }
}

fn http1_builder(shared: &Shared) -> http1::Builder {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(shared.settings.header_read_timeout())
        .keep_alive(true)
        .max_buf_size(MAX_REQUEST_HEAD_BYTES);
    http
}

/// Serves one HTTP connection until it upgrades or closes; the half-open slot is held until
/// then.
fn serve_http(
    shared: Arc<Shared>,
    http: &http1::Builder,
    tcp: TcpStream,
    router: Router,
    remote: SocketAddr,
    slot: HandshakeSlot,
    mut half_open: HalfOpen,
) -> impl Future<Output = ()> + Send + 'static {
    let activity = Arc::new(Activity::default());
    let service = HttpService {
        router,
        remote,
        slot: Arc::new(slot),
        activity: activity.clone(),
    };
    let conn = http
        .serve_connection(TokioIo::new(SharedRead::new(tcp)), service)
        .with_upgrades();
    let idle_timeout = shared.settings.idle_keepalive_timeout();
    async move {
        let mut conn = std::pin::pin!(conn);
        let mut closing = false;
        loop {
            let idle_deadline = activity.idle_since().map(|since| since + idle_timeout);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%remote, error = %e, "HTTP connection ended");
                    }
                    return;
                }
                () = half_open.shed() => {
                    tracing::debug!(%remote, "half-open connection shed for a newer one");
                    return;
                }
                () = shared.shutdown.cancelled(), if !closing => {
                    if !activity.is_busy() {
                        // No request being handled: close now. (hyper's graceful shutdown
                        // would wait out the header-read timeout of a half-sent request.)
                        return;
                    }
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
                () = activity.changed.notified() => {}
                () = sleep_until(idle_deadline), if !closing => {
                    tracing::debug!(%remote, "idle keep-alive connection closed");
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// Where an HTTP connection is between its requests.
#[derive(Debug, Clone, Copy, Default)]
enum Phase {
    /// No request yet (the header-read timeout covers this).
    #[default]
    Fresh,
    /// A request is being handled.
    Busy,
    /// Kept alive after a response, since then.
    Idle(Instant),
}

/// The connection's phase, shared between its service and its task.
#[derive(Debug, Default)]
struct Activity {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Activity {
    fn idle_since(&self) -> Option<Instant> {
        match *self.lock() {
            Phase::Idle(since) => Some(since),
            Phase::Fresh | Phase::Busy => None,
        }
    }

    fn is_busy(&self) -> bool {
        matches!(*self.lock(), Phase::Busy)
    }

    fn set(&self, phase: Phase) {
        *self.lock() = phase;
        self.changed.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Marks a request in progress; the connection is idle again when it is dropped.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.set(Phase::Idle(Instant::now()));
    }
}

/// The per-connection service: hands each request to the router with what the handlers need
/// to know about the connection (peer address, handshake slot).
struct HttpService {
    router: Router,
    remote: SocketAddr,
    slot: Arc<HandshakeSlot>,
    activity: Arc<Activity>,
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for HttpService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ConnectInfo(self.remote));
        req.extensions_mut().insert(self.slot.clone());
        self.activity.set(Phase::Busy);
        let busy = Busy(self.activity.clone());
        // The router is always ready; `call` without `poll_ready` is its documented use.
        let response = self.router.clone().call(req);
        Box::pin(async move {
            let response = response.await;
            drop(busy);
            response
        })
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Errors that concern only the connection being accepted; the listener is fine.
fn is_per_connection(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
