//! Language servers over the channel: editors reach real language servers (pylsp,
//! rust-analyzer, clojure-lsp …) that the host runs, one process per editor session.
//!
//! The module owns the events `lsp/initialize`, `lsp/request`, `lsp/response`,
//! `lsp/notification` (client → host) and `lsp/response`, `lsp/request`,
//! `lsp/notification`, `lsp/error` (host → client). They are plain events with map data, so
//! one handler set serves native clients and the sente-lite, Sente and JSON dialects alike
//! (PROTOCOL.md section 19). JSON-RPC payloads are carried as they are, apart from the id
//! spaces and URI roots the host translates.
//!
//! | module | job |
//! |---|---|
//! | [`settings`] | the `[lsp]` table: allowed clients, one table per language |
//! | [`framing`] | `Content-Length` framing of the servers' stdio (sans-IO decoder) |
//! | `process` | one server process: stdin writer, stdout reader, stderr drain, exit watch |
//! | `session` | one editor session: id maps, server requests, reconnect grace |
//! | [`uri`] | the client's virtual root ⇄ the server's `file://` root |
//! | [`documents`] | open documents and their text, replayed on reattach |
//! | [`wire`] | the events' payloads in every dialect |

pub mod documents;
pub mod framing;
mod process;
mod session;
pub mod settings;
pub mod uri;
pub mod wire;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;

pub use settings::{LanguageConfig, LspConfigError, LspSettings};
pub use wire::LspErrorKind;

use crate::ConnectionId;
use crate::handler::EventContext;
use crate::lifecycle::LifecycleEvent;
use crate::registry::lock;
use crate::server::ServerBuilder;
use process::ServerProcess;
use session::{ClientMessage, Input, Session, SessionSpec};
use uri::{Direction, UriMap};
use wire::{Inbound, PayloadForm};

/// Inputs waiting for one session's task (editor messages, attach and detach).
const SESSION_INPUTS: usize = 1024;

/// One session as [`LspService::sessions`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The editor's id for it.
    pub session_id: String,
    /// The language.
    pub language: String,
    /// The language server's process id.
    pub pid: u32,
    /// The connection the editor is on; `None` within the reconnect grace.
    pub attached: Option<ConnectionId>,
}

struct Entry {
    language: String,
    input: mpsc::Sender<Input>,
    attached: Option<ConnectionId>,
    pid: u32,
    generation: u64,
}

pub(crate) struct Inner {
    settings: LspSettings,
    sessions: Mutex<HashMap<String, Entry>>,
    next_generation: AtomicU64,
}

/// How long a server shutdown waits for the language servers to exit.
pub const SHUTDOWN_LIMIT: Duration = Duration::from_secs(12);

/// The language servers of one host. Cheap to clone; install with
/// [`ServerBuilder::with_lsp`].
#[derive(Clone)]
pub struct LspService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LspService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LspService")
            .field("languages", &self.inner.settings.languages.keys())
            .finish_non_exhaustive()
    }
}

