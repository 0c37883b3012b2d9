//! The ELF registry over HTTP, for `sentelite elf` and scripts:
//!
//! - `POST /api/elf` with the ELF as the body (`?build-id=ID` to register it under an id of
//!   your own instead of its GNU build-id note) → `201` with the registered
//!   `{"build-id", "formats", "bytes"}`; `422` with `{"error": "…"}` for a file that is not an
//!   ELF, has no defmt table or no build id; `500` when it cannot be kept on disk.
//! - `GET /api/elf` → `{"elfs": [...], "frames": [...]}`: the registered ELFs and, per
//!   announced build id, how many frames were decoded, stored undecoded for want of an ELF
//!   (`unmatched`), or stored undecoded because they did not decode (`errors`).
//! - `DELETE /api/elf/{build-id}` → `204`, or `404` when none was registered.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde::Deserialize;

use super::registry::{DefmtService, RegistryError};

/// Largest ELF accepted: firmware with full debug info runs to tens of megabytes.
pub const MAX_ELF_BYTES: usize = 256 * 1024 * 1024;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct AddParams {
    build_id: Option<String>,
}

/// The `/api/elf` routes.
pub fn routes(defmt: DefmtService) -> Router {
    Router::new()
        .route(
            "/api/elf",
            get(list)
                .post(add)
                .layer(DefaultBodyLimit::max(MAX_ELF_BYTES)),
        )
        .route("/api/elf/{build_id}", delete(remove))
        .with_state(defmt)
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn error(status: StatusCode, message: &str) -> Response {
    json(status, &serde_json::json!({ "error": message }))
}

async fn add(
    State(defmt): State<DefmtService>,
    params: Result<Query<AddParams>, axum::extract::rejection::QueryRejection>,
    body: Bytes,
) -> Response {
    let Ok(Query(params)) = params else {
        return error(StatusCode::BAD_REQUEST, "the only parameter is build-id");
    };
    let added =
        tokio::task::spawn_blocking(move || defmt.add(&body, params.build_id.as_deref())).await;
    match added {
        Ok(Ok(info)) => json(StatusCode::CREATED, &info),
        Ok(Err(RegistryError::Elf(e))) => error(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn list(State(defmt): State<DefmtService>) -> Response {
    json(
        StatusCode::OK,
        &serde_json::json!({ "elfs": defmt.list(), "frames": defmt.counters() }),
    )
}

async fn remove(State(defmt): State<DefmtService>, Path(build_id): Path<String>) -> Response {
    match defmt.remove(&build_id) {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, "no ELF registered for that build id"),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}
