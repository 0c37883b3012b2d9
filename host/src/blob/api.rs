//! The blob API over HTTP, for `sentelite blob … --server URL` and scripts:
//!
//! - `POST /api/blobs/push` with a JSON [`PushBody`] → newline-delimited JSON, one
//!   [`TransferRecord`] per update, the last one in its end state. Refusals before anything
//!   is sent get a JSON `{"error": "…", "code": "…"}` with `400` (`bad-request`,
//!   `bad-handler`), `404` (`unknown-client`, `unknown-blob`) or `503` (`not-delivered`).
//! - `POST /api/blobs/upload` with `{"client": ID, "source": "ns/name"}` → the same, for a
//!   `blob/upload` directive.
//! - `GET /api/blobs/transfers?client=ID&limit=N` → a JSON array of records, oldest first.
//! - `GET /api/blobs/transfers/tail?client=ID` → newline-delimited JSON of every update from
//!   now on; `{"missed": N}` when a slow reader lost some.
//! - `POST /api/blobs/transfers/{id}/cancel` → `202` with `{"transfer-id": ID}` once the
//!   client is being sent a Cancel (the record ends `cancelled`, or as the client's End
//!   says if that came first); `404` `unknown-transfer` when no directive of that id is in
//!   flight.
//! - `GET /api/blobs` → the stored blobs.

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::{BlobId, BlobService, BlobSource, FetchOptions, HandlerKind, PushError, PushRequest};
use super::{Transfer, TransferRecord};
use crate::ServerHandle;

/// The body of `POST /api/blobs/push`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PushBody {
    /// The client id.
    pub client: String,
    /// The handler, `ns/name`.
    pub handler: String,
    /// Which directive; `process` when absent.
    #[serde(default)]
    pub kind: Option<HandlerKind>,
    /// A stored blob's hash; or, with `url`, the hash the client verifies.
    #[serde(default)]
    pub sha256: Option<String>,
    /// A URL to fetch from instead of the store.
    #[serde(default)]
    pub url: Option<String>,
    /// The size, with `url`.
    #[serde(default)]
    pub size: Option<u64>,
    /// Further sources.
    #[serde(default)]
    pub mirrors: Vec<String>,
    /// The media type.
    #[serde(default)]
    pub content_type: Option<String>,
    /// The directive's options.
    #[serde(default)]
    pub options: FetchOptions,
}

/// The body of `POST /api/blobs/upload`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct UploadBody {
    /// The client id.
    pub client: String,
    /// What the client uploads, `ns/name`.
    pub source: String,
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn refusal(status: StatusCode, code: &str, message: &str) -> Response {
    json(
        status,
        &serde_json::json!({ "error": message, "code": code }),
    )
}

fn refused(e: &PushError) -> Response {
    let (status, code) = match e {
        PushError::UnknownClient(_) => (StatusCode::NOT_FOUND, "unknown-client"),
        PushError::UnknownBlob(_) => (StatusCode::NOT_FOUND, "unknown-blob"),
        PushError::BadHandler(_) => (StatusCode::BAD_REQUEST, "bad-handler"),
        PushError::TooManyMirrors(_) => (StatusCode::BAD_REQUEST, "bad-request"),
        PushError::NoBaseUrl => (StatusCode::INTERNAL_SERVER_ERROR, "no-base-url"),
        PushError::Delivery(_) => (StatusCode::SERVICE_UNAVAILABLE, "not-delivered"),
        PushError::Record(_) => (StatusCode::INTERNAL_SERVER_ERROR, "record"),
    };
    refusal(status, code, &e.to_string())
}

/// Stored blobs are named under the URL the CLI reached this server by, when the server
/// was not told one.
fn learn_base(blobs: &BlobService, headers: &HeaderMap) {
    if let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
        blobs.set_base_url(&format!("http://{host}"));
    }
}

/// A JSON request body, or the text of a 400 answer.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(refusal(
            StatusCode::BAD_REQUEST,
            "bad-request",
            &e.to_string(),
        ))
    })
}

