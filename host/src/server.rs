//! Building, running and stopping the server.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sentelite_core::ServerConfig;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::accept;
use crate::admission::Admission;
use crate::clock::Clock;
use crate::dialect::connection::uidport::UidPorts;
use crate::error::ServerError;
use crate::handle::ServerHandle;
use crate::handler::{
    EventContext, Handlers, RequestContext, Responder, event_handler, request_handler,
};
use crate::lifecycle::{Lifecycle, LifecycleEvent, LifecycleHook};
use crate::observer::{ChannelPublish, Observers};
use crate::pubsub::{Channels, Limits};
use crate::registry::Registry;
use crate::settings::ServerSettings;
use crate::transport;

/// Default listen address of `sentelite serve`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7700";
/// Default data directory of `sentelite serve`.
pub const DEFAULT_DATA_DIR: &str = "./sentelite-data";

/// How long shutdown waits for connections to finish their close before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Work a module does when the server shuts down, before connections are closed.
type ShutdownHook = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// State shared by the HTTP layer, every connection task and every [`ServerHandle`].
pub(crate) struct Shared {
    pub(crate) settings: ServerSettings,
    pub(crate) session_config: ServerConfig,
    pub(crate) data_dir: PathBuf,
    pub(crate) registry: Mutex<Registry>,
    pub(crate) channels: Mutex<Channels>,
    pub(crate) handlers: Handlers,
    pub(crate) observers: Observers,
    pub(crate) lifecycle: Lifecycle,
    pub(crate) clock: Clock,
    pub(crate) next_id: AtomicU64,
    pub(crate) handshaking: AtomicUsize,
    pub(crate) admission: Arc<Admission>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tracker: TaskTracker,
    /// Open connections per Sente uid, for `chsk/uidport-open` / `-close`.
    pub(crate) uidports: UidPorts,
}

/// Configures a [`Server`]; finish with [`ServerBuilder::bind`].
pub struct ServerBuilder {
    listen: String,
    data_dir: PathBuf,
    settings: ServerSettings,
    token: Option<Option<String>>,
    handlers: Handlers,
    observers: Observers,
    hooks: Vec<LifecycleHook>,
    /// HTTP routes of modules (the log API, …), served beside `/ws` and `/health`.
    routes: Vec<axum::Router>,
    /// Run by [`Server::shutdown`] first, in the order added.
    shutdown_hooks: Vec<ShutdownHook>,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Default for ServerBuilder {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.to_owned(),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            settings: ServerSettings::default(),
            token: None,
            handlers: Handlers::default(),
            observers: Observers::default(),
            hooks: Vec::new(),
            routes: Vec::new(),
            shutdown_hooks: Vec::new(),
        }
    }
}

impl ServerBuilder {
    /// Address to listen on (`host:port`; port 0 picks a free one).
    pub fn listen(mut self, addr: impl ToString) -> Self {
        self.listen = addr.to_string();
        self
    }

