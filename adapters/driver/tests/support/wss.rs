//! `wss://` scenarios: the same client and the same test server, with TLS between them. The
//! server's certificate is self-signed and made per test, so a client trusts it only through
//! `ClientOptions::extra_root_certs`.

use std::time::{Duration, Instant};

use sentelite_core::ServerConfig;
use sentelite_driver::{
    ClientEvent, ClientOptions, CloseCode, Events, Initiator, RequestOutcome, Status,
};

use super::scenarios::{Connect, bytes, closed, opened, request_completes};
use super::{Cut, Observed, STEP, TestServer, certificate_params, options, wait_for, within};

/// What the server saw when the client refused its TLS handshake.
async fn tls_refusal(server: &TestServer) -> String {
    server
        .expect("tls refused by the client", |seen| match seen {
            Observed::TlsFailed { reason, .. } => Some(reason),
            _ => None,
        })
        .await
}

/// Waits for the next `ConnectFailed` and the reconnect the session schedules after it.
async fn connect_failure(events: &Events) -> (String, u32) {
    let reason = wait_for(events, "connect failure", |event| match event {
        ClientEvent::ConnectFailed { reason } => Some(reason),
        _ => None,
    })
    .await;
    let attempt = wait_for(events, "reconnect scheduled", |event| match event {
        ClientEvent::ReconnectScheduled { attempt, .. } => Some(attempt),
        _ => None,
    })
    .await;
    (reason, attempt)
}

/// A client that trusts the server's certificate opens over TLS; a streamed request and a
/// one-way event both cross it.
pub async fn handshake_and_request(connect: Connect) {
    let (server, cert) = TestServer::start_tls(ServerConfig::default(), &["127.0.0.1"]);
    assert!(server.url().starts_with("wss://127.0.0.1:"));
    let mut options = options(&server);
    options.extra_root_certs = vec![cert];
    let client = connect(options).expect("valid options");
    let (uid, connection_id) = opened(&client).await;
    assert_eq!((uid.as_str(), connection_id), ("user-dev-test", 1));
    let hello = server
        .expect("hello over tls", |seen| match seen {
            Observed::Hello { client_id, .. } => Some(client_id),
            _ => None,
        })
        .await;
    assert_eq!(hello, "dev-test");

    let mut response = client
        .request("test/stream", bytes(&[2]), STEP)
        .await
        .expect("request");
    let mut parts = Vec::new();
    while let Some(part) = within("part", response.next_part()).await {
        parts.push(part);
    }
    assert_eq!(parts, vec![bytes(&[0]), bytes(&[1])]);
    assert_eq!(
        response.outcome(),
        Some(&RequestOutcome::Completed {
            status: Status::OK,
            payload: bytes(b"done")
        })
    );

    client.send("test/note", bytes(b"x")).await.expect("send");
    server
        .expect("event over tls", |seen| match seen {
            Observed::Event { event, .. } if event == "test/note" => Some(()),
            _ => None,
        })
        .await;
    assert_eq!(client.stats().handshakes, 1);
    within("close", client.close()).await;
}

/// Without the server's certificate among its roots the client refuses the server: each
/// attempt is a `ConnectFailed` naming the certificate problem, followed by another attempt.
pub async fn untrusted_certificate_fails_and_is_retried(connect: Connect) {
    let (server, _cert) = TestServer::start_tls(ServerConfig::default(), &["127.0.0.1"]);
    let client = connect(options(&server)).expect("valid options");
    let events = client.events();
    for expected_attempt in 1..=2 {
        let (reason, attempt) = connect_failure(&events).await;
        assert!(
            reason.starts_with("tls handshake with 127.0.0.1: invalid peer certificate"),
            "{reason}"
        );
        assert!(reason.contains("UnknownIssuer"), "{reason}");
        assert_eq!(attempt, expected_attempt);
    }
    // The server saw the client's refusal, not a dropped socket.
    let refused = tls_refusal(&server).await;
    assert!(refused.contains("UnknownCA"), "{refused}");
    assert!(!client.is_open());
    assert_eq!(client.stats().handshakes, 0);
    within("close", client.close()).await;
}

