//! The text dialects (sente-lite EDN, JSON, Sente) and the modules' events under attack:
//! what a native peer is refused (unreadable, oversize and wrong-kind messages, floods of
//! events nobody reads the answers to) must be refused the same way on every text dialect,
//! with the WebSocket close code the dialect's clients understand, and without growing the
//! server or disturbing the native bystander.

use std::time::{Duration, Instant};

use sentelite_hostile_tests::ws::Peer;

use crate::target::Target;

/// `max-frame-bytes` of the server under attack: small, so an oversize message is cheap.
const MAX_FRAME: usize = 16 * 1024;
/// Nesting far past the translator's depth limit (128), still well inside `MAX_FRAME`.
const DEEP: usize = 2_000;
/// Messages in one flood, and the longest a flood may run.
const FLOOD: usize = 100_000;
const FLOOD_FOR: Duration = Duration::from_secs(3);
/// How long the server may take to close an attacker.
const CLOSE_WITHIN: Duration = Duration::from_secs(10);

/// One text dialect: how to reach it and how its messages are spelt.
struct Dialect {
    name: &'static str,
    /// The upgrade target that selects it.
    target: &'static str,
    /// A one-way event `event` with a small map of data.
    event: fn(&str) -> String,
    /// An event whose data nests `depth` vectors deep.
    deep: fn(usize) -> String,
}

fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

const DIALECTS: [Dialect; 3] = [
    Dialect {
        name: "sente-lite",
        target: "/ws?dialect=sente-lite",
        event: |event| format!("[:{event} {{:n 1 :text \"hostile\"}}]"),
        deep: |depth| format!("[:hostile/deep {}]", nested(depth)),
    },
    Dialect {
        name: "json",
        target: "/ws?dialect=json",
        event: |event| format!("[\"{event}\",{{\"n\":1,\"text\":\"hostile\"}}]"),
        deep: |depth| format!("[\"hostile/deep\",{}]", nested(depth)),
    },
    Dialect {
        name: "sente",
        target: "/ws?dialect=sente",
        // With a callback id, so every event asks the server for an answer it must queue.
        event: |event| format!("[[:{event} {{:n 1 :text \"hostile\"}}] \"cb-1\"]"),
        deep: |depth| format!("[[:hostile/deep {}]]", nested(depth)),
    },
];

fn config() -> String {
    format!("max-frame-bytes = {MAX_FRAME}\n")
}

/// Opens `dialect`, sends `message`, and returns the WebSocket close code the server ended
/// the connection with.
async fn close_code_after(target: &Target, dialect: &Dialect, message: Message) -> Option<u16> {
    let mut peer = Peer::open_at(target.addr(), dialect.target).await;
    let sent = match message {
        Message::Text(text) => peer.send_text(text).await,
        Message::Binary(bytes) => {
            peer.send_bytes(bytes).await;
            true
        }
    };
    assert!(sent, "{}: the server left before the message", dialect.name);
    peer.ending(CLOSE_WITHIN).await.websocket_code
}

