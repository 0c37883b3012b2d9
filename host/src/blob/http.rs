//! `GET` / `HEAD /blobs/<sha256>`: tower-http's `ServeFile` does the HTTP (ranges, 206,
//! `Content-Range`, 416, `HEAD`); this wrapper adds what it lacks for a content-addressed
//! store: the `ETag` is the quoted SHA-256 (its own is derived from size and mtime), and
//! `If-Range` / `If-None-Match` are evaluated against that ETag. A blob never changes under
//! its name, so an `If-Range` that names it keeps the range and any other validator (an
//! older ETag, a date) gets the whole blob, as RFC 9110 §13.1.5 asks.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower_http::services::ServeFile;
use tower_service::Service;

use super::BlobService;
use super::store::BlobId;

/// The ETag of blob `id`: its hash, quoted.
pub fn etag_of(id: &BlobId) -> String {
    format!("\"{id}\"")
}

pub(super) async fn get_blob(
    State(blobs): State<BlobService>,
    Path(name): Path<String>,
    mut request: Request,
) -> Response {
    let Ok(id) = BlobId::parse(&name) else {
        return (StatusCode::NOT_FOUND, "no such blob").into_response();
    };
    let etag = etag_of(&id);
    let Ok(etag_value) = HeaderValue::from_str(&etag) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let headers = request.headers_mut();
    let exists = blobs.store().get(&id).is_some();
    if exists
        && headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| names(v, &etag))
    {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response();
    }
    if let Some(validator) = headers.remove(header::IF_RANGE)
        && validator.as_bytes() != etag.as_bytes()
    {
        headers.remove(header::RANGE);
    }
    strip_file_validators(headers);
    let mut serve =
        ServeFile::new(blobs.store().path_of(&id)).with_buf_chunk_size(blobs.serve_chunk());
    let Ok(mut response) = serve.call(request).await;
    if response.status().is_success() || response.status() == StatusCode::RANGE_NOT_SATISFIABLE {
        response.headers_mut().insert(header::ETAG, etag_value);
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
        response.headers_mut().remove(header::LAST_MODIFIED);
    }
    response.map(Body::new)
}

/// The validators `ServeFile` would check against its own ETag and mtime; ours are handled
/// above, so they must not reach it.
fn strip_file_validators(headers: &mut HeaderMap) {
    headers.remove(header::IF_NONE_MATCH);
    headers.remove(header::IF_MATCH);
    headers.remove(header::IF_MODIFIED_SINCE);
    headers.remove(header::IF_UNMODIFIED_SINCE);
}

/// Whether an `If-None-Match` list names `etag` (weak comparison, `*` names any).
fn names(list: &HeaderValue, etag: &str) -> bool {
    let Ok(list) = list.to_str() else {
        return false;
    };
    list.split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}
