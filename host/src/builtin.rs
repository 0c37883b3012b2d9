//! Requests the `sentelite` binary answers out of the box, so a fresh server is useful for
//! link checks and for reaching one client from another without writing a handler:
//!
//! - `sentelite/echo`: streams the request payload back. Byte payloads come back in parts of
//!   at most [`ECHO_PART_BYTES`]; other kinds in one part. Ends `ok`.
//! - `sentelite/relay`: makes a request of another client and streams its parts and final
//!   status back to the requester (the primitive an nREPL or LSP bridge is built on). The
//!   payload is JSON: `{"client-id": "...", "event": "...", "timeout-ms": 5000, "data": …}`;
//!   `data` is forwarded as a JSON payload to the newest connection of that client id.
//!
//! The relay is closed unless the settings open it: `relay-enabled` must be true, the event
//! must match `relay-events`, and the target must have announced
//! [`capability::RELAY_TARGET`] in its Hello. Every token holder may use an open relay.
//!
//! Failures end with `error` and a JSON payload `{"error": "..."}`; a refusal by the relay
//! policy adds `"refused"`: `"relay-disabled"` (status `unsupported`), `"event-not-allowed"`
//! or `"not-a-relay-target"` (status `error`).

use std::time::Duration;

use sentelite_core::Status;
use sentelite_core::frame::{PayloadBuf, capability};
use serde::Deserialize;

use crate::handler::{RequestContext, Responder};
use crate::request::{ReplyItem, RequestOutcome};
use crate::server::ServerBuilder;

/// Largest part `sentelite/echo` sends.
pub const ECHO_PART_BYTES: usize = 1024;
/// Event id of the echo request.
pub const ECHO: &str = "sentelite/echo";
/// Event id of the relay request.
pub const RELAY: &str = "sentelite/relay";
/// Relay timeout when the request names none.
const DEFAULT_RELAY_TIMEOUT: Duration = Duration::from_secs(30);

impl ServerBuilder {
    /// Registers `sentelite/echo` and `sentelite/relay`.
    pub fn with_builtin_handlers(self) -> Self {
        self.on_request(ECHO, echo).on_request(RELAY, relay)
    }
}

async fn echo(ctx: RequestContext, mut responder: Responder) {
    match &ctx.payload {
        PayloadBuf::Bytes(bytes) => {
            for chunk in bytes.chunks(ECHO_PART_BYTES) {
                if responder
                    .part(PayloadBuf::Bytes(chunk.to_vec()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        PayloadBuf::Empty => {}
        other => {
            if responder.part(other.clone()).await.is_err() {
                return;
            }
        }
    }
    let _ = responder.ok(PayloadBuf::Empty).await;
}

/// The JSON body of a relay request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RelayRequest {
    client_id: String,
    event: String,
    timeout_ms: Option<u64>,
    #[serde(default)]
    data: serde_json::Value,
}

/// Why the relay policy refused a request (the `"refused"` field of the answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Disabled,
    EventNotAllowed,
    NotARelayTarget,
}

impl Refusal {
    fn name(self) -> &'static str {
        match self {
            Refusal::Disabled => "relay-disabled",
            Refusal::EventNotAllowed => "event-not-allowed",
            Refusal::NotARelayTarget => "not-a-relay-target",
        }
    }

    fn status(self) -> Status {
        match self {
            Refusal::Disabled => Status::UNSUPPORTED,
            _ => Status::ERROR,
        }
    }
}

async fn refuse(responder: Responder, refusal: Refusal, message: &str) {
    let payload = serde_json::json!({ "error": message, "refused": refusal.name() });
    let _ = responder
        .end(refusal.status(), PayloadBuf::Json(payload.to_string()))
        .await;
}

async fn relay(ctx: RequestContext, mut responder: Responder) {
    let settings = ctx.server.settings();
    if !settings.relay_enabled {
        let message = "relay is disabled on this server (relay-enabled = false)";
        return refuse(responder, Refusal::Disabled, message).await;
    }
    let request = match parse_relay(&ctx.payload) {
        Ok(r) => r,
        Err(message) => return fail(responder, &message).await,
    };
    if !settings.relay_allows(&request.event) {
        let message = format!("event {:?} is not in relay-events", request.event);
        return refuse(responder, Refusal::EventNotAllowed, &message).await;
    }
    let Some(target) = ctx
        .server
        .connections()
        .into_iter()
        .filter(|c| *c.client_id == request.client_id)
        .max_by_key(|c| c.connection_id)
    else {
        let message = format!("no connected client with id {:?}", request.client_id);
        return fail(responder, &message).await;
    };
    if target.capabilities & capability::RELAY_TARGET == 0 {
        let message = format!(
            "client {:?} does not accept relayed requests (no relay-target capability)",
            request.client_id
        );
        return refuse(responder, Refusal::NotARelayTarget, &message).await;
    }
    let timeout = request
        .timeout_ms
        .map_or(DEFAULT_RELAY_TIMEOUT, Duration::from_millis);
    let payload = PayloadBuf::Json(request.data.to_string());
    let mut replies = match ctx
        .server
        .request(target.connection_id, &request.event, payload, Some(timeout))
        .await
    {
        Ok(stream) => stream,
        Err(e) => return fail(responder, &format!("relay refused: {e}")).await,
    };
    loop {
        let item = tokio::select! {
            item = replies.next() => item,
            () = responder.cancelled() => {
                // The requester gave up: stop the target's work too.
                let _ = replies.cancel();
                return;
            }
        };
        match item {
            Some(ReplyItem::Part { payload, .. }) => {
                if responder.part(payload).await.is_err() {
                    let _ = replies.cancel();
                    return;
                }
            }
            Some(ReplyItem::End(outcome)) => return finish(responder, outcome).await,
            None => return fail(responder, "relay ended without a final status").await,
        }
    }
}

fn parse_relay(payload: &PayloadBuf) -> Result<RelayRequest, String> {
    let text = match payload {
        PayloadBuf::Json(text) => text.as_str(),
        PayloadBuf::Bytes(bytes) => {
            std::str::from_utf8(bytes).map_err(|_| "relay payload is not UTF-8 JSON".to_owned())?
        }
        _ => return Err("relay payload must be JSON".to_owned()),
    };
    serde_json::from_str(text).map_err(|e| format!("bad relay request: {e}"))
}

async fn finish(responder: Responder, outcome: RequestOutcome) {
    let _ = match outcome {
        RequestOutcome::Completed { status, payload } => responder.end(status, payload).await,
        RequestOutcome::TimedOut => {
            responder
                .end(Status::TIMEOUT, error_json("target timed out"))
                .await
        }
        RequestOutcome::Cancelled => {
            responder
                .end(Status::CANCELLED, error_json("relay cancelled"))
                .await
        }
        RequestOutcome::Closed => {
            responder
                .end(Status::ERROR, error_json("target connection closed"))
                .await
        }
    };
}

async fn fail(responder: Responder, message: &str) {
    let _ = responder.fail(error_json(message)).await;
}

fn error_json(message: &str) -> PayloadBuf {
    PayloadBuf::Json(serde_json::json!({ "error": message }).to_string())
}