    /// Directory for the server's data; created at bind.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = dir.into();
        self
    }

    /// Limits and timings (a later [`Self::token`] overrides the settings' token).
    pub fn config(mut self, settings: ServerSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Shared secret clients must send in their Hello; `None` admits anyone.
    pub fn token(mut self, token: Option<String>) -> Self {
        self.token = Some(token);
        self
    }

    /// Handles one-way events with this id. See [`crate::handler`] for ordering.
    pub fn on_event<F, Fut>(mut self, event: &str, handler: F) -> Self
    where
        F: Fn(EventContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.handlers
            .events
            .insert(event.into(), event_handler(handler));
        self
    }

    /// Answers requests with this id. Requests without a handler are answered
    /// [`sentelite_core::Status::UNSUPPORTED`].
    pub fn on_request<F, Fut>(mut self, event: &str, handler: F) -> Self
    where
        F: Fn(RequestContext, Responder) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.handlers
            .requests
            .insert(event.into(), request_handler(handler));
        self
    }

    /// Calls `observer` for every message published on `channel`, by any connection or the
    /// server, whether or not the channel has subscribers. It runs synchronously inside the
    /// publish: keep it short. See [`crate::observer`].
    pub fn observe_channel<F>(mut self, channel: &str, observer: F) -> Self
    where
        F: Fn(&ChannelPublish<'_>) + Send + Sync + 'static,
    {
        self.observers.add(channel, Arc::new(observer));
        self
    }

    /// Calls `hook` for every lifecycle event, synchronously on the connection's task: keep
    /// it short.
    pub fn on_lifecycle<F>(mut self, hook: F) -> Self
    where
        F: Fn(&LifecycleEvent) + Send + Sync + 'static,
    {
        self.hooks.push(Arc::new(hook));
        self
    }

    /// Serves `router`'s routes beside `/ws` and `/health` (paths must not collide).
    pub fn http_routes(mut self, router: axum::Router) -> Self {
        self.routes.push(router);
        self
    }

    /// Runs `hook` when [`Server::shutdown`] starts, before any connection is closed, so a
    /// module can stop what it runs on the connections' behalf (language servers get
    /// `shutdown` and `exit`) while its peers are still attached. Hooks run one after the
    /// other in the order added; each should bound its own wait. Dropping the [`Server`]
    /// without calling `shutdown` skips them.
    pub fn on_shutdown<F, Fut>(mut self, hook: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.shutdown_hooks
            .push(Box::new(move || Box::pin(hook()) as Pin<Box<_>>));
        self
    }

    /// Validates the settings, creates the data directory, binds the listener and starts
    /// serving.
    pub async fn bind(self) -> Result<Server, ServerError> {
        let mut settings = self.settings;
        if let Some(token) = self.token {
            settings.token = token;
        }
        settings.validate()?;
        std::fs::create_dir_all(&self.data_dir).map_err(|source| ServerError::DataDir {
            path: self.data_dir.clone(),
            source,
        })?;
        let listener = tokio::net::TcpListener::bind(&self.listen)
            .await
            .map_err(|source| ServerError::Bind {
                addr: self.listen.clone(),
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: self.listen.clone(),
            source,
        })?;
        let limits = Limits {
            per_conn: usize::from(settings.max_subscriptions_per_conn),
            per_channel: settings.max_subscribers_per_channel,
            name_bytes: settings.max_channel_name_bytes,
        };
        let admission =
            Admission::new(settings.max_half_open, settings.max_handshaking_per_address);
        let shared = Arc::new(Shared {
            session_config: settings.session_config(),
            settings,
            data_dir: self.data_dir,
            registry: Mutex::new(Registry::default()),
            channels: Mutex::new(Channels::new(limits)),
            handlers: self.handlers,
            observers: self.observers,
            lifecycle: Lifecycle::new(self.hooks),
            clock: Clock::new(),
            next_id: AtomicU64::new(1),
            handshaking: AtomicUsize::new(0),
            admission,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            uidports: UidPorts::default(),
        });
        let router = transport::router(shared.clone(), self.routes);
        let serve = tokio::spawn(accept::serve(listener, shared.clone(), router));
        tracing::info!(%local_addr, "listening");
        Ok(Server {
            local_addr,
            handle: ServerHandle { shared },
            serve: Some(serve),
            shutdown_hooks: self.shutdown_hooks,
        })
    }
}

/// A running server. Dropping it stops accepting and closes every connection without
/// waiting; [`Server::shutdown`] does the same and waits.
pub struct Server {
    local_addr: SocketAddr,
    handle: ServerHandle,
    serve: Option<JoinHandle<std::io::Result<()>>>,
    shutdown_hooks: Vec<ShutdownHook>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A builder with the defaults.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// The address actually bound (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle for sending, publishing and looking up connections.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// A receiver of lifecycle events from now on.
    pub fn lifecycle(&self) -> broadcast::Receiver<LifecycleEvent> {
        self.handle.lifecycle()
    }

    /// Runs the modules' shutdown hooks ([`ServerBuilder::on_shutdown`]), then stops
    /// accepting, closes every connection with `GOING_AWAY`, and waits for the connection
    /// tasks to finish (each at most its write timeout plus the close linger; the whole wait
    /// at most a few seconds).
    pub async fn shutdown(mut self) {
        for hook in std::mem::take(&mut self.shutdown_hooks) {
            hook().await;
        }
        let shared = &self.handle.shared;
        shared.shutdown.cancel();
        shared.tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, shared.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("connections still closing after the shutdown grace period");
        }
        if let Some(serve) = self.serve.take() {
            match tokio::time::timeout(SHUTDOWN_GRACE, serve).await {
                Ok(Ok(Err(e))) => tracing::warn!(error = %e, "listener ended with an error"),
                Ok(_) => {}
                Err(_) => tracing::warn!("HTTP connections still open after the grace period"),
            }
        }
        tracing::info!("shut down");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.handle.shared.shutdown.cancel();
    }
}
