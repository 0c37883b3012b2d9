//! `PUT /blobs/<sha256>`: resumable uploads into the store.
//!
//! Every `PUT` carries `Content-Range`. `bytes a-b/total` appends a chunk, which must start
//! at what the server holds (else `409` with the held `Range`); `bytes */total` with an
//! empty body asks how much the server holds (`308`, with `Range: bytes=0-(n-1)` when it
//! holds any). Bytes live in `blobs/partial/<sha256>` until the last one arrives; then the
//! whole is hashed: a match moves it into the store (`201`), a mismatch deletes it (`422`).
//! A chunk cut short keeps what arrived, so the client resumes from there. A blob already
//! stored answers `200` at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::BlobService;
use super::http::etag_of;
use super::store::{BlobId, hash_file};
use crate::registry::lock;

/// `Content-Range` of an upload `PUT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadRange {
    /// `bytes */total`: how much does the server hold?
    Query {
        /// Size of the whole blob.
        total: u64,
    },
    /// `bytes start-end/total`: bytes `start..=end` follow.
    Chunk {
        /// First byte's offset.
        start: u64,
        /// Last byte's offset.
        end: u64,
        /// Size of the whole blob.
        total: u64,
    },
}

impl UploadRange {
    /// Parses a `Content-Range` value; `None` unless it is well formed and consistent.
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.trim().strip_prefix("bytes ")?.trim_start();
        let (range, total) = rest.split_once('/')?;
        let total: u64 = total.trim().parse().ok()?;
        if range.trim() == "*" {
            return Some(Self::Query { total });
        }
        let (start, end) = range.split_once('-')?;
        let (start, end): (u64, u64) = (start.trim().parse().ok()?, end.trim().parse().ok()?);
        (start <= end && end < total).then_some(Self::Chunk { start, end, total })
    }

    fn total(self) -> u64 {
        match self {
            Self::Query { total } | Self::Chunk { total, .. } => total,
        }
    }
}

/// One lock per blob being uploaded, so two `PUT`s of one hash never write at once.
#[derive(Debug, Default)]
pub(super) struct UploadLocks(Mutex<HashMap<BlobId, Arc<tokio::sync::Mutex<()>>>>);

impl UploadLocks {
    fn of(&self, id: &BlobId) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = lock(&self.0);
        map.retain(|_, l| Arc::strong_count(l) > 1);
        map.entry(id.clone()).or_default().clone()
    }
}

fn held_range(held: u64) -> Option<(header::HeaderName, HeaderValue)> {
    (held > 0).then(|| {
        (
            header::RANGE,
            HeaderValue::from_str(&format!("bytes=0-{}", held - 1))
                .unwrap_or(HeaderValue::from_static("bytes=0-0")),
        )
    })
}

fn with_range(status: StatusCode, held: u64) -> Response {
    let mut response = status.into_response();
    if let Some((name, value)) = held_range(held) {
        response.headers_mut().insert(name, value);
    }
    response
}

fn text(status: StatusCode, message: &str) -> Response {
    (status, message.to_owned()).into_response()
}

pub(super) async fn put_blob(
    State(blobs): State<BlobService>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Ok(id) = BlobId::parse(&name) else {
        return text(StatusCode::NOT_FOUND, "not a SHA-256");
    };
    let Some(range) = headers
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(UploadRange::parse)
    else {
        return text(
            StatusCode::BAD_REQUEST,
            "Content-Range: bytes a-b/total or bytes */total required",
        );
    };
    if range.total() > blobs.settings().max_upload_bytes {
        return text(StatusCode::PAYLOAD_TOO_LARGE, "blob larger than allowed");
    }
    let guard = blobs.inner.uploads.of(&id);
    let _held_lock = guard.lock().await;
    if blobs.store().get(&id).is_some() {
        return (StatusCode::OK, [(header::ETAG, etag_of(&id))]).into_response();
    }
    let partial = blobs.store().partial_path(&id);
    let held = tokio::fs::metadata(&partial)
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    let (start, end, total) = match range {
        UploadRange::Query { .. } => return with_range(StatusCode::PERMANENT_REDIRECT, held),
        UploadRange::Chunk { start, end, total } => (start, end, total),
    };
    if start != held {
        return with_range(StatusCode::CONFLICT, held);
    }
    let held = match append(&partial, held, end - start + 1, body).await {
        Ok(held) => held,
        Err(response) => return *response,
    };
    if held < total {
        return with_range(StatusCode::PERMANENT_REDIRECT, held);
    }
    verify(&blobs, id).await
}

/// Appends the body to the partial file; the new length, or the answer when the body was
/// longer than its range said (the extra is not kept).
async fn append(
    partial: &std::path::Path,
    held: u64,
    expected: u64,
    body: Body,
) -> Result<u64, Box<Response>> {
    let failed = |e: std::io::Error| {
        tracing::warn!(path = %partial.display(), error = %e, "upload write failed");
        Box::new(text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot store the chunk",
        ))
    };
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(partial)
        .await
        .map_err(failed)?;
    let mut written = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(next) = stream.next().await {
        let Ok(data) = next else {
            // The client went away mid-chunk: keep what arrived, it resumes from there.
            break;
        };
        if written + data.len() as u64 > expected {
            file.flush().await.map_err(failed)?;
            file.set_len(held).await.map_err(failed)?;
            return Err(Box::new(text(
                StatusCode::BAD_REQUEST,
                "body longer than its range",
            )));
        }
        file.write_all(&data).await.map_err(failed)?;
        written += data.len() as u64;
    }
    file.flush().await.map_err(failed)?;
    file.sync_data().await.map_err(failed)?;
    Ok(held + written)
}

/// Hashes a complete partial: into the store when it matches, deleted when not.
async fn verify(blobs: &BlobService, id: BlobId) -> Response {
    let store = blobs.store().clone();
    let checked = tokio::task::spawn_blocking(move || {
        let partial = store.partial_path(&id);
        let actual = hash_file(&partial)?;
        if actual.sha256 == id {
            store.commit_partial(&id)?;
            Ok(Ok(id))
        } else {
            let _ = std::fs::remove_file(&partial);
            Ok(Err(actual.sha256))
        }
    })
    .await;
    match checked {
        Ok(Ok(Ok(id))) => (
            StatusCode::CREATED,
            [
                (header::ETAG, etag_of(&id)),
                (header::LOCATION, format!("/blobs/{id}")),
            ],
        )
            .into_response(),
        Ok(Ok(Err(actual))) => text(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("SHA-256 mismatch: the bytes hash to {actual}; upload discarded"),
        ),
        Ok(Err::<_, super::store::BlobStoreError>(e)) => {
            tracing::warn!(error = %e, "upload verification failed");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot verify the upload",
            )
        }
        Err(_) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "verification task failed",
        ),
    }
}
