//! nREPL over the channel: editors (CIDER, Calva, `nrepl.cmdline`, `nr`) connect to a bencode
//! nREPL endpoint inside the host and evaluate on a connected client that declared an
//! evaluator — a board, the virtual device, a browser.
//!
//! The host owns the sessions: `clone`, `close`, `ls-sessions`, `describe` and
//! `sentelite/select` are answered here; every other op travels to the session's client as
//! the event `nrepl/request` (its map untouched), and the client's responses come back as
//! the request's parts (native) or `nrepl/response` events (text dialects), until one whose
//! `status` contains `done`. PROTOCOL.md section 20.
//!
//! | module | job |
//! |---|---|
//! | [`bencode`] | incremental framing of the TCP stream, bencode ⇄ JSON maps |
//! | `sessions` | session table: client, current namespace, requests in flight |
//! | `endpoint` | TCP listener, one task per editor, `.nrepl-port` |
//! | `proxy` | ops the host answers, forwarding the rest, ends for every request |
//! | `settings` | the settings file's `[nrepl]` table: the endpoint's limits for the binary |
//! | `upstream` | the reverse direction: a client's `nrepl/browser-request` to an upstream nREPL server |
//! | [`wire`] | event names and response shapes |

pub mod bencode;
mod endpoint;
mod proxy;
mod sessions;
mod settings;
mod upstream;
pub mod wire;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};
use tokio::sync::mpsc;

pub use endpoint::NreplEndpoint;
pub use settings::NreplSettings;

use crate::lifecycle::LifecycleEvent;
use crate::registry::lock;
use crate::server::ServerBuilder;
use crate::{ConnectionId, ServerHandle};
use sessions::Sessions;

/// The address `--nrepl` listens on when given without one.
pub const DEFAULT_NREPL_ADDR: &str = "127.0.0.1:7888";

/// How the endpoint behaves.
#[derive(Debug, Clone)]
pub struct NreplOptions {
    /// Where editors connect.
    pub listen: SocketAddr,
    /// Largest bencode message an editor may send; a larger one closes its connection.
    pub max_message_bytes: usize,
    /// How long a forwarded request may take unless the request's `eval-timeout` (ms) says
    /// otherwise; then it ends with `eval-timeout`.
    pub eval_timeout: Duration,
    /// Sessions with nothing in flight for this long are closed.
    pub session_ttl: Duration,
    /// Evaluations (`eval`, `load-file`) one session may have in flight.
    pub max_evals_per_session: usize,
    /// Sessions the host keeps at once (cloned and implicit, of every editor); past it
    /// `clone` and session-less requests fail with `session-limit`.
    pub max_sessions: usize,
    /// Editor connections at once; a connection past it gets one `too-many-connections`
    /// message and is closed.
    pub max_connections: usize,
    /// `out` and `err` bytes one request may produce unless its `max-output-size` says
    /// otherwise; the rest is cut and the request's status gets `output-truncated`.
    pub max_output_bytes: usize,
    /// Where to write the port for editors to find (removed on shutdown); `None` writes
    /// nothing.
    pub port_file: Option<PathBuf>,
    /// The nREPL server (`host:port`) clients' `nrepl/browser-request`s go to; `None`
    /// answers them with an error.
    pub upstream: Option<String>,
}

impl NreplOptions {
    /// Defaults for `listen`: 1 MiB messages, 60 s per request, one hour of idle sessions, 5
    /// evaluations per session, 256 sessions, 32 editor connections, 1 MiB of output per
    /// request, `.nrepl-port` in the working directory.
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            max_message_bytes: 1 << 20,
            eval_timeout: Duration::from_secs(60),
            session_ttl: Duration::from_secs(3600),
            max_evals_per_session: 5,
            max_sessions: 256,
            max_connections: 32,
            max_output_bytes: 1 << 20,
            port_file: Some(PathBuf::from(".nrepl-port")),
            upstream: None,
        }
    }
}

