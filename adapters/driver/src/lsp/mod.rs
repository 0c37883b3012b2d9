//! Language servers run by the host, used from Rust: [`LspSession`] talks JSON-RPC with one
//! server process through the `lsp/*` events (PROTOCOL.md section 19).
//!
//! The application keeps reading its [`Client`]'s events and hands each one to
//! [`LspClient::route`] first, the way blob directives go to `serve_directive`: `lsp/*`
//! events are taken, everything else is handed back. On reconnect `route` rejoins every live
//! session (an `lsp/initialize` with the same session id, within the host's grace the same
//! server process with its open documents); on a close the session's requests in flight end
//! with [`LspError::Closed`].
//!
//! Payloads travel as JSON text, so the host answers this client in JSON too. Large answers
//! (rust-analyzer's completion lists run to hundreds of KB) need a `max_frame` in the
//! [`crate::ClientOptions`] and the server's `max-frame-bytes` to match. Calls do not time
//! out by themselves: bound them with the runtime's timeout.
//!
//! ```no_run
//! # async fn demo(client: sentelite_driver::Client) -> Result<(), sentelite_driver::lsp::LspError> {
//! use sentelite_driver::lsp::{LspClient, LspSession};
//! let lsp = LspClient::new(client.clone());
//! let events = client.events();
//! let router = lsp.clone();
//! // In the task that reads events: `if let Some(event) = router.route(event).await { … }`
//! let session = LspSession::start(&lsp, "python", Some("source://")).await?;
//! let hover = session
//!     .request("textDocument/hover", serde_json::json!({
//!         "textDocument": {"uri": "source://main.py"},
//!         "position": {"line": 0, "character": 1}}))
//!     .await?;
//! # let _ = (events, hover);
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_channel::{Receiver, Sender};
use sentelite_core::frame::PayloadBuf;
use serde_json::{Value, json};

use crate::{Client, ClientError, ClientEvent};

/// Messages from the server kept for a slow reader of [`LspSession::messages`]; more are
/// counted in [`LspSession::dropped`] and dropped.
const MESSAGE_QUEUE: usize = 1024;

/// Why an LSP call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LspError {
    /// The language server answered with a JSON-RPC error.
    #[error("language server error {code}: {message}")]
    Server {
        /// JSON-RPC error code (-32800 for a cancelled request).
        code: i64,
        /// Its message.
        message: String,
        /// Its data, if any.
        data: Option<Value>,
    },
    /// The host refused (`lsp/error`): `kind` is one of the `error` texts of PROTOCOL.md
    /// section 19 (`not-allowed`, `max-sessions`, `server-exited`, …).
    #[error("{kind}: {message}")]
    Refused {
        /// The error's kind.
        kind: String,
        /// Detail.
        message: String,
    },
    /// The connection closed before the answer came.
    #[error("the connection closed")]
    Closed,
    /// The event could not be sent.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Something the language server sent that is not an answer to this client's request.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    /// A notification (`textDocument/publishDiagnostics`, `$/progress`, …).
    Notification {
        /// Its method.
        method: String,
        /// Its params, if any.
        params: Option<Value>,
    },
    /// A request the editor must answer with [`LspSession::respond`]
    /// (`window/workDoneProgress/create`, `workspace/configuration`, …).
    Request {
        /// The server's id, as it sent it.
        id: Value,
        /// Its method.
        method: String,
        /// Its params, if any.
        params: Option<Value>,
    },
    /// The host reported a failure of the session (`server-exited`, …); the session is
    /// gone and may be started again.
    Error(LspError),
}

type Answer = Result<Value, LspError>;

struct SessionSlot {
    language: String,
    root: Option<String>,
    capabilities: Value,
    /// The answer the `lsp/initialize` in flight waits for.
    initializing: Option<Sender<Answer>>,
    pending: HashMap<String, Sender<Answer>>,
    messages: Sender<ServerMessage>,
    dropped: Arc<AtomicU64>,
}

struct Shared {
    client: Client,
    sessions: Mutex<HashMap<String, SessionSlot>>,
    next_session: AtomicU64,
}

/// Routes `lsp/*` events to this client's sessions. Cheap to clone.
#[derive(Clone)]
pub struct LspClient {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for LspClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LspClient").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn payload(body: &Value) -> PayloadBuf {
    PayloadBuf::Json(body.to_string())
}

fn read(payload: &PayloadBuf) -> Option<Value> {
    match payload {
        PayloadBuf::Json(text) => serde_json::from_str(text).ok(),
        _ => None,
    }
}

impl LspClient {
    /// Sessions over `client`.
    pub fn new(client: Client) -> Self {
        Self {
            shared: Arc::new(Shared {
                client,
                sessions: Mutex::new(HashMap::new()),
                next_session: AtomicU64::new(1),
            }),
        }
    }