impl LspService {
    /// A service for `settings` (validated by the server's settings already, or here).
    pub fn new(settings: LspSettings) -> Result<Self, LspConfigError> {
        settings.validate()?;
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                sessions: Mutex::new(HashMap::new()),
                next_generation: AtomicU64::new(1),
            }),
        })
    }

    /// The sessions alive now, with their server processes.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        let mut list: Vec<SessionInfo> = lock(&self.inner.sessions)
            .iter()
            .map(|(id, e)| SessionInfo {
                session_id: id.clone(),
                language: e.language.clone(),
                pid: e.pid,
                attached: e.attached,
            })
            .collect();
        list.sort_by(|a, b| a.session_id.cmp(&b.session_id));
        list
    }

    /// Shuts every server down (`shutdown`, `exit`, kill after a few seconds) and waits for
    /// them, at most `limit`.
    pub async fn shutdown(&self, limit: Duration) {
        let inputs: Vec<_> = lock(&self.inner.sessions)
            .values()
            .map(|e| e.input.clone())
            .collect();
        let deadline = tokio::time::Instant::now() + limit;
        for input in inputs {
            let _ = tokio::time::timeout_at(deadline, input.send(Input::Stop)).await;
        }
        while !lock(&self.inner.sessions).is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn on_initialize(&self, ctx: &EventContext) {
        let Some(inbound) = read_or_refuse(ctx) else {
            return;
        };
        let form = inbound.form;
        let Some(session_id) = inbound.session_id().map(str::to_owned) else {
            return refuse(
                ctx,
                form,
                None,
                LspErrorKind::BadPayload,
                "lsp/initialize needs :session-id",
            );
        };
        let fail = |kind, why: &str| refuse(ctx, form, Some(&session_id), kind, why);
        if !self.inner.settings.allows(&ctx.client_id) {
            return fail(
                LspErrorKind::NotAllowed,
                "this client may not use language servers",
            );
        }
        let Some(language) = inbound.text("language").map(str::to_owned) else {
            return fail(LspErrorKind::BadPayload, "lsp/initialize needs :language");
        };
        let Some(config) = self.inner.settings.languages.get(&language).cloned() else {
            return fail(
                LspErrorKind::UnknownLanguage,
                &format!("no language server for {language:?}"),
            );
        };
        let request_id = inbound.field("request-id").cloned();
        let mut sessions = lock(&self.inner.sessions);
        if let Some(entry) = sessions.get_mut(&session_id) {
            if entry.language != language {
                return fail(LspErrorKind::NoSession, "the session runs another language");
            }
            let attach = Input::Attach {
                connection: ctx.connection_id,
                form,
                request_id: request_id.clone(),
            };
            match entry.input.try_send(attach) {
                Ok(()) => {
                    entry.attached = Some(ctx.connection_id);
                    return;
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    return fail(LspErrorKind::Busy, "the session is not taking messages");
                }
                // The session ended a moment ago (its process exited): start afresh.
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    sessions.remove(&session_id);
                }
            }
        }
        if !config.enabled {
            return fail(
                LspErrorKind::LanguageDisabled,
                &format!("{language} is disabled"),
            );
        }
        let running = sessions.values().filter(|e| e.language == language).count();
        if running >= config.max_sessions {
            return fail(
                LspErrorKind::MaxSessions,
                &format!("{language} already has {running} sessions (max-sessions)"),
            );
        }
        let roots = match roots(&config, inbound.text("rootUri")) {
            Ok(roots) => roots,
            Err(why) => return fail(LspErrorKind::BadRoot, &why),
        };
        let process = match ServerProcess::spawn(
            &config,
            roots.dir.as_deref(),
            self.inner.settings.max_message_bytes,
            &format!("{language}/{session_id}"),
        ) {
            Ok(process) => process,
            Err(e) => {
                return fail(
                    LspErrorKind::SpawnFailed,
                    &format!("cannot start {:?}: {e}", config.command),
                );
            }
        };
        tracing::info!(%session_id, %language, pid = process.pid, "language server started");
        let generation = self.inner.next_generation.fetch_add(1, Ordering::Relaxed);
        let (input, inputs) = mpsc::channel(SESSION_INPUTS);
        sessions.insert(
            session_id.clone(),
            Entry {
                language: language.clone(),
                input,
                attached: Some(ctx.connection_id),
                pid: process.pid,
                generation,
            },
        );
        drop(sessions);
        let (initialize_params, workspace_folders) = initialize_params(&inbound, &roots);
        let spec = SessionSpec {
            session_id,
            language,
            config,
            uris: roots.map,
            initialize_params,
            workspace_folders,
            generation,
        };
        let session = Session::new(
            spec,
            ctx.server.clone(),
            self.inner.clone(),
            process,
            (ctx.connection_id, form),
            request_id,
        );
        tokio::spawn(session.run(inputs));
    }

    /// `lsp/request`, `lsp/response` and `lsp/notification` from an editor: queued to its
    /// session in arrival order (this runs in the handler's synchronous part).
    fn on_message(&self, ctx: &EventContext, kind: &str) {
        let Some(inbound) = read_or_refuse(ctx) else {
            return;
        };
        let form = inbound.form;
        let session_id = inbound.session_id().map(str::to_owned);
        let fail = |kind, why: &str| refuse(ctx, form, session_id.as_deref(), kind, why);
        let Some(id) = session_id.as_deref() else {
            return fail(
                LspErrorKind::BadPayload,
                &format!("{kind} needs :session-id"),
            );
        };
        let request_id = inbound.field("request-id").cloned();
        let method = inbound.text("method").map(str::to_owned);
        let params = inbound.field("params").cloned();
        let message = match (kind, request_id, method) {
            (wire::REQUEST, Some(id), Some(method)) => {
                ClientMessage::Request { id, method, params }
            }
            (wire::RESPONSE, Some(id), _) => ClientMessage::Response {
                id,
                result: inbound.map.get("result").cloned(),
                error: inbound.field("error").cloned(),
            },
            (wire::NOTIFICATION, _, Some(method)) => ClientMessage::Notification { method, params },
            _ => {
                return fail(
                    LspErrorKind::BadPayload,
                    &format!("{kind} needs :request-id and :method (a response: :request-id)"),
                );
            }
        };
        let sessions = lock(&self.inner.sessions);
        let Some(entry) = sessions
            .get(id)
            .filter(|e| e.attached == Some(ctx.connection_id))
        else {
            drop(sessions);
            return fail(
                LspErrorKind::NoSession,
                "no session with this id on this connection (send lsp/initialize)",
            );
        };
        if entry.input.try_send(Input::Client(message)).is_err() {
            drop(sessions);
            fail(
                LspErrorKind::Busy,
                "the session's queue is full; message not taken",
            );
        }
    }

    fn on_closed(&self, connection: ConnectionId) {
        let mut sessions = lock(&self.inner.sessions);
        for entry in sessions.values_mut() {
            if entry.attached == Some(connection) {
                entry.attached = None;
                let input = entry.input.clone();
                // Must not be lost to a full queue: waits on a task of its own.
                tokio::spawn(async move {
                    let _ = input.send(Input::Detach { connection }).await;
                });
            }
        }
    }
}

