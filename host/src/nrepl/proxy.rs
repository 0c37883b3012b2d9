//! What happens to each editor message: the ops the host answers itself, and forwarding
//! the rest to the session's client with a guaranteed end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::sessions::{InFlight, SessionLimit};
use super::wire::{self, failure, is_done, reply};
use super::{Inner, text};
use crate::registry::lock;
use crate::{ConnectionId, ReplyItem, RequestOutcome};

/// Ops the host answers, listed in `describe` beside the client's.
const HOST_OPS: [&str; 5] = [
    "clone",
    "close",
    "describe",
    "ls-sessions",
    "sentelite/select",
];

/// Ops that evaluate, counted against the per-session limit.
const EVAL_OPS: [&str; 2] = ["eval", "load-file"];

/// Text code CIDER and other JVM-minded editors send on connect; a non-JVM server answers
/// them with `nil`.
const JVM_ONLY: [&str; 4] = [
    "System/getProperty",
    "clojure.lang.",
    "java.lang.",
    "cider.nrepl",
];

/// Responses buffered from a text client for one request.
const TEXT_RESPONSES: usize = 64;

static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// One editor connection's state.
pub(super) struct Editor {
    inner: Arc<Inner>,
    out: mpsc::Sender<Map<String, Value>>,
    stop: CancellationToken,
    /// The session for messages that name none, opened on first use.
    implicit_session: Option<String>,
}

impl Editor {
    pub(super) fn new(
        inner: Arc<Inner>,
        out: mpsc::Sender<Map<String, Value>>,
        stop: CancellationToken,
    ) -> Self {
        Self {
            inner,
            out,
            stop,
            implicit_session: None,
        }
    }

    async fn send(&self, message: Map<String, Value>) {
        let _ = self.out.send(message).await;
    }

    pub(super) async fn handle(&mut self, message: Map<String, Value>) {
        let op = text(&message, "op").unwrap_or_default().to_owned();
        if let Some(session) = text(&message, "session") {
            let known = lock(&self.inner.sessions).touch(session).is_some();
            if !known {
                return self
                    .send(failure(&message, "no such session", &["unknown-session"]))
                    .await;
            }
        }
        match op.as_str() {
            "clone" => self.clone_session(&message).await,
            "close" => self.close(&message).await,
            "ls-sessions" => self.ls_sessions(&message).await,
            "sentelite/select" => self.select(&message).await,
            "interrupt" => self.interrupt(message).await,
            "" => {
                self.send(failure(&message, "message without op", &["unknown-op"]))
                    .await
            }
            _ if op == "eval" && jvm_only(&message) => {
                let ns = self.current_ns(&message).unwrap_or_else(|| "user".into());
                self.send(reply(&message, json!({"value": "nil", "ns": ns})))
                    .await;
                self.send(reply(&message, json!({"status": ["done"]})))
                    .await;
            }
            _ => self.forward(message, op).await,
        }
    }

    async fn clone_session(&mut self, message: &Map<String, Value>) {
        let client = match text(message, "session") {
            Some(parent) => lock(&self.inner.sessions)
                .get_mut(parent)
                .and_then(|s| s.client.clone()),
            None => self.inner.default_client(),
        };
        let opened = lock(&self.inner.sessions).open(client);
        let id = match opened {
            Ok(id) => id,
            Err(limit) => {
                return self
                    .send(failure(message, &limit.to_string(), &["session-limit"]))
                    .await;
            }
        };
        let mut answer = reply(message, json!({"new-session": id, "status": ["done"]}));
        // Every response names a session; clients such as `nr` require one even here.
        answer.entry("session").or_insert_with(|| json!(id));
        self.send(answer).await;
    }

    async fn close(&mut self, message: &Map<String, Value>) {
        let Some(session) = text(message, "session") else {
            return self
                .send(failure(
                    message,
                    "close needs a session",
                    &["unknown-session"],
                ))
                .await;
        };
        lock(&self.inner.sessions).close(session);
        if self.implicit_session.as_deref() == Some(session) {
            self.implicit_session = None;
        }
        self.send(reply(
            message,
            json!({"status": ["done", "session-closed"]}),
        ))
        .await;
    }