/// A client that evaluates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluator {
    /// Its connection now.
    pub connection_id: ConnectionId,
    /// Its stable identity, which sessions point at.
    pub client_id: String,
    since: SystemTime,
}

/// Key of a text client's request in flight: connection, session, nREPL id.
type TextKey = (ConnectionId, String, String);

pub(crate) struct Inner {
    options: NreplOptions,
    server: OnceLock<ServerHandle>,
    sessions: Mutex<Sessions>,
    /// Text clients that sent `nrepl/evaluator`: connection → (client id, when).
    declared: Mutex<HashMap<ConnectionId, (String, SystemTime)>>,
    /// Where a text client's `nrepl/response` goes.
    text_pending: Mutex<HashMap<TextKey, mpsc::Sender<Map<String, Value>>>>,
}

/// The nREPL endpoint of one host. Install with [`ServerBuilder::with_nrepl`], then
/// [`NreplService::start`] once the server is bound.
#[derive(Clone)]
pub struct NreplService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for NreplService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NreplService")
            .field("listen", &self.inner.options.listen)
            .finish_non_exhaustive()
    }
}

impl NreplService {
    /// A service with `options`; nothing listens until [`Self::start`].
    pub fn new(options: NreplOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                sessions: Mutex::new(Sessions::new(options.max_sessions)),
                options,
                server: OnceLock::new(),
                declared: Mutex::new(HashMap::new()),
                text_pending: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Binds the endpoint, writes the port file and starts taking editors.
    pub async fn start(&self, server: ServerHandle) -> std::io::Result<NreplEndpoint> {
        let _ = self.inner.server.set(server);
        endpoint::start(self.inner.clone()).await
    }

    /// The clients that evaluate now, oldest first.
    pub fn evaluators(&self) -> Vec<Evaluator> {
        self.inner.evaluators()
    }

    /// Session ids with the client each evaluates on.
    pub fn sessions(&self) -> Vec<(String, Option<String>)> {
        lock(&self.inner.sessions).list()
    }

    fn on_response(&self, connection: ConnectionId, payload: &sentelite_core::frame::PayloadBuf) {
        let Some(message) = wire::from_payload(payload) else {
            tracing::debug!(connection, "nrepl/response that is not a map, dropped");
            return;
        };
        let key = (
            connection,
            text(&message, "session").unwrap_or_default().to_owned(),
            text(&message, "id").unwrap_or_default().to_owned(),
        );
        let pending = lock(&self.inner.text_pending).get(&key).cloned();
        match pending {
            Some(tx) => {
                if tx.try_send(message).is_err() {
                    tracing::warn!(
                        connection,
                        "nrepl/response for a request that cannot take more, dropped"
                    );
                }
            }
            None => tracing::debug!(
                connection,
                "nrepl/response for no request in flight, dropped"
            ),
        }
    }
}

impl NreplService {
    /// A native client's `nrepl/browser-request`: every upstream response as one part.
    async fn on_browser_request(
        options: NreplOptions,
        ctx: crate::RequestContext,
        mut responder: crate::Responder,
    ) {
        let Some(message) = wire::from_payload(&ctx.payload) else {
            let why = sentelite_core::frame::PayloadBuf::Bytes(
                b"nrepl/browser-request needs an nREPL message map".to_vec(),
            );
            let _ = responder.fail(why).await;
            return;
        };
        let timeout = ctx.timeout.unwrap_or(options.eval_timeout);
        let mut responses = upstream::forward(
            options.upstream,
            message,
            options.max_message_bytes,
            timeout,
        );
        loop {
            tokio::select! {
                () = responder.cancelled() => return,
                response = responses.recv() => match response {
                    Some(response) => {
                        if responder.part(wire::to_payload(&response)).await.is_err() {
                            return;
                        }
                    }
                    None => break,
                },
            }
        }
        let _ = responder.ok(sentelite_core::frame::PayloadBuf::Empty).await;
    }