pub(super) async fn push(
    State(blobs): State<BlobService>,
    Extension(server): Extension<ServerHandle>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: PushBody = match parse(&body) {
        Ok(body) => body,
        Err(response) => return *response,
    };
    let sha256 = match body.sha256.as_deref().map(BlobId::parse).transpose() {
        Ok(sha) => sha,
        Err(e) => return refusal(StatusCode::BAD_REQUEST, "bad-request", &e.to_string()),
    };
    let source = match (body.url, sha256) {
        (Some(url), sha256) => BlobSource::Url {
            url,
            sha256,
            size: body.size,
        },
        (None, Some(sha256)) => BlobSource::Stored(sha256),
        (None, None) => {
            return refusal(
                StatusCode::BAD_REQUEST,
                "bad-request",
                "sha256 or url required",
            );
        }
    };
    learn_base(&blobs, &headers);
    let request = PushRequest {
        kind: body.kind.unwrap_or(HandlerKind::Process),
        handler: body.handler,
        source,
        mirrors: body.mirrors,
        content_type: body.content_type,
        options: body.options,
    };
    match blobs.push(&server, &body.client, request).await {
        Ok(transfer) => stream_of(transfer),
        Err(e) => refused(&e),
    }
}

pub(super) async fn upload(
    State(blobs): State<BlobService>,
    Extension(server): Extension<ServerHandle>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: UploadBody = match parse(&body) {
        Ok(body) => body,
        Err(response) => return *response,
    };
    learn_base(&blobs, &headers);
    match blobs.push_upload(&server, &body.client, &body.source).await {
        Ok(transfer) => stream_of(transfer),
        Err(e) => refused(&e),
    }
}

fn line_of(record: &TransferRecord) -> Bytes {
    let mut line = serde_json::to_vec(record).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// The transfer's record now and at every change, until its end state.
fn stream_of(mut transfer: Transfer) -> Response {
    let first = transfer.updates.borrow_and_update().clone();
    transfer.done = first.state.is_end();
    let lines = futures_util::stream::unfold(
        (Some(first), transfer),
        |(first, mut transfer)| async move {
            if let Some(first) = first {
                return Some((
                    Ok::<_, std::convert::Infallible>(line_of(&first)),
                    (None, transfer),
                ));
            }
            let next = transfer.next().await?;
            Some((Ok(line_of(&next)), (None, transfer)))
        },
    );
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub(super) struct ListParams {
    client: Option<String>,
    limit: Option<usize>,
}

type Params = Result<Query<ListParams>, axum::extract::rejection::QueryRejection>;

pub(super) async fn transfers(State(blobs): State<BlobService>, params: Params) -> Response {
    let params = match params {
        Ok(Query(p)) => p,
        Err(e) => return refusal(StatusCode::BAD_REQUEST, "bad-request", &e.body_text()),
    };
    let result = tokio::task::spawn_blocking(move || {
        blobs.read(|s| s.list(params.client.as_deref(), params.limit.unwrap_or(0)))
    })
    .await;
    match result {
        Ok(Ok(rows)) => json(StatusCode::OK, &rows),
        Ok(Err(e)) => refusal(StatusCode::INTERNAL_SERVER_ERROR, "record", &e.to_string()),
        Err(_) => refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "record",
            "query task failed",
        ),
    }
}

pub(super) async fn cancel(State(blobs): State<BlobService>, Path(id): Path<String>) -> Response {
    if blobs.cancel(&id) {
        json(
            StatusCode::ACCEPTED,
            &serde_json::json!({ "transfer-id": id }),
        )
    } else {
        refusal(
            StatusCode::NOT_FOUND,
            "unknown-transfer",
            &format!("no directive {id} in flight"),
        )
    }
}

pub(super) async fn tail(State(blobs): State<BlobService>, params: Params) -> Response {
    let client = match params {
        Ok(Query(p)) => p.client,
        Err(e) => return refusal(StatusCode::BAD_REQUEST, "bad-request", &e.body_text()),
    };
    let live = blobs.subscribe();
    let lines = futures_util::stream::unfold((live, client), |(mut live, client)| async move {
        loop {
            let line = match live.recv().await {
                Ok(r) if client.as_ref().is_none_or(|c| *c == r.client) => line_of(&r),
                Ok(_) => continue,
                Err(RecvError::Lagged(n)) => {
                    Bytes::from(format!("{}\n", serde_json::json!({ "missed": n })))
                }
                Err(RecvError::Closed) => return None,
            };
            return Some((Ok::<_, std::convert::Infallible>(line), (live, client)));
        }
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}

pub(super) async fn list(State(blobs): State<BlobService>) -> Response {
    let store = blobs.store().clone();
    match tokio::task::spawn_blocking(move || store.list()).await {
        Ok(Ok(rows)) => json(StatusCode::OK, &rows),
        _ => refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store",
            "cannot list the store",
        ),
    }
}
