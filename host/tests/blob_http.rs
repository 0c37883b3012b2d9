//! The blob store and its HTTP side against a real server on loopback: `add` / `ls` / `rm`,
//! `GET` / `HEAD /blobs/<sha256>` with ranges, 416, `ETag`, `If-Range`, `If-None-Match`,
//! and resumable `PUT` uploads (status query, wrong start, cut chunk, hash mismatch, size
//! limit), checked header by header.

mod support;

use std::net::SocketAddr;

use sentelite_host::Server;
use sentelite_host::blob::{BlobId, BlobService, BlobSettings, BlobStore};
use sha2::{Digest, Sha256};
use support::{TempDir, start_with_blobs};

/// A deterministic blob of `len` bytes that is not a repeating pattern of a power of two.
fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn sha_of(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn blob_server(settings: BlobSettings) -> (Server, BlobService, TempDir) {
    start_with_blobs("blobs", settings).await
}

/// One HTTP exchange: status, headers, body.
struct Answer {
    status: u16,
    headers: ureq::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn call(
    method: &'static str,
    url: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
) -> Answer {
    tokio::task::spawn_blocking(move || {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .new_agent();
        let mut request = ureq::http::Request::builder().method(method).uri(&url);
        for (name, value) in &headers {
            request = request.header(*name, value);
        }
        let request = request.body(body).unwrap();
        let response = agent.run(request).expect("the server answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()
            .unwrap_or_default();
        Answer {
            status,
            headers,
            body,
        }
    })
    .await
    .unwrap()
}

fn blob_url(addr: SocketAddr, sha: &str) -> String {
    format!("http://{addr}/blobs/{sha}")
}

#[test]
fn store_adds_lists_and_removes_by_hash() {
    let dir = TempDir::new("blob-store");
    let store = BlobStore::open(&dir.0).unwrap();
    let data = content(3 * 1024 * 1024 + 17);
    let stored = store.add_reader(&data[..]).unwrap();
    assert_eq!(stored.sha256.as_str(), sha_of(&data));
    assert_eq!(stored.size, data.len() as u64);
    let path = dir.0.join("blobs").join(stored.sha256.as_str());
    assert_eq!(std::fs::read(&path).unwrap(), data);
    let small = store.add_reader(&b"hello"[..]).unwrap();
    // The same content again is the same blob, stored once.
    assert_eq!(store.add_reader(&b"hello"[..]).unwrap(), small);
    let listed = store.list().unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let mut expected = vec![stored.clone(), small.clone()];
    expected.sort_by(|a, b| a.sha256.cmp(&b.sha256));
    assert_eq!(listed, expected);
    // Nothing but blobs in the directory (no temporary file left behind).
    let names = std::fs::read_dir(dir.0.join("blobs")).unwrap().count();
    assert_eq!(names, 3, "two blobs and the partial directory");
    assert!(store.remove(&small.sha256).unwrap());
    assert!(!store.remove(&small.sha256).unwrap());
    assert_eq!(store.list().unwrap(), vec![stored]);
    assert!(BlobId::parse("abc").is_err());
    assert!(BlobId::parse(&"g".repeat(64)).is_err());
}

#[tokio::test]
async fn get_serves_ranges_etags_and_416() {
    let (server, blobs, _dir) = blob_server(BlobSettings::default()).await;
    let addr = server.local_addr();
    let data = content(100_000);
    let blob = blobs.store().add_reader(&data[..]).unwrap();
    let sha = blob.sha256.to_string();
    let url = blob_url(addr, &sha);
    let etag = format!("\"{sha}\"");

    let full = call("GET", url.clone(), vec![], vec![]).await;
    assert_eq!(full.status, 200);
    assert_eq!(full.body, data);
    assert_eq!(full.header("etag"), Some(etag.as_str()));
    assert_eq!(full.header("accept-ranges"), Some("bytes"));
    assert_eq!(full.header("content-length"), Some("100000"));
    assert_eq!(full.header("last-modified"), None);

    let part = call(
        "GET",
        url.clone(),
        vec![("range", "bytes=10-19".into())],
        vec![],
    )
    .await;
    assert_eq!(part.status, 206);
    assert_eq!(part.header("content-range"), Some("bytes 10-19/100000"));
    assert_eq!(part.header("content-length"), Some("10"));
    assert_eq!(part.header("etag"), Some(etag.as_str()));
    assert_eq!(part.body, &data[10..20]);

    let open = call(
        "GET",
        url.clone(),
        vec![("range", "bytes=99990-".into())],
        vec![],
    )
    .await;
    assert_eq!(open.status, 206);
    assert_eq!(
        open.header("content-range"),
        Some("bytes 99990-99999/100000")
    );
    assert_eq!(open.body, &data[99_990..]);

    let suffix = call(
        "GET",
        url.clone(),
        vec![("range", "bytes=-5".into())],
        vec![],
    )
    .await;
    assert_eq!(suffix.status, 206);
    assert_eq!(suffix.body, &data[99_995..]);

    for bad in [
        "bytes=100000-",
        "bytes=200000-300000",
        "bytes=50-10",
        "lines=1-2",
    ] {
        let refused = call("GET", url.clone(), vec![("range", bad.into())], vec![]).await;
        assert_eq!(refused.status, 416, "{bad}");
        assert_eq!(
            refused.header("content-range"),
            Some("bytes */100000"),
            "{bad}"
        );
        assert!(refused.body.is_empty(), "{bad}");
    }

    let same = call(
        "GET",
        url.clone(),
        vec![("range", "bytes=0-3".into()), ("if-range", etag.clone())],
        vec![],
    )
    .await;
    assert_eq!(same.status, 206, "If-Range naming the blob keeps the range");
    assert_eq!(same.body, &data[..4]);
    let other = call(
        "GET",
        url.clone(),
        vec![
            ("range", "bytes=0-3".into()),
            ("if-range", "\"older\"".into()),
        ],
        vec![],
    )
    .await;
    assert_eq!(other.status, 200, "a stale If-Range gets the whole blob");
    assert_eq!(other.body, data);

    let cached = call(
        "GET",
        url.clone(),
        vec![("if-none-match", etag.clone())],
        vec![],
    )
    .await;
    assert_eq!(cached.status, 304);
    assert_eq!(cached.header("etag"), Some(etag.as_str()));
    assert!(cached.body.is_empty());

    let head = call("HEAD", url.clone(), vec![], vec![]).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("100000"));
    assert_eq!(head.header("etag"), Some(etag.as_str()));
    assert!(head.body.is_empty());
    let head_range = call(
        "HEAD",
        url.clone(),
        vec![("range", "bytes=5-9".into())],
        vec![],
    )
    .await;
    assert_eq!(head_range.status, 206);
    assert_eq!(head_range.header("content-range"), Some("bytes 5-9/100000"));

    let missing = call("GET", blob_url(addr, &"0".repeat(64)), vec![], vec![]).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("etag"), None);
    let bad_name = call("GET", blob_url(addr, "..%2Fblobs.db"), vec![], vec![]).await;
    assert_eq!(bad_name.status, 404);

    let foreign = call(
        "GET",
        url.clone(),
        vec![("origin", "https://elsewhere.example".into())],
        vec![],
    )
    .await;
    assert_eq!(
        foreign.status, 403,
        "the origin check stands in front of blobs"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn put_resumes_checks_the_start_and_verifies_the_hash() {
    let (server, blobs, _dir) = blob_server(BlobSettings::default()).await;
    let addr = server.local_addr();
    let data = content(10_000);
    let sha = sha_of(&data);
    let url = blob_url(addr, &sha);
    let range = |v: String| vec![("content-range", v)];

    let asked = call("PUT", url.clone(), range("bytes */10000".into()), vec![]).await;
    assert_eq!(asked.status, 308);
    assert_eq!(asked.header("range"), None, "nothing held yet");

    let first = call(
        "PUT",
        url.clone(),
        range("bytes 0-3999/10000".into()),
        data[..4000].to_vec(),
    )
    .await;
    assert_eq!(first.status, 308);
    assert_eq!(first.header("range"), Some("bytes=0-3999"));

    let wrong = call(
        "PUT",
        url.clone(),
        range("bytes 5000-9999/10000".into()),
        data[5000..].to_vec(),
    )
    .await;
    assert_eq!(wrong.status, 409);
    assert_eq!(wrong.header("range"), Some("bytes=0-3999"));
    let overlap = call(
        "PUT",
        url.clone(),
        range("bytes 0-999/10000".into()),
        data[..1000].to_vec(),
    )
    .await;
    assert_eq!(overlap.status, 409, "a chunk over bytes already held");
    assert_eq!(overlap.header("range"), Some("bytes=0-3999"));

    let asked = call("PUT", url.clone(), range("bytes */10000".into()), vec![]).await;
    assert_eq!(asked.status, 308);
    assert_eq!(asked.header("range"), Some("bytes=0-3999"));
    let id = BlobId::parse(&sha).unwrap();
    assert!(
        blobs.store().get(&id).is_none(),
        "not in the store before the last byte"
    );

    let long = call(
        "PUT",
        url.clone(),
        range("bytes 4000-4009/10000".into()),
        data[4000..4100].to_vec(),
    )
    .await;
    assert_eq!(long.status, 400, "a body longer than its range is refused");
    let asked = call("PUT", url.clone(), range("bytes */10000".into()), vec![]).await;
    assert_eq!(
        asked.header("range"),
        Some("bytes=0-3999"),
        "and none of it kept"
    );

    let last = call(
        "PUT",
        url.clone(),
        range("bytes 4000-9999/10000".into()),
        data[4000..].to_vec(),
    )
    .await;
    assert_eq!(last.status, 201);
    assert_eq!(last.header("etag"), Some(format!("\"{sha}\"").as_str()));
    assert_eq!(
        last.header("location"),
        Some(format!("/blobs/{sha}").as_str())
    );
    assert_eq!(blobs.store().get(&id).map(|b| b.size), Some(10_000));
    assert!(!blobs.store().partial_path(&id).exists());
    let fetched = call("GET", url.clone(), vec![], vec![]).await;
    assert_eq!(fetched.body, data);
    let again = call("PUT", url.clone(), range("bytes */10000".into()), vec![]).await;
    assert_eq!(again.status, 200, "a stored blob needs no upload");

    // Bytes that do not hash to the name are discarded at the last chunk.
    let claimed = sha_of(b"something else");
    let bad_url = blob_url(addr, &claimed);
    let half = call(
        "PUT",
        bad_url.clone(),
        range("bytes 0-4999/10000".into()),
        data[..5000].to_vec(),
    )
    .await;
    assert_eq!(half.status, 308);
    let mismatch = call(
        "PUT",
        bad_url.clone(),
        range("bytes 5000-9999/10000".into()),
        data[5000..].to_vec(),
    )
    .await;
    assert_eq!(mismatch.status, 422);
    let claimed_id = BlobId::parse(&claimed).unwrap();
    assert!(blobs.store().get(&claimed_id).is_none());
    assert!(
        !blobs.store().partial_path(&claimed_id).exists(),
        "partial discarded"
    );
    let asked = call(
        "PUT",
        bad_url.clone(),
        range("bytes */10000".into()),
        vec![],
    )
    .await;
    assert_eq!(asked.status, 308);
    assert_eq!(asked.header("range"), None);

    let no_range = call("PUT", bad_url.clone(), vec![], data.clone()).await;
    assert_eq!(no_range.status, 400);
    let inverted = call(
        "PUT",
        bad_url.clone(),
        range("bytes 9-3/10000".into()),
        vec![0; 7],
    )
    .await;
    assert_eq!(inverted.status, 400);
    server.shutdown().await;
}

#[tokio::test]
async fn put_refuses_blobs_over_the_limit() {
    let settings = BlobSettings {
        max_upload_bytes: 1000,
        ..BlobSettings::default()
    };
    let (server, blobs, _dir) = blob_server(settings).await;
    let data = content(1001);
    let sha = sha_of(&data);
    let url = blob_url(server.local_addr(), &sha);
    let refused = call(
        "PUT",
        url.clone(),
        vec![("content-range", "bytes 0-1000/1001".into())],
        data,
    )
    .await;
    assert_eq!(refused.status, 413);
    let id = BlobId::parse(&sha).unwrap();
    assert!(!blobs.store().partial_path(&id).exists(), "nothing written");
    server.shutdown().await;
}

/// The bytes a device sends for one range (the embassy adapter's request head: `GET`,
/// `Host`, `Range`, an `If-Range` when resuming, nothing else) over a plain TCP connection,
/// and what comes back until the head and `Content-Length` bytes of body are in, or the
/// server closes.
async fn device_get(addr: SocketAddr, path: &str, range: &str, if_range: Option<&str>) -> Vec<u8> {
    use sentelite_core::blob::http::{BodyLength, parse_response};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nRange: bytes={range}\r\n");
    if let Some(etag) = if_range {
        head.push_str(&format!("If-Range: {etag}\r\n"));
    }
    head.push_str("\r\n");
    let exchange = async {
        let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        socket.write_all(head.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let mut piece = [0u8; 16 * 1024];
        loop {
            if let Ok(response) = parse_response(&answer)
                && let BodyLength::Bytes(n) = response.body
                && answer.len() as u64 >= response.head_len as u64 + n
            {
                return answer;
            }
            let n = socket.read(&mut piece).await.unwrap();
            if n == 0 {
                return answer;
            }
            answer.extend_from_slice(&piece[..n]);
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), exchange)
        .await
        .expect("the server answers within 20 s")
}

/// The server's answers to a device's range requests, read by the device's own reader
/// (`sentelite_core::blob::http`): each carries its length (a device refuses a chunked
/// coding), the range and total the fetch machine checks, and the ETag it resumes with.
#[tokio::test]
async fn a_device_reads_the_servers_range_answers_with_its_own_reader() {
    use sentelite_core::blob::http::{BodyLength, parse_response};
    let (server, blobs, _dir) = blob_server(BlobSettings::default()).await;
    let addr = server.local_addr();
    let data = content(100_000);
    let sha = blobs
        .store()
        .add_reader(&data[..])
        .unwrap()
        .sha256
        .to_string();
    let path = format!("/blobs/{sha}");
    let etag = format!("\"{sha}\"");

    /// A request (its range and `If-Range`) and the answer expected: status, the
    /// `Content-Range` start and the total the machine reads, and the body's bytes.
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        u16,
        Option<u64>,
        Option<u64>,
        &'a [u8],
    );
    let cases: [Case<'_>; 4] = [
        // The first request of a transfer: from 0 to the end.
        ("0-", None, 206, Some(0), Some(100_000), &data),
        // A chunk of a transfer that asks by chunks.
        ("10-19", None, 206, Some(10), Some(100_000), &data[10..20]),
        // A resume with the ETag it saved.
        (
            "65536-",
            Some(etag.as_str()),
            206,
            Some(65_536),
            Some(100_000),
            &data[65_536..],
        ),
        // A resume with an ETag the server no longer has: the whole blob, its size from
        // the length.
        ("65536-", Some("\"stale\""), 200, None, Some(100_000), &data),
    ];
    for (range, if_range, status, start, total, body) in cases {
        let answer = device_get(addr, &path, range, if_range).await;
        let response = parse_response(&answer)
            .unwrap_or_else(|e| panic!("{range} {if_range:?}: {e:?} in {answer:?}"));
        assert_eq!(response.head.status, status, "{range} {if_range:?}");
        assert_eq!(
            (response.head.range_start, response.head.total),
            (start, total),
            "{range} {if_range:?}"
        );
        assert_eq!(
            response.head.etag,
            Some(etag.as_str()),
            "{range} {if_range:?}"
        );
        assert_eq!(response.body, BodyLength::Bytes(body.len() as u64));
        assert_eq!(&answer[response.head_len..], body, "{range} {if_range:?}");
    }
}
