//! One editor session: a task owning the language server process, the id maps of both
//! directions, the open documents and which connection (if any) the editor is on.
//!
//! Id spaces are per direction. The editor's request ids (number or string, kept as the
//! JSON value they were) are replaced by the host's own numbers towards the server, which
//! the host also uses for its own `initialize` and `shutdown`; the server's request ids go to
//! the editor untouched and come back in its `lsp/response`. Nothing the editor sends is
//! written with `"params": null`.
//!
//! When the editor's connection drops the session stays for the language's
//! `session-timeout-ms`: the server's requests are answered by the host meanwhile, and an
//! `lsp/initialize` with the same session id reattaches (the cached initialize result is the
//! answer, and the open documents are reopened in the server). After the grace the server is
//! sent `shutdown` and `exit`, and killed if it does not go; either way it is reaped.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use super::documents::Documents;
use super::process::{SendRefused, ServerProcess};
use super::settings::LanguageConfig;
use super::uri::{Direction, UriMap};
use super::wire::{self, HOST_REFUSED, LspErrorKind, PayloadForm, SERVER_GONE};
use crate::error::DeliveryError;
use crate::handle::ServerHandle;
use crate::{ConnectionId, registry::lock};

/// How long the server has to answer `initialize`.
const INITIALIZE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server has for `shutdown`, and then again for exiting after `exit`.
const SHUTDOWN_STEP: Duration = Duration::from_secs(5);
/// How long a push waits for room in a full connection queue before it is given up.
const PUSH_PATIENCE: Duration = Duration::from_secs(10);
/// Requests in flight each way. Beyond it the editor's requests are refused (`-32051`) and
/// the server's are answered by the host, so neither side can grow the maps without bound.
const MAX_IN_FLIGHT: usize = 4096;

/// What the session task is told.
#[derive(Debug)]
pub(crate) enum Input {
    /// An editor (re)joins on `connection`; answer its `lsp/initialize`.
    Attach {
        connection: ConnectionId,
        form: PayloadForm,
        request_id: Option<Value>,
    },
    /// `connection` closed.
    Detach { connection: ConnectionId },
    /// A message from the attached editor.
    Client(ClientMessage),
    /// The host is stopping.
    Stop,
}

/// A JSON-RPC message from the editor, read from its `lsp/*` event.
#[derive(Debug)]
pub(crate) enum ClientMessage {
    Request {
        id: Value,
        method: String,
        params: Option<Value>,
    },
    Response {
        id: Value,
        result: Option<Value>,
        error: Option<Value>,
    },
    Notification {
        method: String,
        params: Option<Value>,
    },
}

/// Where a response from the server goes.
#[derive(Debug)]
enum Origin {
    /// The editor's request, with its own id.
    Client(Value),
    Initialize,
    Shutdown,
}

/// Everything a session is started with.
pub(crate) struct SessionSpec {
    pub(crate) session_id: String,
    pub(crate) language: String,
    pub(crate) config: LanguageConfig,
    pub(crate) uris: Option<UriMap>,
    pub(crate) initialize_params: Value,
    pub(crate) workspace_folders: Value,
    pub(crate) generation: u64,
}

/// How the session ended.
enum End {
    Grace,
    Stop,
    Exited,
    InitializeFailed(String),
}

pub(crate) struct Session {
    spec: SessionSpec,
    server: ServerHandle,
    table: Arc<super::Inner>,
    process: ServerProcess,
    attached: Option<(ConnectionId, PayloadForm)>,
    /// The `request-id` of the `lsp/initialize` waiting for the result.
    init_request: Option<Value>,
    init_result: Option<Value>,
    held: VecDeque<ClientMessage>,
    next_id: i64,
    outgoing: HashMap<i64, Origin>,
    by_client_id: HashMap<String, i64>,
    /// The server's requests the editor has not answered, by id text.
    server_requests: HashMap<String, (Value, String, Value)>,
    documents: Documents,
    detached_at: Option<Instant>,
    /// The editor sent `shutdown`: the exit that follows is no crash.
    client_shutdown: bool,
}