    async fn ls_sessions(&mut self, message: &Map<String, Value>) {
        let list = lock(&self.inner.sessions).list();
        let ids: Vec<&String> = list.iter().map(|(id, _)| id).collect();
        let clients: Map<String, Value> = list
            .iter()
            .map(|(id, c)| (id.clone(), c.clone().map_or(Value::Null, Value::String)))
            .filter(|(_, c)| !c.is_null())
            .collect();
        self.send(reply(
            message,
            json!({"sessions": ids, "sentelite/clients": clients, "status": ["done"]}),
        ))
        .await;
    }

    /// `sentelite/select` with `client`: points the session at that client. Without
    /// `client`: lists the clients that evaluate.
    async fn select(&mut self, message: &Map<String, Value>) {
        let evaluators = self.inner.evaluators();
        let Some(client) = text(message, "client") else {
            let mut names: Vec<String> = evaluators.into_iter().map(|e| e.client_id).collect();
            names.dedup();
            return self
                .send(reply(
                    message,
                    json!({"clients": names, "status": ["done"]}),
                ))
                .await;
        };
        if !evaluators.iter().any(|e| e.client_id == client) {
            return self
                .send(failure(
                    message,
                    &format!("no client {client:?} with an evaluator is connected"),
                    &["unknown-client"],
                ))
                .await;
        }
        let session = match text(message, "session") {
            Some(s) => s.to_owned(),
            None => match self.implicit_session() {
                Ok(s) => s,
                Err(limit) => {
                    return self
                        .send(failure(message, &limit.to_string(), &["session-limit"]))
                        .await;
                }
            },
        };
        if let Some(s) = lock(&self.inner.sessions).get_mut(&session) {
            s.client = Some(client.to_owned());
        }
        self.send(reply(
            message,
            json!({"sentelite/client": client, "session": session, "status": ["done"]}),
        ))
        .await;
    }

    /// `interrupt` goes to the client only when the session has something to interrupt.
    async fn interrupt(&mut self, message: Map<String, Value>) {
        let Some(session) = text(&message, "session").map(str::to_owned) else {
            return self
                .send(failure(
                    &message,
                    "interrupt needs a session",
                    &["unknown-session"],
                ))
                .await;
        };
        let wanted = text(&message, "interrupt-id").map(str::to_owned);
        let verdict = {
            let mut sessions = lock(&self.inner.sessions);
            let s = sessions.get_mut(&session);
            let evals: Vec<&InFlight> = s
                .iter()
                .flat_map(|s| s.in_flight.values())
                .filter(|r| EVAL_OPS.contains(&r.op.as_str()))
                .collect();
            if evals.is_empty() {
                Some("session-idle")
            } else if wanted
                .as_ref()
                .is_some_and(|w| !evals.iter().any(|r| &r.id == w))
            {
                Some("interrupt-id-mismatch")
            } else {
                None
            }
        };
        match verdict {
            Some(status) => {
                self.send(reply(&message, json!({"status": ["done", status]})))
                    .await;
            }
            None => self.forward(message, "interrupt".into()).await,
        }
    }

    /// The session of this editor's session-less requests, opened on first use.
    fn implicit_session(&mut self) -> Result<String, SessionLimit> {
        if let Some(id) = &self.implicit_session
            && lock(&self.inner.sessions).get_mut(id).is_some()
        {
            return Ok(id.clone());
        }
        let id = lock(&self.inner.sessions).open(self.inner.default_client())?;
        self.implicit_session = Some(id.clone());
        Ok(id)
    }

    fn current_ns(&self, message: &Map<String, Value>) -> Option<String> {
        let session = text(message, "session")?;
        lock(&self.inner.sessions)
            .get_mut(session)
            .and_then(|s| s.current_ns.clone())
    }

    /// Sends `message` to its session's client and streams the answers back; every request
    /// ends with a `done` status, whatever happens to the client.
    async fn forward(&mut self, mut message: Map<String, Value>, op: String) {
        let session = match text(&message, "session") {
            Some(s) => s.to_owned(),
            None => match self.implicit_session() {
                Ok(s) => {
                    message.insert("session".into(), json!(s));
                    s
                }
                Err(limit) => {
                    return self
                        .send(failure(&message, &limit.to_string(), &["session-limit"]))
                        .await;
                }
            },
        };
        let id = text(&message, "id").unwrap_or_default().to_owned();
        let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        let stop = self.stop.child_token();
        let target = {
            let mut sessions = lock(&self.inner.sessions);
            match sessions.touch(&session) {
                None => Err(None),
                Some(s) => Self::admit(&self.inner, s, &op, &id, key, &stop).map_err(Some),
            }
        };
        let (client, connection) = match target {
            Ok(t) => t,
            Err(None) => {
                return self
                    .send(failure(&message, "no such session", &["unknown-session"]))
                    .await;
            }
            Err(Some(_)) if op == "describe" => return self.describe_alone(&message).await,
            Err(Some(why)) => return self.send(failure(&message, &why, &[])).await,
        };
        self.spawn_forwarding(message, op, session, id, key, stop, client, connection);
    }

