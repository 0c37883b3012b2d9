//! Connections that never finish an HTTP request must not live forever or crowd
//! out real clients. Silent sockets, partial and trickled request headers are closed by
//! `header-read-timeout-ms`; a keep-alive connection idle after `/health` by
//! `idle-keepalive-timeout-ms`; past `max-half-open` the oldest half-open connections are
//! shed; and one address holds at most `max-handshaking-per-address` handshake slots.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use sentelite_hostile_tests::bystander::Bystander;
use sentelite_hostile_tests::http;
use sentelite_hostile_tests::within;
use sentelite_hostile_tests::ws::{HelloFields, Peer};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::target::Target;

/// Both pre-upgrade timeouts, short so the test sees them fire.
const TIMEOUT_MS: u64 = 500;
/// Allowed lateness of a close after its timeout, for a loaded machine.
const MARGIN: Duration = Duration::from_millis(1500);

fn short_timeouts() -> String {
    format!("header-read-timeout-ms = {TIMEOUT_MS}\nidle-keepalive-timeout-ms = {TIMEOUT_MS}\n")
}

/// Asserts that `stream`, opened at `since`, is closed between half the timeout and the
/// timeout plus the margin.
async fn assert_closed_by_timeout(mut stream: TcpStream, since: Instant, what: &str) {
    let timeout = Duration::from_millis(TIMEOUT_MS);
    let closed = http::closed_after(&mut stream, since, timeout + MARGIN).await;
    let Some(after) = closed else {
        panic!(
            "{what}: still open {:?} after the {timeout:?} timeout",
            MARGIN
        );
    };
    assert!(
        after >= timeout / 2,
        "{what}: closed after {after:?}, before the {timeout:?} timeout could pass"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_partial_and_trickled_headers_are_closed_by_the_header_timeout() {
    let target = Target::start(&short_timeouts()).await;
    let addr = target.addr().to_owned();

    let silent = async {
        let stream = http::connect(&addr).await;
        assert_closed_by_timeout(stream, Instant::now(), "silent socket").await;
    };
    let partial = async {
        let mut stream = http::connect(&addr).await;
        let since = Instant::now();
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: sentelite\r\n")
            .await
            .expect("write partial head");
        assert_closed_by_timeout(stream, since, "partial request head").await;
    };
    let trickled = async {
        // One header byte every 50 ms: each byte is progress, but the head never ends.
        let mut stream = http::connect(&addr).await;
        let since = Instant::now();
        let limit = Duration::from_millis(TIMEOUT_MS) + MARGIN;
        stream
            .write_all(b"GET /health HTTP/1.1\r\nX-Slow: ")
            .await
            .expect("write head start");
        while since.elapsed() < limit {
            if stream.write_all(b"a").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_closed_by_timeout(stream, since, "trickled request head").await;
    };
    tokio::join!(silent, partial, trickled);
    target.assert_survived("pre-upgrade stalls").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_after_health_is_closed() {
    let target = Target::start(&short_timeouts()).await;
    let mut stream = http::connect(target.addr()).await;
    let response = http::get_health_keep_alive(&mut stream)
        .await
        .expect("health answer");
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"ok"[..])
    );
    assert_closed_by_timeout(stream, Instant::now(), "idle keep-alive connection").await;
    target.assert_survived("idle keep-alive").await;
}

/// Silent sockets opened past `max-half-open` in this test.
const SILENT_SOCKETS: usize = 300;
const MAX_HALF_OPEN: usize = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_socket_flood_past_max_half_open_sheds_the_oldest() {
    // A header timeout far beyond the test, so only shedding can close the silent sockets.
    let config = format!("max-half-open = {MAX_HALF_OPEN}\nheader-read-timeout-ms = 60000\n");
    let target = Target::start(&config).await;
    // Spread over 20 source addresses (15 each), below the per-address cap (default 32), so
    // only the global bound is at work; the probes below come from 127.0.0.1.
    let mut silent = Vec::with_capacity(SILENT_SOCKETS);
    for n in 0..SILENT_SOCKETS {
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1 + (n % 20) as u8));
        let stream = http::connect_from(Some(source), target.addr())
            .await
            .expect("tcp connect");
        silent.push(stream);
    }
    assert!(
        http::health_ok(target.addr(), Duration::from_secs(3)).await,
        "/health did not answer with {SILENT_SOCKETS} silent sockets open"
    );
    let newcomer = within(
        Duration::from_secs(10),
        "a new device to connect",
        Bystander::join(&target.server.ws_url, "newcomer"),
    )
    .await;
    newcomer.assert_echo("beside the silent sockets").await;
    newcomer.leave().await;

    let mut closed = Vec::new();
    for (n, stream) in silent.iter_mut().enumerate() {
        let probe = http::closed_after(stream, Instant::now(), Duration::from_millis(20)).await;
        if probe.is_some() {
            closed.push(n);
        }
    }
    // The probes above were half-open too and may have shed a few more.
    assert!(
        closed.len() >= SILENT_SOCKETS - MAX_HALF_OPEN,
        "only {} of {SILENT_SOCKETS} silent sockets shed with max-half-open = {MAX_HALF_OPEN}",
        closed.len()
    );
    assert_eq!(
        closed.first(),
        Some(&0),
        "the oldest is shed first: {closed:?}"
    );
    assert!(
        closed.len() < SILENT_SOCKETS,
        "every silent socket closed, the newest should still be held"
    );
    target.assert_survived("silent socket flood").await;
}