    /// Takes `lsp/*` events (returns `None`) and hands every other event back. After
    /// [`ClientEvent::Opened`] (handed back too) every live session is rejoined; after
    /// [`ClientEvent::Closed`] their requests in flight fail with [`LspError::Closed`].
    pub async fn route(&self, event: ClientEvent) -> Option<ClientEvent> {
        match &event {
            ClientEvent::Message {
                event: name,
                payload,
            } if name.starts_with("lsp/") => {
                if let Some(body) = read(payload) {
                    self.deliver(name, body);
                }
                None
            }
            ClientEvent::Opened { .. } => {
                self.rejoin().await;
                Some(event)
            }
            ClientEvent::Closed { .. } => {
                for slot in lock(&self.shared.sessions).values_mut() {
                    for (_, tx) in slot.pending.drain() {
                        let _ = tx.try_send(Err(LspError::Closed));
                    }
                }
                Some(event)
            }
            _ => Some(event),
        }
    }

    async fn rejoin(&self) {
        let bodies: Vec<Value> = lock(&self.shared.sessions)
            .iter()
            .map(|(id, slot)| initialize_body(id, slot))
            .collect();
        for body in bodies {
            let _ = self
                .shared
                .client
                .send("lsp/initialize", payload(&body))
                .await;
        }
    }

    fn deliver(&self, event: &str, body: Value) {
        let Some(session) = body["session-id"].as_str() else {
            return;
        };
        let mut sessions = lock(&self.shared.sessions);
        let Some(slot) = sessions.get_mut(session) else {
            return;
        };
        let forward = |slot: &SessionSlot, message| {
            if slot.messages.try_send(message).is_err() {
                slot.dropped.fetch_add(1, Ordering::Relaxed);
            }
        };
        match event {
            "lsp/response" if body["method"] == "initialize" => {
                if let Some(tx) = slot.initializing.take() {
                    let _ = tx.try_send(Ok(body["result"].clone()));
                }
            }
            "lsp/response" => {
                let key = body["request-id"].to_string();
                if let Some(tx) = slot.pending.remove(&key) {
                    let _ = tx.try_send(answer(&body));
                }
            }
            "lsp/request" => forward(
                slot,
                ServerMessage::Request {
                    id: body["request-id"].clone(),
                    method: body["method"].as_str().unwrap_or("").to_owned(),
                    params: body.get("params").cloned(),
                },
            ),
            "lsp/notification" => forward(
                slot,
                ServerMessage::Notification {
                    method: body["method"].as_str().unwrap_or("").to_owned(),
                    params: body.get("params").cloned(),
                },
            ),
            "lsp/error" => {
                let error = LspError::Refused {
                    kind: body["error"].as_str().unwrap_or("").to_owned(),
                    message: body["message"].as_str().unwrap_or("").to_owned(),
                };
                if let Some(tx) = slot.initializing.take() {
                    let _ = tx.try_send(Err(error.clone()));
                }
                for (_, tx) in slot.pending.drain() {
                    let _ = tx.try_send(Err(error.clone()));
                }
                forward(slot, ServerMessage::Error(error));
            }
            _ => {}
        }
    }
}

fn initialize_body(session_id: &str, slot: &SessionSlot) -> Value {
    let mut body = json!({
        "session-id": session_id,
        "language": slot.language,
        "capabilities": slot.capabilities,
    });
    if let Some(root) = &slot.root {
        body["rootUri"] = json!(root);
    }
    body
}

fn answer(body: &Value) -> Answer {
    match body.get("error").filter(|e| !e.is_null()) {
        Some(error) => Err(LspError::Server {
            code: error["code"].as_i64().unwrap_or(0),
            message: error["message"].as_str().unwrap_or("").to_owned(),
            data: error.get("data").cloned(),
        }),
        None => Ok(body.get("result").cloned().unwrap_or(Value::Null)),
    }
}

/// One language server session.
pub struct LspSession {
    lsp: LspClient,
    id: String,
    next_request: AtomicI64,
    messages: Receiver<ServerMessage>,
    dropped: Arc<AtomicU64>,
    initialize_result: Value,
}

impl std::fmt::Debug for LspSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LspSession")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A request in flight: await [`PendingRequest::response`], or cancel it with
/// [`LspSession::cancel`].
#[derive(Debug)]
pub struct PendingRequest {
    id: Value,
    rx: Receiver<Answer>,
}

impl PendingRequest {
    /// This client's id for it.
    pub fn id(&self) -> &Value {
        &self.id
    }

    /// The response.
    pub async fn response(self) -> Result<Value, LspError> {
        self.rx.recv().await.unwrap_or(Err(LspError::Closed))
    }
}