    /// Checks the limits and finds the client's connection; records the request in flight.
    fn admit(
        inner: &Inner,
        s: &mut super::sessions::Session,
        op: &str,
        id: &str,
        key: u64,
        stop: &CancellationToken,
    ) -> Result<(String, ConnectionId), String> {
        if s.client.is_none() {
            s.client = inner.default_client();
        }
        let evals = s
            .in_flight
            .values()
            .filter(|r| EVAL_OPS.contains(&r.op.as_str()))
            .count();
        if EVAL_OPS.contains(&op) && evals >= inner.options.max_evals_per_session {
            Err(format!(
                "the session already has {evals} evaluations in flight (the limit)"
            ))
        } else {
            match s.client.clone() {
                None => Err("no client with an evaluator is connected".to_owned()),
                Some(client) => match inner.connection_of(&client) {
                    None => Err(format!("client {client:?} is not connected")),
                    Some(connection) => {
                        s.in_flight.insert(
                            key,
                            InFlight {
                                id: id.to_owned(),
                                op: op.to_owned(),
                                stop: stop.clone(),
                            },
                        );
                        Ok((client, connection))
                    }
                },
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn spawn_forwarding(
        &self,
        message: Map<String, Value>,
        op: String,
        session: String,
        id: String,
        key: u64,
        stop: CancellationToken,
        client: String,
        connection: ConnectionId,
    ) {
        tracing::debug!(%client, connection, %op, "nREPL request forwarded");
        let timeout = message
            .get("eval-timeout")
            .and_then(Value::as_u64)
            .map_or(self.inner.options.eval_timeout, Duration::from_millis);
        let forwarding = Forwarding {
            inner: self.inner.clone(),
            out: self.out.clone(),
            key,
            session,
            id,
            connection,
            output_left: message
                .get("max-output-size")
                .and_then(Value::as_u64)
                .map_or(self.inner.options.max_output_bytes, |n| n as usize),
            truncated: false,
            describe: op == "describe",
        };
        tokio::spawn(forwarding.run(message, timeout, stop));
    }
}

impl Editor {
    /// `describe` with no client to ask: the host's own ops only.
    async fn describe_alone(&self, message: &Map<String, Value>) {
        let ops: Map<String, Value> = HOST_OPS
            .iter()
            .map(|op| ((*op).to_owned(), json!({})))
            .collect();
        self.send(reply(
            message,
            json!({
                "ops": ops,
                "versions": {"sentelite": {"version-string": env!("CARGO_PKG_VERSION")}},
                "aux": {"sentelite/client": null},
                "status": ["done"],
            }),
        ))
        .await;
    }
}

fn jvm_only(message: &Map<String, Value>) -> bool {
    text(message, "code").is_some_and(|code| JVM_ONLY.iter().any(|m| code.contains(m)))
}

/// One request on its way to a client and back.
struct Forwarding {
    inner: Arc<Inner>,
    out: mpsc::Sender<Map<String, Value>>,
    key: u64,
    session: String,
    id: String,
    connection: ConnectionId,
    output_left: usize,
    truncated: bool,
    describe: bool,
}

impl Forwarding {
    async fn run(
        mut self,
        message: Map<String, Value>,
        timeout: Duration,
        stop: CancellationToken,
    ) {
        let text_key = (self.connection, self.session.clone(), self.id.clone());
        let (text_tx, mut text_rx) = mpsc::channel(TEXT_RESPONSES);
        lock(&self.inner.text_pending).insert(text_key.clone(), text_tx);
        let ended = self.exchange(&message, timeout, &stop, &mut text_rx).await;
        lock(&self.inner.text_pending).remove(&text_key);
        if let Some(s) = lock(&self.inner.sessions).get_mut(&self.session) {
            s.in_flight.remove(&self.key);
        }
        if let Err((why, extra)) = ended
            && !stop.is_cancelled()
        {
            let _ = self.out.send(failure(&message, &why, extra)).await;
        }
    }

    /// Streams the client's responses to the editor until one is `done`; `Err` when the
    /// request ended otherwise (the editor then gets `err` and `done`).
    async fn exchange(
        &mut self,
        message: &Map<String, Value>,
        timeout: Duration,
        stop: &CancellationToken,
        text_rx: &mut mpsc::Receiver<Map<String, Value>>,
    ) -> Result<(), (String, &'static [&'static str])> {
        let Some(server) = self.inner.server().cloned() else {
            return Err(("the host is not running".into(), &[]));
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let request = server.request(
            self.connection,
            wire::REQUEST,
            wire::to_payload(message),
            Some(timeout),
        );
        let mut replies = tokio::select! {
            () = stop.cancelled() => return Err(("stopped".into(), &[])),
            r = request => r.map_err(|e| (format!("the client cannot take the request: {e}"), &[][..]))?,
        };
        loop {
            let response = tokio::select! {
                () = stop.cancelled() => {
                    let _ = replies.cancel();
                    return Err(("stopped".into(), &[]));
                }
                () = tokio::time::sleep_until(deadline) => {
                    let _ = replies.cancel();
                    return Err(("evaluation timed out (eval-timeout)".into(), &["eval-timeout"]));
                }
                m = text_rx.recv() => match m { Some(m) => m, None => continue },
                item = replies.next() => match item {
                    Some(ReplyItem::Part { payload, .. }) => match wire::from_payload(&payload) {
                        Some(m) => m,
                        None => continue,
                    },
                    Some(ReplyItem::End(RequestOutcome::TimedOut)) => {
                        return Err(("evaluation timed out (eval-timeout)".into(), &["eval-timeout"]));
                    }
                    Some(ReplyItem::End(RequestOutcome::Completed { status, .. })) if status == sentelite_core::Status::OK => {
                        return Err(("the client ended the request without a done status".into(), &[]));
                    }
                    Some(ReplyItem::End(RequestOutcome::Completed { .. })) => {
                        return Err(("the client failed the request".into(), &[]));
                    }
                    Some(ReplyItem::End(_)) | None => {
                        return Err(("the client disconnected before the request was done".into(), &[]));
                    }
                },
            };
            let done = is_done(&response);
            self.deliver(response).await;
            if done {
                let _ = replies.cancel();
                return Ok(());
            }
        }
    }

    /// One response to the editor: its `id` and `session` as the editor knows them, output
    /// within the request's budget, `describe` completed with the host's own part.
    async fn deliver(&mut self, mut response: Map<String, Value>) {
        response.insert("id".into(), json!(self.id));
        response.insert("session".into(), json!(self.session));
        for key in ["out", "err"] {
            if let Some(Value::String(s)) = response.get_mut(key) {
                if s.len() > self.output_left {
                    let mut cut = self.output_left;
                    while !s.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    s.truncate(cut);
                    self.truncated = true;
                }
                self.output_left -= s.len();
                if s.is_empty() && self.truncated {
                    response.remove(key);
                }
            }
        }
        if let Some(ns) = text(&response, "ns")
            && let Some(s) = lock(&self.inner.sessions).get_mut(&self.session)
        {
            s.current_ns = Some(ns.to_owned());
        }
        if is_done(&response)
            && self.truncated
            && let Some(Value::Array(status)) = response.get_mut("status")
        {
            status.push(json!("output-truncated"));
        }
        if self.describe && response.contains_key("ops") {
            self.complete_describe(&mut response);
        }
        if response.len() > 2 {
            let _ = self.out.send(response).await;
        }
    }

    fn complete_describe(&self, response: &mut Map<String, Value>) {
        if let Some(Value::Object(ops)) = response.get_mut("ops") {
            for op in HOST_OPS {
                ops.insert(op.into(), json!({}));
            }
        }
        let (client, ns) = {
            let mut sessions = lock(&self.inner.sessions);
            let s = sessions.get_mut(&self.session);
            (
                s.as_ref().and_then(|s| s.client.clone()),
                s.and_then(|s| s.current_ns.clone()),
            )
        };
        let versions = response.entry("versions").or_insert_with(|| json!({}));
        if let Value::Object(v) = versions {
            v.insert(
                "sentelite".into(),
                json!({"version-string": env!("CARGO_PKG_VERSION")}),
            );
        }
        let aux = response.entry("aux").or_insert_with(|| json!({}));
        if let Value::Object(aux) = aux {
            aux.insert("sentelite/client".into(), json!(client));
            if let Some(ns) = ns {
                aux.insert("current-ns".into(), json!(ns));
            }
        }
    }
}