/// Tells the client why its event was not taken.
fn refuse(
    ctx: &EventContext,
    form: PayloadForm,
    session_id: Option<&str>,
    kind: LspErrorKind,
    why: &str,
) {
    tracing::debug!(
        connection = ctx.connection_id,
        error = kind.as_str(),
        why,
        "lsp event refused"
    );
    let body = wire::error_body(session_id, kind, why);
    let _ = ctx
        .server
        .send_to_connection(ctx.connection_id, wire::ERROR, wire::write(form, &body));
}

/// Where a session's server works and how URIs translate.
struct Roots {
    /// The server's root URI (`file://…/`).
    server_uri: Option<String>,
    /// Its directory, the process's working directory.
    dir: Option<std::path::PathBuf>,
    map: Option<UriMap>,
}

/// A configured `root` makes the client's `rootUri` (default `source://`) virtual; without
/// one the client's `rootUri` must be a `file://` URI and is used as it is.
fn roots(config: &LanguageConfig, client_root: Option<&str>) -> Result<Roots, String> {
    if let Some(dir) = &config.root {
        let server_uri = url::Url::from_directory_path(dir)
            .map_err(|()| format!("root {} is not a directory path", dir.display()))?
            .to_string();
        let client = client_root.unwrap_or("source://");
        return Ok(Roots {
            map: Some(UriMap::new(client, &server_uri)),
            server_uri: Some(server_uri),
            dir: Some(dir.clone()),
        });
    }
    match client_root {
        None => Ok(Roots {
            server_uri: None,
            dir: None,
            map: None,
        }),
        Some(uri) => {
            let dir = url::Url::parse(uri)
                .ok()
                .filter(|u| u.scheme() == "file")
                .and_then(|u| u.to_file_path().ok())
                .ok_or_else(|| {
                    format!("rootUri {uri:?} is not a file:// URI and the language has no root")
                })?;
            Ok(Roots {
                server_uri: Some(uri.to_owned()),
                dir: Some(dir),
                map: None,
            })
        }
    }
}