impl Session {
    pub(crate) fn new(
        spec: SessionSpec,
        server: ServerHandle,
        table: Arc<super::Inner>,
        process: ServerProcess,
        attached: (ConnectionId, PayloadForm),
        init_request: Option<Value>,
    ) -> Self {
        Self {
            spec,
            server,
            table,
            process,
            attached: Some(attached),
            init_request,
            init_result: None,
            held: VecDeque::new(),
            next_id: 0,
            outgoing: HashMap::new(),
            by_client_id: HashMap::new(),
            server_requests: HashMap::new(),
            documents: Documents::default(),
            detached_at: None,
            client_shutdown: false,
        }
    }

    pub(crate) async fn run(mut self, mut inputs: mpsc::Receiver<Input>) {
        let init_deadline = Instant::now() + INITIALIZE_TIMEOUT;
        let params = self.spec.initialize_params.take();
        let id = self.next_host_id(Origin::Initialize);
        let end = if self.send_server(&rpc_request(id, "initialize", Some(params))) {
            self.serve(&mut inputs, init_deadline).await
        } else {
            End::InitializeFailed("the server's stdin is closed".to_owned())
        };
        match end {
            End::Grace | End::Stop => self.shut_down_server().await,
            End::Exited => self.report_exit().await,
            End::InitializeFailed(why) => {
                self.push_error(LspErrorKind::InitializeFailed, &why, None)
                    .await;
                self.process.kill();
                self.wait_exit(SHUTDOWN_STEP).await;
            }
        }
        self.process.kill();
        let mut table = lock(&self.table.sessions);
        if table
            .get(&self.spec.session_id)
            .is_some_and(|e| e.generation == self.spec.generation)
        {
            table.remove(&self.spec.session_id);
        }
    }

    async fn serve(&mut self, inputs: &mut mpsc::Receiver<Input>, init_deadline: Instant) -> End {
        loop {
            let grace = self
                .detached_at
                .map(|at| at + self.spec.config.session_timeout());
            let initializing = self.init_result.is_none();
            tokio::select! {
                input = inputs.recv() => match input {
                    None | Some(Input::Stop) => return End::Stop,
                    Some(input) => if let Some(end) = self.on_input(input).await { return end },
                },
                message = self.process.messages.recv() => match message {
                    Some(message) => if let Some(end) = self.on_server(message).await { return end },
                    // stdout ended: the server is exiting (or broke its framing).
                    None => {
                        self.wait_exit(SHUTDOWN_STEP).await;
                        return End::Exited;
                    }
                },
                _ = self.process.exit.changed() => return End::Exited,
                _ = sleep_until(grace.unwrap_or(init_deadline)), if grace.is_some() => return End::Grace,
                _ = sleep_until(init_deadline), if initializing => {
                    return End::InitializeFailed("no initialize result in time".to_owned());
                }
            }
        }
    }