/// A trusted certificate that names another host is refused too: the URL's host is checked.
pub async fn certificate_for_another_host_is_refused(connect: Connect) {
    let (server, cert) = TestServer::start_tls(ServerConfig::default(), &["sentelite.invalid"]);
    let mut options = options(&server);
    options.extra_root_certs = vec![cert];
    let client = connect(options).expect("valid options");
    let (reason, attempt) = connect_failure(&client.events()).await;
    assert!(
        reason.contains("certificate not valid for name \"127.0.0.1\""),
        "{reason}"
    );
    assert_eq!(attempt, 1);
    let refused = tls_refusal(&server).await;
    assert!(refused.contains("BadCertificate"), "{refused}");
    assert_eq!(client.stats().handshakes, 0);
    within("close", client.close()).await;
}

/// A server that accepts TCP but never answers the TLS hello: the handshake timeout ends the
/// attempt, reported as a connect failure, and the client tries again.
pub async fn stalled_tls_handshake_times_out(connect: Connect) {
    // Never accepted: the kernel completes TCP in the backlog, and nobody speaks TLS.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("local addr").port();
    let mut options = ClientOptions::new(format!("wss://127.0.0.1:{port}/sentelite"), "dev-test");
    options.handshake_timeout = Duration::from_millis(300);
    options.backoff_initial = Duration::from_millis(50);
    options.backoff_max = Duration::from_millis(100);
    let started = Instant::now();
    let client = connect(options).expect("valid options");
    let events = client.events();
    for expected_attempt in 1..=2 {
        let (reason, attempt) = connect_failure(&events).await;
        assert_eq!(reason, "no connection within the handshake timeout");
        assert_eq!(attempt, expected_attempt);
    }
    // Two full timeouts passed: neither attempt gave up early.
    assert!(started.elapsed() >= Duration::from_millis(600));
    within("close", client.close()).await;
    drop(listener);
}

/// A trusted certificate whose validity ended is refused: trust does not outlive expiry.
pub async fn expired_certificate_is_refused(connect: Connect) {
    let mut params = certificate_params(&["127.0.0.1"]);
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let (server, cert) = TestServer::start_tls_with(ServerConfig::default(), params);
    let mut options = options(&server);
    options.extra_root_certs = vec![cert];
    let client = connect(options).expect("valid options");
    let (reason, attempt) = connect_failure(&client.events()).await;
    assert!(
        reason.starts_with("tls handshake with 127.0.0.1: invalid peer certificate"),
        "{reason}"
    );
    assert!(reason.contains("certificate expired"), "{reason}");
    assert_eq!(attempt, 1);
    let refused = tls_refusal(&server).await;
    assert!(refused.contains("CertificateExpired"), "{refused}");
    assert_eq!(client.stats().handshakes, 0);
    within("close", client.close()).await;
}

/// A URL naming the server by DNS name (`localhost`), a certificate issued to that name: the
/// name is resolved, the certificate checked against it, and the connection carries traffic.
pub async fn dns_name_end_to_end(connect: Connect) {
    let (server, cert) =
        TestServer::start_tls_with(ServerConfig::default(), certificate_params(&["localhost"]));
    let mut options = options(&server);
    options.url = server.url_for_host("localhost");
    options.extra_root_certs = vec![cert];
    let client = connect(options).expect("valid options");
    opened(&client).await;
    request_completes(&client).await;
    assert_eq!(client.stats().handshakes, 1);
    within("close", client.close()).await;
}

/// The server vanishes inside the TLS handshake, then after the Hello on the next
/// connection: a connect failure naming TLS, then a transport close, then the third
/// connection opens.
pub async fn peer_dropping_mid_tls_handshake_is_retried(connect: Connect) {
    let (server, cert) = TestServer::start_tls_cutting(
        ServerConfig::default(),
        certificate_params(&["127.0.0.1"]),
        vec![Cut::AfterFirstBytes, Cut::AfterHello],
    );
    let mut options = options(&server);
    options.extra_root_certs = vec![cert];
    let client = connect(options).expect("valid options");
    let events = client.events();
    let (reason, attempt) = connect_failure(&events).await;
    assert_eq!(reason, "tls handshake with 127.0.0.1: tls handshake eof");
    assert_eq!(attempt, 1);
    let (code, initiator) = closed(&events, "close after the hello").await;
    assert_eq!(
        (code, initiator),
        (CloseCode::GOING_AWAY, Initiator::Transport)
    );
    let (_, connection_id) = opened(&client).await;
    assert_eq!(connection_id, 3);
    request_completes(&client).await;
    within("close", client.close()).await;
}