/// The `initialize` params: the client's own fields (capabilities, initializationOptions,
/// clientInfo, trace, locale …) with the roots, workspace folders and process id the host
/// decides. Also returns the workspace folders, for `workspace/workspaceFolders`.
fn initialize_params(inbound: &Inbound, roots: &Roots) -> (Value, Value) {
    let mut params = serde_json::Map::new();
    for (key, value) in &inbound.map {
        if !matches!(
            key.as_str(),
            "session-id" | "language" | "request-id" | "rootUri" | "rootPath" | "processId"
        ) && !value.is_null()
        {
            params.insert(key.clone(), value.clone());
        }
    }
    let mut params = Value::Object(params);
    if let Some(map) = &roots.map {
        map.map_value(&mut params, Direction::ToServer);
    }
    params["processId"] = json!(std::process::id());
    if !params["capabilities"].is_object() {
        params["capabilities"] = json!({});
    }
    let folders = match &roots.server_uri {
        Some(uri) => {
            params["rootUri"] = json!(uri);
            if let Some(dir) = &roots.dir {
                params["rootPath"] = json!(dir.to_string_lossy());
            }
            let name = roots
                .dir
                .as_ref()
                .and_then(|d| d.file_name())
                .map_or_else(|| "root".to_owned(), |n| n.to_string_lossy().into_owned());
            if !params["workspaceFolders"].is_array() {
                params["workspaceFolders"] = json!([{"uri": uri, "name": name}]);
            }
            params["workspaceFolders"].clone()
        }
        None => {
            params["rootUri"] = Value::Null;
            Value::Null
        }
    };
    (params, folders)
}

/// The event's payload read as an LSP message, or `None` after refusing it as
/// `bad-payload` (its form unknown, so the refusal goes as a Value).
fn read_or_refuse(ctx: &EventContext) -> Option<Inbound> {
    match Inbound::read(&ctx.payload) {
        Ok(inbound) => Some(inbound),
        Err(why) => {
            refuse(
                ctx,
                PayloadForm::Value,
                None,
                LspErrorKind::BadPayload,
                &why,
            );
            None
        }
    }
}

impl ServerBuilder {
    /// Serves the `lsp/*` events with `lsp`'s language servers, for every dialect.
    /// [`crate::Server::shutdown`] first sends every server `shutdown` and `exit` (killing
    /// those that have not exited after [`SHUTDOWN_LIMIT`]); a server dropped without
    /// `shutdown` kills them when their tasks are dropped.
    pub fn with_lsp(self, lsp: LspService) -> Self {
        let initialize = lsp.clone();
        let closed = lsp.clone();
        let stopping = lsp.clone();
        let mut builder = self
            .on_shutdown(move || async move { stopping.shutdown(SHUTDOWN_LIMIT).await })
            .on_event(wire::INITIALIZE, move |ctx| {
                initialize.on_initialize(&ctx);
                async {}
            })
            .on_lifecycle(move |event| {
                if let LifecycleEvent::Closed { connection_id, .. } = event {
                    closed.on_closed(*connection_id);
                }
            });
        for kind in [wire::REQUEST, wire::RESPONSE, wire::NOTIFICATION] {
            let lsp = lsp.clone();
            builder = builder.on_event(kind, move |ctx| {
                lsp.on_message(&ctx, kind);
                async {}
            });
        }
        builder
    }
}