    /// A text client's `nrepl/browser-request` event: every upstream response as an
    /// `nrepl/browser-response` event.
    fn on_browser_event(&self, ctx: &crate::EventContext) {
        let Some(message) = wire::from_payload(&ctx.payload) else {
            tracing::debug!(
                connection = ctx.connection_id,
                "nrepl/browser-request that is not a map, dropped"
            );
            return;
        };
        let options = &self.inner.options;
        let mut responses = upstream::forward(
            options.upstream.clone(),
            message,
            options.max_message_bytes,
            options.eval_timeout,
        );
        let (server, connection) = (ctx.server.clone(), ctx.connection_id);
        tokio::spawn(async move {
            while let Some(response) = responses.recv().await {
                if server
                    .send_to_connection(
                        connection,
                        wire::BROWSER_RESPONSE,
                        wire::to_payload(&response),
                    )
                    .is_err()
                {
                    return;
                }
            }
        });
    }
}

impl Inner {
    fn server(&self) -> Option<&ServerHandle> {
        self.server.get()
    }

    /// Clients with the NREPL capability bit or an `nrepl/evaluator` declaration, oldest
    /// first.
    fn evaluators(&self) -> Vec<Evaluator> {
        let Some(server) = self.server() else {
            return Vec::new();
        };
        let mut list: Vec<Evaluator> = server
            .connections()
            .into_iter()
            .filter(|c| c.capabilities & sentelite_core::frame::capability::NREPL != 0)
            .map(|c| Evaluator {
                connection_id: c.connection_id,
                client_id: c.client_id.to_string(),
                since: c.connected_since,
            })
            .collect();
        for (connection_id, (client_id, since)) in lock(&self.declared).iter() {
            if !list.iter().any(|e| e.connection_id == *connection_id) {
                list.push(Evaluator {
                    connection_id: *connection_id,
                    client_id: client_id.clone(),
                    since: *since,
                });
            }
        }
        list.sort_by_key(|e| (e.since, e.connection_id));
        list
    }

    /// The newest connection of `client_id` that evaluates.
    fn connection_of(&self, client_id: &str) -> Option<ConnectionId> {
        self.evaluators()
            .into_iter()
            .rev()
            .find(|e| e.client_id == client_id)
            .map(|e| e.connection_id)
    }

    /// The client a new session evaluates on: the newest evaluator.
    fn default_client(&self) -> Option<String> {
        self.evaluators().pop().map(|e| e.client_id)
    }
}

fn text<'a>(message: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    message.get(key).and_then(Value::as_str)
}

impl ServerBuilder {
    /// Serves the `nrepl/*` events for `nrepl`'s endpoint, for every dialect.
    pub fn with_nrepl(self, nrepl: NreplService) -> Self {
        let responses = nrepl.clone();
        let declared = nrepl.clone();
        let closed = nrepl.clone();
        let upstream_requests = nrepl.clone();
        let upstream_events = nrepl;
        self.on_request(wire::BROWSER_REQUEST, move |ctx, responder| {
            NreplService::on_browser_request(
                upstream_requests.inner.options.clone(),
                ctx,
                responder,
            )
        })
        .on_event(wire::BROWSER_REQUEST, move |ctx| {
            upstream_events.on_browser_event(&ctx);
            async {}
        })
        .on_event(wire::RESPONSE, move |ctx| {
            responses.on_response(ctx.connection_id, &ctx.payload);
            async {}
        })
        .on_event(wire::EVALUATOR, move |ctx| {
            lock(&declared.inner.declared).insert(
                ctx.connection_id,
                (ctx.client_id.to_string(), SystemTime::now()),
            );
            async {}
        })
        .on_lifecycle(move |event| {
            if let LifecycleEvent::Closed { connection_id, .. } = event {
                lock(&closed.inner.declared).remove(connection_id);
            }
        })
    }
}