    fn next_host_id(&mut self, origin: Origin) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.outgoing.insert(id, origin);
        id
    }

    fn send_server(&self, message: &Value) -> bool {
        match self.process.send(message) {
            Ok(()) => true,
            Err(SendRefused::Full) => {
                tracing::warn!(session = %self.spec.session_id, "language server not reading; message refused");
                false
            }
            Err(SendRefused::Closed) => false,
        }
    }

    // ---- from the editor ----

    async fn on_input(&mut self, input: Input) -> Option<End> {
        match input {
            Input::Attach {
                connection,
                form,
                request_id,
            } => {
                self.attached = Some((connection, form));
                self.detached_at = None;
                match self.init_result.clone() {
                    Some(result) => self.answer_reattach(request_id, result).await,
                    None => self.init_request = request_id,
                }
            }
            Input::Detach { connection } => {
                if self.attached.is_some_and(|(c, _)| c == connection) {
                    self.attached = None;
                    self.detached_at = Some(Instant::now());
                    self.answer_pending_server_requests();
                }
            }
            Input::Client(message) => {
                if self.init_result.is_none() {
                    if self.held.len() >= 1024 {
                        self.refuse(message, "too many messages before initialize")
                            .await;
                    } else {
                        self.held.push_back(message);
                    }
                } else {
                    self.on_client_message(message).await;
                }
            }
            Input::Stop => return Some(End::Stop),
        }
        None
    }

    async fn on_client_message(&mut self, message: ClientMessage) {
        match message {
            ClientMessage::Request { id, method, params } => {
                if method == "initialize" {
                    let error = json!({"code": -32600, "message": "initialize is answered through lsp/initialize"});
                    self.push_response(id, None, Some(error)).await;
                    return;
                }
                if self.outgoing.len() >= MAX_IN_FLIGHT {
                    let error =
                        json!({"code": HOST_REFUSED, "message": "too many requests in flight"});
                    self.push_response(id, None, Some(error)).await;
                    return;
                }
                if method == "shutdown" {
                    self.client_shutdown = true;
                }
                let params = params.map(|p| self.to_server(p));
                let key = id.to_string();
                let host_id = self.next_host_id(Origin::Client(id.clone()));
                if self.send_server(&rpc_request(host_id, &method, params)) {
                    self.by_client_id.insert(key, host_id);
                } else {
                    self.outgoing.remove(&host_id);
                    let error = json!({"code": HOST_REFUSED, "message": "the language server is not taking messages"});
                    self.push_response(id, None, Some(error)).await;
                }
            }
            ClientMessage::Response { id, result, error } => {
                let Some((server_id, _, _)) = self.server_requests.remove(&id.to_string()) else {
                    tracing::debug!(session = %self.spec.session_id, %id, "response to no pending server request; dropped");
                    return;
                };
                let mut message = json!({"jsonrpc": "2.0", "id": server_id});
                match error {
                    Some(error) => message["error"] = error,
                    None => message["result"] = self.to_server(result.unwrap_or(Value::Null)),
                }
                self.send_server(&message);
            }
            ClientMessage::Notification { method, params } => {
                self.notification_from_client(method, params).await;
            }
        }
    }

    async fn notification_from_client(&mut self, method: String, params: Option<Value>) {
        let mut params = params.map(|p| self.to_server(p));
        match method.as_str() {
            // The host sent its own `initialized` after the initialize result.
            "initialized" => return,
            "exit" if !self.client_shutdown => {
                tracing::debug!(session = %self.spec.session_id, "exit without shutdown ignored");
                return;
            }
            "$/cancelRequest" => {
                let client_id = params.as_ref().map(|p| p["id"].to_string());
                let Some(&host_id) = client_id.and_then(|k| self.by_client_id.get(&k)) else {
                    return;
                };
                params = Some(json!({"id": host_id}));
            }
            "textDocument/didOpen" => {
                let uri = params
                    .as_ref()
                    .and_then(|p| p["textDocument"]["uri"].as_str());
                if let Some(uri) = uri.filter(|u| self.documents.is_open(u)) {
                    // Reopened (an editor that came back without knowing the session kept
                    // it): close first so the server sees a clean open.
                    let close = json!({"textDocument": {"uri": uri}});
                    self.send_server(&rpc_notification("textDocument/didClose", Some(close)));
                }
            }
            "textDocument/didSave" if self.spec.config.save_to_disk => {
                if let Some(p) = &params {
                    self.save_to_disk(p).await;
                }
            }
            _ => {}
        }
        if let Some(p) = &params {
            self.documents.observe(&method, p);
        }
        if !self.send_server(&rpc_notification(&method, params)) {
            let why = format!("{method} not taken: the language server is not reading");
            self.push_error(LspErrorKind::Busy, &why, None).await;
        }
    }

    /// Writes a `didSave`'s text to its file, when the URI lies under the configured root.
    async fn save_to_disk(&self, params: &Value) {
        let (Some(text), Some(uri)) = (
            params["text"].as_str(),
            params["textDocument"]["uri"].as_str(),
        ) else {
            return;
        };
        let Some(root) = self.spec.config.root.clone() else {
            return;
        };
        let Some(path) = url::Url::parse(uri)
            .ok()
            .and_then(|u| u.to_file_path().ok())
        else {
            return;
        };
        let text = text.to_owned();
        let session = self.spec.session_id.clone();
        let written = tokio::task::spawn_blocking(move || {
            let parent = path.parent()?.canonicalize().ok()?;
            if !parent.starts_with(root.canonicalize().ok()?) {
                return None;
            }
            std::fs::write(parent.join(path.file_name()?), text).ok()
        })
        .await;
        if !matches!(written, Ok(Some(()))) {
            tracing::warn!(%session, %uri, "didSave text not written: outside the root or unwritable");
        }
    }

    async fn refuse(&mut self, message: ClientMessage, why: &str) {
        match message {
            ClientMessage::Request { id, .. } => {
                let error = json!({"code": HOST_REFUSED, "message": why});
                self.push_response(id, None, Some(error)).await;
            }
            _ => self.push_error(LspErrorKind::Busy, why, None).await,
        }
    }

    async fn answer_reattach(&mut self, request_id: Option<Value>, result: Value) {
        let open: Vec<Value> = self
            .documents
            .uris()
            .map(|u| Value::String(self.map(u, Direction::ToClient)))
            .collect();
        let mut body = json!({
            "request-id": request_id.unwrap_or_else(|| json!("initialize")),
            "method": "initialize",
            "result": self.to_client(result),
            "reattached": true,
            "open-documents": open,
        });
        self.push(wire::RESPONSE, &mut body).await;
        for (close, open) in self.documents.replay() {
            self.send_server(&rpc_notification("textDocument/didClose", Some(close)));
            self.send_server(&rpc_notification("textDocument/didOpen", Some(open)));
        }
    }

    // ---- from the server ----

    async fn on_server(&mut self, mut message: Value) -> Option<End> {
        let method = message
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let id = message.get("id").cloned();
        match (method, id) {
            (None, Some(id)) => return self.response_from_server(id, &mut message).await,
            (Some(method), Some(id)) => {
                let params = message.get_mut("params").map(Value::take);
                let params = params.map(|p| self.to_client(p));
                self.request_from_server(id, method, params).await;
            }
            (Some(method), None) => {
                let params = message.get_mut("params").map(Value::take);
                let params = params.map(|p| self.to_client(p));
                if self.attached.is_some() {
                    let mut body = json!({"method": method});
                    if let Some(p) = params.filter(|p| !p.is_null()) {
                        body["params"] = p;
                    }
                    self.push(wire::NOTIFICATION, &mut body).await;
                }
            }
            (None, None) => {
                tracing::debug!(session = %self.spec.session_id, "message without method or id from the server; dropped");
            }
        }
        None
    }

    async fn response_from_server(&mut self, id: Value, message: &mut Value) -> Option<End> {
        let origin = id.as_i64().and_then(|id| self.outgoing.remove(&id));
        let result = message.get_mut("result").map(Value::take);
        let error = message.get_mut("error").map(Value::take);
        match origin {
            Some(Origin::Client(client_id)) => {
                self.by_client_id.remove(&client_id.to_string());
                let result = result.map(|r| self.to_client(r));
                self.push_response(client_id, result, error).await;
            }
            Some(Origin::Initialize) => {
                if let Some(error) = error {
                    return Some(End::InitializeFailed(format!(
                        "the server refused initialize: {error}"
                    )));
                }
                let result = result.unwrap_or(Value::Null);
                self.init_result = Some(result.clone());
                self.send_server(&rpc_notification("initialized", Some(json!({}))));
                let mut body = json!({
                    "request-id": self.init_request.take().unwrap_or_else(|| json!("initialize")),
                    "method": "initialize",
                    "result": self.to_client(result),
                });
                self.push(wire::RESPONSE, &mut body).await;
                while let Some(held) = self.held.pop_front() {
                    self.on_client_message(held).await;
                }
            }
            Some(Origin::Shutdown) | None => {}
        }
        None
    }

    async fn request_from_server(&mut self, id: Value, method: String, params: Option<Value>) {
        let params = params.unwrap_or(Value::Null);
        if self.attached.is_some() && self.server_requests.len() < MAX_IN_FLIGHT {
            self.server_requests
                .insert(id.to_string(), (id.clone(), method.clone(), params.clone()));
            let mut body = json!({"request-id": id, "method": method});
            if !params.is_null() {
                body["params"] = params.clone();
            }
            if self.push(wire::REQUEST, &mut body).await {
                return;
            }
            self.server_requests.remove(&id.to_string());
        }
        self.answer_for_editor(id, &method, &params);
    }

    /// Answers the server's request the way an editor that does not care would, so the
    /// server does not stall while no editor is attached.
    fn answer_for_editor(&self, id: Value, method: &str, params: &Value) {
        let answer = match method {
            "workspace/configuration" => {
                let n = params["items"].as_array().map_or(0, Vec::len);
                Ok(Value::Array(vec![Value::Null; n]))
            }
            "workspace/workspaceFolders" => Ok(self.spec.workspace_folders.clone()),
            "workspace/applyEdit" => {
                Ok(json!({"applied": false, "failureReason": "no editor attached"}))
            }
            "window/showDocument" => Ok(json!({"success": false})),
            "window/workDoneProgress/create"
            | "client/registerCapability"
            | "client/unregisterCapability"
            | "window/showMessageRequest" => Ok(Value::Null),
            m if m.starts_with("workspace/") && m.ends_with("/refresh") => Ok(Value::Null),
            _ => Err(json!({"code": -32601, "message": "no editor attached"})),
        };
        let mut message = json!({"jsonrpc": "2.0", "id": id});
        match answer {
            Ok(result) => message["result"] = result,
            Err(error) => message["error"] = error,
        }
        self.send_server(&message);
    }

    fn answer_pending_server_requests(&mut self) {
        for (_, (id, method, params)) in std::mem::take(&mut self.server_requests) {
            self.answer_for_editor(id, &method, &params);
        }
    }

    // ---- ending ----

    async fn shut_down_server(&mut self) {
        let id = self.next_host_id(Origin::Shutdown);
        if self.send_server(&rpc_request(id, "shutdown", None)) {
            let deadline = Instant::now() + SHUTDOWN_STEP;
            loop {
                tokio::select! {
                    message = self.process.messages.recv() => match message {
                        Some(m) if m.get("id").and_then(Value::as_i64) == Some(id) && m.get("method").is_none() => break,
                        Some(m) if m.get("method").is_some() && m.get("id").is_some() => {
                            let method = m["method"].as_str().unwrap_or("").to_owned();
                            self.answer_for_editor(m["id"].clone(), &method, &m["params"]);
                        }
                        Some(_) => {}
                        None => break,
                    },
                    _ = sleep_until(deadline) => break,
                }
            }
            self.send_server(&rpc_notification("exit", None));
        }
        if !self.wait_exit(SHUTDOWN_STEP).await {
            tracing::warn!(session = %self.spec.session_id, pid = self.process.pid, "language server did not exit; killed");
            self.process.kill();
            self.wait_exit(SHUTDOWN_STEP).await;
        }
        tracing::info!(session = %self.spec.session_id, status = ?self.process.exit_status(), "language server stopped");
    }

    /// Waits up to `limit` for the process to end; true when it has.
    async fn wait_exit(&mut self, limit: Duration) -> bool {
        let mut exit = self.process.exit.clone();
        tokio::time::timeout(limit, exit.wait_for(Option::is_some))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    async fn report_exit(&mut self) {
        self.wait_exit(SHUTDOWN_STEP).await;
        let status = self.process.exit_status();
        let code = status.and_then(|s| s.code());
        if self.client_shutdown && code == Some(0) {
            tracing::info!(session = %self.spec.session_id, "language server exited after shutdown");
            return;
        }
        let error = json!({"code": SERVER_GONE, "message": "the language server exited"});
        let pending: Vec<Value> = self
            .outgoing
            .drain()
            .filter_map(|(_, origin)| match origin {
                Origin::Client(id) => Some(id),
                _ => None,
            })
            .collect();
        for id in pending {
            self.push_response(id, None, Some(error.clone())).await;
        }
        let tail = self.process.stderr_tail().join("\n");
        tracing::warn!(session = %self.spec.session_id, language = %self.spec.language, ?status, "language server exited: {tail}");
        let message = match status {
            Some(s) => format!("the language server exited ({s})"),
            None => "the language server exited".to_owned(),
        };
        let code = code.map_or(Value::Null, Value::from);
        self.push_error(
            LspErrorKind::ServerExited,
            &message,
            Some(("exit-code", code)),
        )
        .await;
    }

    // ---- to the editor ----

    async fn push_response(&mut self, id: Value, result: Option<Value>, error: Option<Value>) {
        let mut body = json!({"request-id": id});
        match error {
            Some(error) => body["error"] = error,
            None => body["result"] = result.unwrap_or(Value::Null),
        }
        self.push(wire::RESPONSE, &mut body).await;
    }

    async fn push_error(
        &mut self,
        kind: LspErrorKind,
        message: &str,
        extra: Option<(&str, Value)>,
    ) {
        let mut body = wire::error_body(None, kind, message);
        if let Some((key, value)) = extra {
            body[key] = value;
        }
        self.push(wire::ERROR, &mut body).await;
    }

    /// Sends one event to the attached editor, waiting a bounded time while its connection's
    /// queue is full. A response too large for the connection becomes an error response.
    async fn push(&mut self, event: &str, body: &mut Value) -> bool {
        let Some((connection, form)) = self.attached else {
            return false;
        };
        body["session-id"] = json!(self.spec.session_id);
        let deadline = Instant::now() + PUSH_PATIENCE;
        loop {
            match self
                .server
                .send_to_connection(connection, event, wire::write(form, body))
            {
                Ok(()) => return true,
                Err(DeliveryError::QueueFull(_)) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(DeliveryError::TooLarge { len, max, .. }) if event == wire::RESPONSE => {
                    let id = body["request-id"].take();
                    *body = json!({
                        "request-id": id,
                        "session-id": self.spec.session_id,
                        "error": {"code": HOST_REFUSED, "message": format!("response of {len} bytes exceeds the connection's frame limit of {max}")},
                    });
                }
                Err(e) => {
                    tracing::warn!(session = %self.spec.session_id, error = %e, %event, "not delivered to the editor");
                    return false;
                }
            }
        }
    }

    fn to_client(&self, mut value: Value) -> Value {
        if let Some(map) = &self.spec.uris {
            map.map_value(&mut value, Direction::ToClient);
        }
        value
    }

    fn to_server(&self, mut value: Value) -> Value {
        if let Some(map) = &self.spec.uris {
            map.map_value(&mut value, Direction::ToServer);
        }
        value
    }

    fn map(&self, text: &str, direction: Direction) -> String {
        self.spec
            .uris
            .as_ref()
            .and_then(|m| m.map_str(text, direction))
            .unwrap_or_else(|| text.to_owned())
    }
}

fn rpc_request(id: i64, method: &str, params: Option<Value>) -> Value {
    let mut message = json!({"jsonrpc": "2.0", "id": id, "method": method});
    if let Some(p) = params.filter(|p| !p.is_null()) {
        message["params"] = p;
    }
    message
}

fn rpc_notification(method: &str, params: Option<Value>) -> Value {
    let mut message = json!({"jsonrpc": "2.0", "method": method});
    if let Some(p) = params.filter(|p| !p.is_null()) {
        message["params"] = p;
    }
    message
}