impl LspSession {
    /// Starts a session of `language` (a `[lsp.<language>]` table on the host) with the
    /// given root (a virtual root like `source://` when the host maps it onto a directory, or
    /// a `file://` URI), and the usual editor capabilities.
    pub async fn start(
        lsp: &LspClient,
        language: &str,
        root: Option<&str>,
    ) -> Result<Self, LspError> {
        let capabilities = json!({
            "window": {"workDoneProgress": true},
            "workspace": {"configuration": true},
            "textDocument": {
                "hover": {"contentFormat": ["markdown", "plaintext"]},
                "completion": {"completionItem": {"snippetSupport": false}},
                "publishDiagnostics": {},
            },
        });
        Self::start_with(lsp, language, root, capabilities).await
    }

    /// [`Self::start`] with the editor's own `capabilities`.
    pub async fn start_with(
        lsp: &LspClient,
        language: &str,
        root: Option<&str>,
        capabilities: Value,
    ) -> Result<Self, LspError> {
        let n = lsp.shared.next_session.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        // Unguessable enough to keep other clients from joining it by accident.
        let id = format!("rs-{nanos:x}-{n}");
        let (tx, rx) = async_channel::bounded(1);
        let (messages_tx, messages) = async_channel::bounded(MESSAGE_QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let slot = SessionSlot {
            language: language.to_owned(),
            root: root.map(str::to_owned),
            capabilities,
            initializing: Some(tx),
            pending: HashMap::new(),
            messages: messages_tx,
            dropped: dropped.clone(),
        };
        let body = initialize_body(&id, &slot);
        lock(&lsp.shared.sessions).insert(id.clone(), slot);
        let forget = |e| {
            lock(&lsp.shared.sessions).remove(&id);
            e
        };
        lsp.shared
            .client
            .send("lsp/initialize", payload(&body))
            .await
            .map_err(|e| forget(LspError::Client(e)))?;
        let initialize_result = rx
            .recv()
            .await
            .unwrap_or(Err(LspError::Closed))
            .map_err(forget)?;
        Ok(Self {
            lsp: lsp.clone(),
            id,
            next_request: AtomicI64::new(1),
            messages,
            dropped,
            initialize_result,
        })
    }

    /// The session id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The language server's answer to `initialize` (its capabilities, server info).
    pub fn initialize_result(&self) -> &Value {
        &self.initialize_result
    }

    /// Sends a request and waits for its response.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, LspError> {
        self.start_request(method, params).await?.response().await
    }

    /// Sends a request; the response comes through the returned [`PendingRequest`].
    pub async fn start_request(
        &self,
        method: &str,
        params: Value,
    ) -> Result<PendingRequest, LspError> {
        let id = json!(self.next_request.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = async_channel::bounded(1);
        if let Some(slot) = lock(&self.lsp.shared.sessions).get_mut(&self.id) {
            slot.pending.insert(id.to_string(), tx);
        }
        let mut body = json!({"session-id": self.id, "request-id": id, "method": method});
        if !params.is_null() {
            body["params"] = params;
        }
        if let Err(e) = self.send("lsp/request", &body).await {
            if let Some(slot) = lock(&self.lsp.shared.sessions).get_mut(&self.id) {
                slot.pending.remove(&id.to_string());
            }
            return Err(e);
        }
        Ok(PendingRequest { id, rx })
    }

    /// Asks the server to cancel a request (`$/cancelRequest`); its response still comes,
    /// usually the error -32800.
    pub async fn cancel(&self, request: &PendingRequest) -> Result<(), LspError> {
        self.notify("$/cancelRequest", json!({"id": request.id}))
            .await
    }

    /// Sends a notification.
    pub async fn notify(&self, method: &str, params: Value) -> Result<(), LspError> {
        let mut body = json!({"session-id": self.id, "method": method});
        if !params.is_null() {
            body["params"] = params;
        }
        self.send("lsp/notification", &body).await
    }

    /// Answers the server's request `id` (from [`ServerMessage::Request`]).
    pub async fn respond(&self, id: Value, result: Result<Value, Value>) -> Result<(), LspError> {
        let mut body = json!({"session-id": self.id, "request-id": id});
        match result {
            Ok(result) => body["result"] = result,
            Err(error) => body["error"] = error,
        }
        self.send("lsp/response", &body).await
    }

    /// The server's notifications and requests, and the host's reports on the session, in
    /// arrival order.
    pub fn messages(&self) -> Receiver<ServerMessage> {
        self.messages.clone()
    }

    /// Server messages dropped because [`Self::messages`] was not read.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// `shutdown`, then `exit`: the host's process for the session ends.
    pub async fn shutdown(self) -> Result<(), LspError> {
        self.request("shutdown", Value::Null).await?;
        self.notify("exit", Value::Null).await
    }

    async fn send(&self, event: &str, body: &Value) -> Result<(), LspError> {
        self.lsp
            .shared
            .client
            .send(event, payload(body))
            .await
            .map_err(LspError::Client)
    }
}

impl Drop for LspSession {
    fn drop(&mut self) {
        lock(&self.lsp.shared.sessions).remove(&self.id);
    }
}
