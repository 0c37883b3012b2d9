//! `blob/upload`: hash the named source, then send it to `<url>/<sha256>` in resumable `PUT`
//! chunks (`Content-Range: bytes a-b/total`). The server says how much it holds (`308` with
//! `Range: bytes=0-e`, or `409` when a chunk did not start there), so a cut connection resumes
//! where the server's copy ends; the server checks the SHA-256 on the last chunk.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use sentelite_core::Status;
use sentelite_core::blob::directive::UploadDirective;
use sentelite_core::blob::hex;
use sentelite_core::blob::report::{ErrorReport, FailureState, UploadReport};
use sha2::{Digest, Sha256};

use super::handlers::UploadSource;
use super::http::{self, BodySink, Head, HttpTarget, Method};
use super::serve::encode;
use crate::{PayloadBuf, Runtime};

/// Bytes per `PUT`.
pub const CHUNK: usize = 8 << 20;
/// Failed exchanges in a row before the upload gives up.
const ATTEMPTS: u32 = 5;

/// Runs one upload to its end: the status and report map to end the Request with.
pub(crate) async fn run<R: Runtime>(
    runtime: &R,
    up: &UploadDirective<'_>,
    source: &UploadSource,
) -> (Status, PayloadBuf) {
    let mut failure = Failure {
        transfer_id: up.transfer_id,
        url: up.url.to_string(),
        retries: 0,
        status: None,
        offset: 0,
    };
    let (sha256, total) = match digest(source) {
        Ok(d) => d,
        Err(e) => return failure.report(&format!("reading the source: {e}")),
    };
    let sha_hex = hex::encode(&sha256);
    let target = match HttpTarget::parse(up.url) {
        Ok(t) => t.join(sha_hex.as_str()),
        Err(e) => return failure.report(&e.to_string()),
    };
    failure.url = format!("{}/{}", up.url.trim_end_matches('/'), sha_hex.as_str());
    let mut chunk = Vec::new();
    let mut fails = 0;
    let mut held: Option<u64> = None;
    // Bounded: each pass sends a chunk (the held count grows) or counts a failure.
    for _ in 0..(total / CHUNK as u64 + 2 * u64::from(ATTEMPTS) + 4) {
        let (range, body): (String, &[u8]) = match held {
            None => (format!("bytes */{total}"), &[]),
            Some(start) => {
                let len = (total - start).min(CHUNK as u64) as usize;
                if let Err(e) = read_at(source, start, len, &mut chunk) {
                    return failure.report(&format!("reading the source: {e}"));
                }
                let end = start + len as u64 - 1;
                (format!("bytes {start}-{end}/{total}"), &chunk)
            }
        };
        let mut answer = Answer::default();
        let headers = [("Content-Range", range.as_str())];
        let result =
            http::exchange(runtime, Method::PUT, &target, &headers, body, &mut answer).await;
        let Ok(_) = result else {
            fails += 1;
            failure.retries += 1;
            if fails >= ATTEMPTS {
                return failure.report("upload failed: connection errors");
            }
            held = None;
            continue;
        };
        let head = answer.0;
        failure.status = Some(head.status);
        match head.status {
            200 | 201 => {
                let report = UploadReport {
                    transfer_id: up.transfer_id,
                    sha256,
                    bytes: total,
                };
                return (Status::OK, encode(|b| report.encode(b)));
            }
            308 | 409 => {
                let next = head.held.unwrap_or(0);
                if held.is_some() && head.status == 308 && Some(next) <= held {
                    fails += 1;
                }
                if total == 0 || next >= total {
                    // Nothing left to send but not accepted: send the last byte range again.
                    held = Some(total.saturating_sub(1).min(next));
                } else {
                    held = Some(next);
                }
                failure.offset = next;
                if total == 0 {
                    return failure.report("the server did not accept an empty upload");
                }
            }
            422 => return failure.report("the server computed another SHA-256"),
            s => return failure.report(&format!("the server answered {s}")),
        }
        if fails >= ATTEMPTS {
            return failure.report("the server does not take the chunks");
        }
    }
    failure.report("upload made no progress")
}

struct Failure<'a> {
    transfer_id: &'a str,
    url: String,
    retries: u32,
    status: Option<u16>,
    offset: u64,
}

impl Failure<'_> {
    fn report(&self, error: &str) -> (Status, PayloadBuf) {
        let report = ErrorReport {
            transfer_id: self.transfer_id,
            url: &self.url,
            error,
            retry_count: self.retries,
            status_code: self.status,
            state: FailureState::Failed,
            offset: self.offset,
        };
        (Status::ERROR, encode(|b| report.encode(b)))
    }
}

/// Keeps the head of an upload answer; its short body is read and dropped.
#[derive(Default)]
struct Answer(Head, Vec<u8>);

impl BodySink for Answer {
    fn head(&mut self, head: &Head) -> bool {
        self.0 = head.clone();
        true
    }
    async fn buffer(&mut self) -> Option<&mut [u8]> {
        self.1.resize(4096, 0);
        Some(&mut self.1)
    }
    fn filled(&mut self, _n: usize) -> bool {
        true
    }
}

/// SHA-256 and length of the source, read in large blocks.
fn digest(source: &UploadSource) -> std::io::Result<([u8; 32], u64)> {
    match source {
        UploadSource::Bytes(b) => Ok((Sha256::digest(b).into(), b.len() as u64)),
        UploadSource::File(path) => {
            let mut file = File::open(path)?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            let mut total = 0u64;
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                total += n as u64;
            }
            Ok((hasher.finalize().into(), total))
        }
    }
}

fn read_at(
    source: &UploadSource,
    start: u64,
    len: usize,
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    out.clear();
    match source {
        UploadSource::Bytes(b) => {
            let start = usize::try_from(start).unwrap_or(usize::MAX);
            let piece = b
                .get(start..start.saturating_add(len))
                .ok_or(std::io::ErrorKind::UnexpectedEof)?;
            out.extend_from_slice(piece);
        }
        UploadSource::File(path) => {
            let mut file = File::open(path)?;
            file.seek(SeekFrom::Start(start))?;
            out.resize(len, 0);
            file.read_exact(out)?;
        }
    }
    Ok(())
}
