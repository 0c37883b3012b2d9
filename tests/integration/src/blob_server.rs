//! A blob HTTP server for the blob tests and the fetch bench, standing in for the host's
//! `/blobs/<sha256>` route: `GET`/`HEAD` with `Range` through tower-http's `ServeDir`, and the
//! resumable `PUT` upload of the wire contract (`Content-Range: bytes a-b/total`, `bytes */total`
//! to ask what is held, SHA-256 checked on the last chunk).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use sha2::{Digest, Sha256};
use tower_http::services::ServeDir;

/// Largest upload chunk taken in one `PUT`.
const MAX_CHUNK: usize = 64 << 20;

/// A running server; it stops when the runtime it was spawned on stops.
pub struct BlobServer {
    /// Where it listens.
    pub addr: SocketAddr,
}

impl BlobServer {
    /// `http://addr/blobs`.
    pub fn base_url(&self) -> String {
        format!("http://{}/blobs", self.addr)
    }

    /// `http://addr/blobs/<sha256>`.
    pub fn url(&self, sha256: &str) -> String {
        format!("{}/{sha256}", self.base_url())
    }
}

/// Serves the files of `root/blobs` (named by their SHA-256) at `/blobs/<name>` on a loopback
/// port, in the current tokio runtime. Uploads land there too, partial ones as `<sha>.upload`.
pub async fn start(root: &Path) -> BlobServer {
    let blobs = Arc::new(blob_dir(root));
    let app = Router::new().route(
        "/blobs/{sha}",
        put(upload)
            .with_state(blobs)
            .layer(DefaultBodyLimit::max(MAX_CHUNK))
            .fallback_service(ServeDir::new(root)),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind blob server");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    BlobServer { addr }
}

/// `root/blobs`, created if missing: where the server's blobs are.
pub fn blob_dir(root: &Path) -> PathBuf {
    let dir = root.join("blobs");
    std::fs::create_dir_all(&dir).expect("create blob dir");
    dir
}

/// Writes `data` into `root/blobs` under its SHA-256 and returns the hex hash.
pub fn store(root: &Path, data: &[u8]) -> String {
    let sha = hex::encode(Sha256::digest(data));
    std::fs::write(blob_dir(root).join(&sha), data).expect("write blob");
    sha
}

enum ContentRange {
    Query,
    Chunk { start: u64, end: u64, total: u64 },
}

fn content_range(headers: &HeaderMap) -> Option<ContentRange> {
    let value = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
    let (range, total) = value.strip_prefix("bytes ")?.split_once('/')?;
    let total = total.parse().ok()?;
    if range == "*" {
        let _: u64 = total;
        return Some(ContentRange::Query);
    }
    let (a, b) = range.split_once('-')?;
    Some(ContentRange::Chunk {
        start: a.parse().ok()?,
        end: b.parse().ok()?,
        total,
    })
}

fn held(status: StatusCode, n: u64) -> Response {
    let mut response = status.into_response();
    if n > 0 {
        let range = HeaderValue::from_str(&format!("bytes=0-{}", n - 1)).expect("header");
        response.headers_mut().insert(header::RANGE, range);
    }
    response
}

async fn upload(
    State(dir): State<Arc<PathBuf>>,
    UrlPath(sha): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let part = dir.join(format!("{sha}.upload"));
    let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    match content_range(&headers) {
        None => StatusCode::BAD_REQUEST.into_response(),
        Some(ContentRange::Query) => held(StatusCode::PERMANENT_REDIRECT, have),
        Some(ContentRange::Chunk { start, end, total }) => {
            if start != have || end + 1 - start != body.len() as u64 || end >= total {
                return held(StatusCode::CONFLICT, have);
            }
            let mut data = std::fs::read(&part).unwrap_or_default();
            data.extend_from_slice(&body);
            if end + 1 < total {
                std::fs::write(&part, &data).expect("write part");
                return held(StatusCode::PERMANENT_REDIRECT, end + 1);
            }
            let _ = std::fs::remove_file(&part);
            if hex::encode(Sha256::digest(&data)) != sha {
                return StatusCode::UNPROCESSABLE_ENTITY.into_response();
            }
            std::fs::write(dir.join(&sha), &data).expect("write blob");
            StatusCode::CREATED.into_response()
        }
    }
}