const PER_ADDRESS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holds_at_most_its_handshake_slots() {
    let config = format!("max-handshaking-per-address = {PER_ADDRESS}\n");
    let target = Target::start(&config).await;
    let addr = target.addr().to_owned();
    let greedy = Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
    let mut held = Vec::new();
    for n in 0..PER_ADDRESS {
        match Peer::open_from(greedy, &addr, None).await {
            Ok(peer) => held.push(peer),
            Err(answer) => panic!("upgrade {n} from 127.0.0.2 refused: {answer:?}"),
        }
    }
    let over = Peer::open_from(greedy, &addr, None).await;
    assert!(
        over.is_err(),
        "upgrade {} from 127.0.0.2 admitted past max-handshaking-per-address",
        PER_ADDRESS + 1
    );
    // Another address is not affected, and completes its handshake.
    let mut other = Peer::open_from(Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), &addr, None)
        .await
        .unwrap_or_else(|answer| panic!("upgrade from 127.0.0.1 refused: {answer:?}"));
    other
        .send_frame(&HelloFields::new("other-address").frame())
        .await;
    assert!(matches!(
        other.hello_answer().await,
        sentelite_hostile_tests::ws::HelloAnswer::Welcome { .. }
    ));
    // A slot freed by a finished handshake is usable again from the greedy address.
    let mut first = held.remove(0);
    first
        .send_frame(&HelloFields::new("greedy-0").frame())
        .await;
    assert!(matches!(
        first.hello_answer().await,
        sentelite_hostile_tests::ws::HelloAnswer::Welcome { .. }
    ));
    let again = Peer::open_from(greedy, &addr, None).await;
    assert!(again.is_ok(), "freed slot not reusable: {:?}", again.err());
    target
        .assert_survived("handshake slots from one address")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_request_head_is_refused() {
    let target = Target::start("").await;
    // 4 MiB of one header line: the server must refuse it without buffering it all.
    let mut stream = http::connect(target.addr()).await;
    let since = Instant::now();
    let writing = async {
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: sentelite\r\nX-Big: ")
            .await?;
        let chunk = vec![b'a'; 64 * 1024];
        for _ in 0..64 {
            stream.write_all(&chunk).await?;
        }
        stream.write_all(b"\r\n\r\n").await
    };
    let written = tokio::time::timeout(Duration::from_secs(5), writing).await;
    if let Ok(Ok(())) = written {
        // Everything was taken: then the answer must be a refusal, not the health answer.
        let answer = http::read_response(&mut stream).await;
        assert!(
            answer.as_ref().is_none_or(|a| a.status >= 400),
            "4 MiB request head answered {answer:?}"
        );
    }
    let closed = http::closed_after(&mut stream, since, Duration::from_secs(10)).await;
    assert!(closed.is_some(), "connection with a 4 MiB head still open");
    target.assert_survived("oversize request head").await;
}