enum Message {
    Text(String),
    Binary(Vec<u8>),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_oversize_and_binary_messages_get_typed_closes_in_every_text_dialect() {
    let target = Target::start(&config()).await;
    for dialect in &DIALECTS {
        let cases = [
            (
                "nested past the depth limit",
                Message::Text((dialect.deep)(DEEP)),
                1007,
            ),
            (
                "not the dialect's notation",
                Message::Text("}{ not a message".into()),
                1007,
            ),
            (
                "larger than max-frame-bytes",
                Message::Text((dialect.event)(&format!("big/{}", "x".repeat(MAX_FRAME)))),
                1009,
            ),
            ("a binary message", Message::Binary(vec![0xff; 64]), 1003),
        ];
        for (what, message, expected) in cases {
            let code = close_code_after(&target, dialect, message).await;
            assert_eq!(
                code,
                Some(expected),
                "{}: {what} must close with {expected}",
                dialect.name
            );
        }
        target
            .bystander
            .assert_echo(&format!("after the {} attacks", dialect.name))
            .await;
    }
    target
        .assert_survived("unreadable, oversize and binary text messages")
        .await;
}

/// Sends `FLOOD` messages made by `message` as fast as the socket takes them, never reading
/// what the server answers. Returns how many went before the server closed the connection
/// or the time ran out.
async fn flood(peer: &mut Peer, message: impl Fn(usize) -> String) -> usize {
    let started = Instant::now();
    let mut sent = 0;
    while sent < FLOOD && started.elapsed() < FLOOD_FOR {
        let batch = async {
            for i in 0..500 {
                if !peer.feed_text(message(sent + i)).await {
                    return false;
                }
            }
            peer.flush().await
        };
        // A server that stops reading (a full outbox) blocks the flush: that ends the flood
        // too, as the bound working.
        match tokio::time::timeout(Duration::from_secs(2), batch).await {
            Ok(true) => sent += 500,
            Ok(false) | Err(_) => break,
        }
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_of_unanswered_events_stay_bounded_in_every_text_dialect() {
    let target = Target::start(&config()).await;
    for dialect in &DIALECTS {
        let mut peer = Peer::open_at(target.addr(), dialect.target).await;
        // Events nobody handles (Sente's carry a callback, each answered `:chsk/error`),
        // and malformed log records for the logging module.
        let sent = flood(&mut peer, |i| {
            if i % 2 == 0 {
                (dialect.event)("nobody/listens")
            } else {
                (dialect.event)("telemetry/log-msg")
            }
        })
        .await;
        eprintln!(
            "{}: {sent} events sent without reading, server grew {} KiB so far",
            dialect.name,
            target.baseline.growth_kib()
        );
        assert!(
            sent > 0,
            "{}: not one batch of the flood went",
            dialect.name
        );
        drop(peer);
        target
            .bystander
            .assert_echo(&format!("after the {} flood", dialect.name))
            .await;
    }
    target
        .assert_survived("floods of unanswered text events")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lsp_and_nrepl_events_with_bad_payloads_are_refused_without_growing_the_server() {
    // LSP on (its refusals are answered per event), with a language whose command is never
    // started: no event in the flood gets as far as a session.
    let config = format!(
        "{}\n[lsp]\nallowed-clients = [\"*\"]\n\n[lsp.never]\ncommand = \"/bin/false\"\n",
        config()
    );
    let target = Target::start(&config).await;
    let json = &DIALECTS[1];
    let mut peer = Peer::open_at(target.addr(), json.target).await;
    let messages = [
        // No session-id, a session nobody started, a payload that is no map, an initialize
        // for a language the server does not have, nREPL answers for requests never made.
        r#"["lsp/request",{"method":"textDocument/hover","request-id":1}]"#,
        r#"["lsp/notification",{"session-id":"nobody","method":"initialized"}]"#,
        r#"["lsp/response",[1,2,3]]"#,
        r#"["lsp/initialize",{"session-id":"s","language":"cobol"}]"#,
        r#"["nrepl/response",{"id":"x","session":"none","status":["done"]}]"#,
        r#"["nrepl/browser-request",{"op":"eval","code":"(+ 1 1)","id":"b"}]"#,
    ];
    let sent = flood(&mut peer, |i| messages[i % messages.len()].to_owned()).await;
    eprintln!(
        "module events: {sent} sent without reading, server grew {} KiB so far",
        target.baseline.growth_kib()
    );
    assert!(sent > 0, "not one batch of the flood went");
    drop(peer);

    // Each refusal is an answer, not a close: a peer that reads gets them.
    let mut reader = Peer::open_at(target.addr(), json.target).await;
    assert!(reader.send_text(messages[1]).await);
    let mut heard = Vec::new();
    let deadline = Instant::now() + CLOSE_WITHIN;
    while Instant::now() < deadline {
        match reader.next_text(deadline - Instant::now()).await {
            Some(text) if text.contains("lsp/error") => {
                heard.push(text);
                break;
            }
            Some(text) => heard.push(text),
            None => break,
        }
    }
    assert!(
        heard
            .last()
            .is_some_and(|a| a.contains("lsp/error") && a.contains("no-session")),
        "a session nobody started is refused with no-session: {heard:?}"
    );
    target
        .assert_survived("LSP and nREPL events with bad payloads")
        .await;
}
