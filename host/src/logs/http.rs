//! The log API over HTTP, for `sentelite logs --server URL`, dashboards and scripts:
//!
//! - `GET /api/logs?level=warn&client=ID&id=EVENT&since-ms=…&until-ms=…&grep=TEXT&limit=N` →
//!   a JSON array of records, the newest `limit` (default 100), oldest first;
//!   `&count=true` → `{"count": N}` instead.
//! - `GET /api/logs/tail?…same filters…` → newline-delimited JSON, one record per line as
//!   they are stored, until the client hangs up; a line `{"missed": N}` says a slow reader
//!   lost N records from the live feed (they are still in the store).
//! - `GET /api/logs/clients` → per-client counters.
//! - `POST /api/logs/level` with `{"client": ID, "level": "debug"}` (optionally
//!   `"enabled": false`) → sends the client a `telemetry/log-control` event that sets the
//!   levels it ships to that level and above; `{"delivered": N}` with the number of its
//!   connections that took it, `404` when none is connected.
//!
//! Bad filters get `400` with `{"error": "…"}`.

use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sentelite_core::frame::PayloadBuf;
use sentelite_core::log::{CONTROL_EVENT, FilterConfig, Level, LevelSet, LogControl};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::LogService;
use super::entry::LogEntry;
use super::query::LogQuery;

/// Query-string form of [`LogQuery`] plus `count`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
struct Params {
    level: Option<String>,
    client: Option<String>,
    id: Option<String>,
    since_ms: Option<u64>,
    until_ms: Option<u64>,
    grep: Option<String>,
    limit: Option<usize>,
    count: Option<bool>,
}

impl Params {
    fn query(&self) -> LogQuery {
        LogQuery {
            level: self.level.clone(),
            client: self.client.clone(),
            id: self.id.clone(),
            since_ms: self.since_ms,
            until_ms: self.until_ms,
            grep: self.grep.clone(),
            limit: self.limit.unwrap_or(0),
        }
    }
}

/// The routes, bound to `logs`.
pub fn routes(logs: LogService) -> Router {
    Router::new()
        .route("/api/logs", get(list))
        .route("/api/logs/tail", get(tail))
        .route("/api/logs/clients", get(clients))
        .route("/api/logs/level", post(set_level))
        .with_state(logs)
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn bad_request(message: &str) -> Response {
    json(
        StatusCode::BAD_REQUEST,
        &serde_json::json!({ "error": message }),
    )
}

/// The query string as parsed, or why it did not parse.
type Parsed = Result<Query<Params>, axum::extract::rejection::QueryRejection>;

/// The parameters, or the text of a 400 answer.
fn params_of(parsed: Parsed) -> Result<Params, String> {
    parsed.map(|Query(p)| p).map_err(|e| e.body_text())
}

async fn list(State(logs): State<LogService>, parsed: Parsed) -> Response {
    let params = match params_of(parsed) {
        Ok(p) => p,
        Err(why) => return bad_request(&why),
    };
    let query = params.query();
    let counting = params.count.unwrap_or(false);
    let result = tokio::task::spawn_blocking(move || {
        logs.read(|store| {
            if counting {
                store
                    .count(&query)
                    .map(|n| serde_json::json!({ "count": n }))
            } else {
                store
                    .query(&query)
                    .map(|rows| serde_json::to_value(rows).unwrap_or_default())
            }
        })
    })
    .await;
    match result {
        Ok(Ok(value)) => json(StatusCode::OK, &value),
        Ok(Err(super::StoreError::Query(e))) => bad_request(&e.to_string()),
        Ok(Err(e)) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({ "error": e.to_string() }),
        ),
        Err(_) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({ "error": "query task failed" }),
        ),
    }
}

/// The body of `POST /api/logs/level`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct LevelBody {
    client: String,
    level: String,
    #[serde(default = "enabled_by_default")]
    enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// Changes the levels a connected client ships, at run time, through the core's
/// `LogControl` (the client's queue filter; sampling and rates go back to their defaults).
async fn set_level(Extension(server): Extension<crate::ServerHandle>, body: Bytes) -> Response {
    let body: LevelBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => return bad_request(&e.to_string()),
    };
    let Some(level) = Level::from_name(&body.level) else {
        return bad_request(&format!("unknown level {:?}", body.level));
    };
    let control = LogControl::SetFilter(FilterConfig {
        enabled: body.enabled,
        levels: LevelSet::at_least(level),
        ..FilterConfig::default()
    });
    let mut buf = [0u8; 64];
    let Ok(len) = control.encode(&mut buf) else {
        return json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({ "error": "control does not encode" }),
        );
    };
    match server.send_to_client(
        &body.client,
        CONTROL_EVENT,
        PayloadBuf::Bytes(buf[..len].to_vec()),
    ) {
        Ok(delivery) => json(
            StatusCode::OK,
            &serde_json::json!({ "delivered": delivery.delivered }),
        ),
        Err(e) => json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({ "error": e.to_string() }),
        ),
    }
}

async fn clients(State(logs): State<LogService>) -> Response {
    match tokio::task::spawn_blocking(move || logs.read(|s| s.counters())).await {
        Ok(Ok(rows)) => json(StatusCode::OK, &rows),
        _ => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({ "error": "counters unavailable" }),
        ),
    }
}

async fn tail(State(logs): State<LogService>, parsed: Parsed) -> Response {
    let params = match params_of(parsed) {
        Ok(p) => p,
        Err(why) => return bad_request(&why),
    };
    let query = params.query();
    let live = match query.min_level() {
        Ok(Some(level)) => logs.subscribe_at_least(level),
        Ok(None) => logs.subscribe(),
        Err(e) => return bad_request(&e.to_string()),
    };
    let lines =
        futures_util::stream::unfold((live, query, logs), |(mut live, query, logs)| async move {
            loop {
                let next = tokio::select! {
                    () = logs.closed() => return None,
                    next = live.recv() => next,
                };
                let line = match next {
                    Ok(entry) if query.matches(&entry) => line_of(&entry),
                    Ok(_) => continue,
                    Err(RecvError::Lagged(n)) => {
                        format!("{}\n", serde_json::json!({ "missed": n }))
                    }
                    Err(RecvError::Closed) => return None,
                };
                return Some((
                    Ok::<_, std::convert::Infallible>(Bytes::from(line)),
                    (live, query, logs),
                ));
            }
        });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}

fn line_of(entry: &Arc<LogEntry>) -> String {
    let mut line = serde_json::to_string(&**entry).unwrap_or_default();
    line.push('\n');
    line
}
