//! Golden frames (recorded from real sente-lite peers and Sente's documented wire) read and
//! written, and the typed errors of malformed messages.

use sentelite_core::frame::PayloadBuf;

use crate::dialect::{
    CallbackError, Dialect, DialectError, EncodeOptions, Inbound, Outbound, Refusal, decode,
    detect, encode_batch,
};
use crate::translate::{cbor_to_edn, edn_to_cbor};

fn value(edn: &str) -> PayloadBuf {
    PayloadBuf::Value(edn_to_cbor(edn).expect("test EDN reads"))
}

fn edn_of(payload: &PayloadBuf) -> String {
    match payload {
        PayloadBuf::Value(b) => cbor_to_edn(b).expect("payload prints"),
        other => panic!("expected a Value payload, got {other:?}"),
    }
}

fn one(dialect: Dialect, message: Outbound<'_>) -> String {
    let (frames, errors) = encode_batch(dialect, &[message], EncodeOptions::default());
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(frames.len(), 1, "{frames:?}");
    frames.into_iter().next().unwrap()
}

#[test]
fn sente_lite_recorded_pubsub_frames() {
    assert_eq!(
        decode(
            Dialect::SenteLite,
            r#"[:sente-lite/subscribe {:channel-id "c1"}]"#
        )
        .unwrap(),
        Inbound::Subscribe {
            channel: "c1".into()
        }
    );
    assert_eq!(
        one(
            Dialect::SenteLite,
            Outbound::Subscribed {
                channel: "c1",
                refusal: None
            }
        ),
        r#"[:sente-lite/subscribed {:channel-id "c1", :success true}]"#
    );
    let publish = decode(
        Dialect::SenteLite,
        r#"[:sente-lite/publish {:channel-id "c1" :data {:n 1} :exclude-sender? false}]"#,
    )
    .unwrap();
    let Inbound::Publish {
        channel,
        data,
        exclude_sender,
    } = publish
    else {
        panic!("not a publish: {publish:?}");
    };
    assert_eq!((channel.as_str(), exclude_sender), ("c1", false));
    assert_eq!(edn_of(&data), "{:n 1}");
    assert_eq!(
        one(
            Dialect::SenteLite,
            Outbound::ChannelMsg {
                channel: "c1",
                from: "conn-1795648751298-1",
                data: &data
            }
        ),
        r#"[:sente-lite/channel-msg {:channel-id "c1", :data {:n 1}, :from "conn-1795648751298-1"}]"#
    );
    assert_eq!(
        decode(
            Dialect::SenteLite,
            r#"[:sente-lite/unsubscribe {:channel-id "c1"}]"#
        )
        .unwrap(),
        Inbound::Unsubscribe {
            channel: "c1".into()
        }
    );
}

#[test]
fn sente_lite_handshake_heartbeat_and_refusals() {
    let handshake = one(
        Dialect::SenteLite,
        Outbound::Handshake {
            uid: "conn-1795648751298-1",
            csrf: None,
            first: true,
        },
    );
    assert!(
        handshake.starts_with(
            r#"[:chsk/handshake ["conn-1795648751298-1" nil {:sente-lite-version "2.0.0", "#
        ),
        "{handshake}"
    );
    assert!(handshake.ends_with("} true]]"), "{handshake}");
    assert_eq!(one(Dialect::SenteLite, Outbound::Ping), "[:chsk/ws-ping]");
    assert_eq!(
        one(Dialect::SenteLite, Outbound::Pong { cb: None }),
        "[:chsk/ws-pong]"
    );
    assert_eq!(
        decode(Dialect::SenteLite, "[:chsk/ws-ping]").unwrap(),
        Inbound::Ping { cb: None }
    );
    assert_eq!(
        decode(Dialect::SenteLite, "[:chsk/ws-pong]").unwrap(),
        Inbound::Pong
    );
    for (refusal, keyword) in [
        (
            Refusal::MaxSubscriptionsPerConn,
            ":max-subscriptions-per-conn",
        ),
        (Refusal::MaxSubscribersReached, ":max-subscribers-reached"),
        (Refusal::ChannelNotFound, ":channel-not-found"),
        (Refusal::InvalidChannel, ":invalid-channel"),
    ] {
        assert_eq!(
            one(
                Dialect::SenteLite,
                Outbound::Unsubscribed {
                    channel: "c1",
                    refusal: Some(refusal)
                }
            ),
            format!(
                r#"[:sente-lite/unsubscribed {{:channel-id "c1", :success false, :error {keyword}}}]"#
            )
        );
    }
}

#[test]
fn sente_lite_events_echo_and_recv_wrapping() {
    let event = decode(
        Dialect::SenteLite,
        r#"[:telemetry/log-msg {:ns "app.core", :level :info, :id :app/started, :data {:port 80}}]"#,
    )
    .unwrap();
    let Inbound::Event { event, data, cb } = event else {
        panic!("not an event");
    };
    assert_eq!((event.as_str(), cb), ("telemetry/log-msg", None));
    assert_eq!(
        edn_of(&data),
        r#"{:ns "app.core", :level :info, :id :app/started, :data {:port 80}}"#
    );
    assert_eq!(
        decode(Dialect::SenteLite, "[:app/tick]").unwrap(),
        Inbound::Event {
            event: "app/tick".into(),
            data: PayloadBuf::Empty,
            cb: None
        }
    );
    let data = value("{:a 1}");
    assert_eq!(
        one(
            Dialect::SenteLite,
            Outbound::Echo {
                event: "app/x",
                data: &data,
                conn_id: "conn-1-1",
                timestamp_ms: 1_700_000_000_000
            }
        ),
        r#"[:sente-lite/echo {:original-event-id :app/x, :original-data {:a 1}, :conn-id "conn-1-1", :timestamp 1700000000000}]"#
    );
    let (frames, errors) = encode_batch(
        Dialect::SenteLite,
        &[
            Outbound::Event {
                event: "app/x",
                data: &data,
            },
            Outbound::Ping,
        ],
        EncodeOptions { wrap_recv: true },
    );
    assert!(errors.is_empty());
    // Pushes are wrapped; the server's own heartbeat is not.
    assert_eq!(frames, ["[:chsk/recv [:app/x {:a 1}]]", "[:chsk/ws-ping]"]);
    assert_eq!(
        one(
            Dialect::SenteLite,
            Outbound::Event {
                event: "app/x",
                data: &PayloadBuf::Empty
            }
        ),
        "[:app/x]"
    );
}

#[test]
fn sente_envelopes_callbacks_and_batches() {
    assert_eq!(
        decode(Dialect::Sente, r#"[[:app/get {:id 7}] "k3Xz9a"]"#).unwrap(),
        Inbound::Event {
            event: "app/get".into(),
            data: value("{:id 7}"),
            cb: Some("k3Xz9a".into())
        }
    );
    // The envelope before Sente 1.21 had no callback slot.
    assert_eq!(
        decode(Dialect::Sente, "[[:app/note {:x 1}]]").unwrap(),
        Inbound::Event {
            event: "app/note".into(),
            data: value("{:x 1}"),
            cb: None
        }
    );
    assert_eq!(
        decode(Dialect::Sente, r#"[[:chsk/ws-ping] "Ab12Cd"]"#).unwrap(),
        Inbound::Ping {
            cb: Some("Ab12Cd".into())
        }
    );
    assert_eq!(
        decode(Dialect::Sente, "[[:chsk/ws-pong] nil]").unwrap(),
        Inbound::Pong
    );
    assert_eq!(
        one(Dialect::Sente, Outbound::Pong { cb: Some("Ab12Cd") }),
        r#"["pong" "Ab12Cd"]"#
    );
    assert_eq!(one(Dialect::Sente, Outbound::Ping), "[:chsk/ws-ping nil]");
    let reply = value(r#"{:name "A"}"#);
    assert_eq!(
        one(
            Dialect::Sente,
            Outbound::Reply {
                cb: "k3Xz9a",
                data: &reply
            }
        ),
        r#"[{:name "A"} "k3Xz9a"]"#
    );
    assert_eq!(
        one(
            Dialect::Sente,
            Outbound::CallbackError {
                cb: "k3Xz9a",
                error: CallbackError::Timeout
            }
        ),
        r#"[:chsk/timeout "k3Xz9a"]"#
    );
    let handshake = one(
        Dialect::Sente,
        Outbound::Handshake {
            uid: "u1",
            csrf: Some("ignored"),
            first: true,
        },
    );
    assert!(
        handshake.starts_with(r#"[[:chsk/handshake ["u1" nil {"#),
        "{handshake}"
    );
    assert!(handshake.ends_with("}]] nil]"), "{handshake}");
    let (a, b) = (value("{:x 1}"), value("{:y 2}"));
    let (frames, errors) = encode_batch(
        Dialect::Sente,
        &[
            Outbound::Event {
                event: "app/a",
                data: &a,
            },
            Outbound::Event {
                event: "app/b",
                data: &b,
            },
            Outbound::Pong { cb: Some("p1") },
            Outbound::Event {
                event: "app/c",
                data: &PayloadBuf::Empty,
            },
        ],
        EncodeOptions { wrap_recv: true },
    );
    assert!(errors.is_empty());
    assert_eq!(
        frames,
        [
            "[[[:app/a {:x 1}] [:app/b {:y 2}]] nil]",
            r#"["pong" "p1"]"#,
            "[[[:app/c]] nil]"
        ]
    );
}

#[test]
fn json_dialect_reads_and_writes_the_same_messages() {
    assert_eq!(
        decode(
            Dialect::Json,
            r#"["sente-lite/subscribe", {"channel-id": "c1"}]"#
        )
        .unwrap(),
        Inbound::Subscribe {
            channel: "c1".into()
        }
    );
    // A leading colon, as a keyword printed by a Clojure peer would have, is dropped.
    assert_eq!(
        decode(Dialect::Json, r#"[":chsk/ws-ping"]"#).unwrap(),
        Inbound::Ping { cb: None }
    );
    let publish = decode(
        Dialect::Json,
        r#"["sente-lite/publish", {"channel-id": "c1", "data": {"n": 1}, "exclude-sender?": true}]"#,
    )
    .unwrap();
    let Inbound::Publish {
        data,
        exclude_sender,
        ..
    } = publish
    else {
        panic!("not a publish");
    };
    assert!(exclude_sender);
    assert_eq!(edn_of(&data), r#"{"n" 1}"#);
    assert_eq!(
        one(
            Dialect::Json,
            Outbound::Subscribed {
                channel: "c1",
                refusal: Some(Refusal::MaxSubscribersReached)
            }
        ),
        r#"["sente-lite/subscribed",{"channel-id":"c1","error":"max-subscribers-reached","success":false}]"#
    );
    let data = value("{:temp 21.5}");
    assert_eq!(
        one(
            Dialect::Json,
            Outbound::ChannelMsg {
                channel: "c1",
                from: "conn-1-2",
                data: &data
            }
        ),
        r#"["sente-lite/channel-msg",{"channel-id":"c1","data":{"temp":21.5},"from":"conn-1-2"}]"#
    );
    let handshake = one(
        Dialect::Json,
        Outbound::Handshake {
            uid: "conn-1-2",
            csrf: None,
            first: false,
        },
    );
    let parsed: serde_json::Value = serde_json::from_str(&handshake).unwrap();
    assert_eq!(parsed[0], "chsk/handshake");
    assert_eq!(parsed[1][0], "conn-1-2");
    assert_eq!(parsed[1][1], serde_json::Value::Null);
    assert_eq!(parsed[1][2]["sente-lite-version"], "2.0.0");
    assert_eq!(parsed[1][3], false);
}

#[test]
fn native_payload_forms_reach_text_clients() {
    let bytes = PayloadBuf::Bytes(vec![1, 2, 3]);
    assert_eq!(
        one(
            Dialect::SenteLite,
            Outbound::Event {
                event: "dev/raw",
                data: &bytes
            }
        ),
        r#"[:dev/raw #sentelite/bytes "AQID"]"#
    );
    let json = PayloadBuf::Json(r#"{"k":[1,2]}"#.into());
    assert_eq!(
        one(
            Dialect::SenteLite,
            Outbound::Event {
                event: "dev/json",
                data: &json
            }
        ),
        r#"[:dev/json {"k" [1 2]}]"#
    );
}

#[test]
fn detection_by_first_message() {
    assert_eq!(
        detect(r#"[:sente-lite/subscribe {:channel-id "c1"}]"#),
        Some(Dialect::SenteLite)
    );
    assert_eq!(detect("[:chsk/ws-ping]"), Some(Dialect::SenteLite));
    assert_eq!(
        detect(r#"[[:app/get {:id 7}] "k3Xz9a"]"#),
        Some(Dialect::Sente)
    );
    assert_eq!(detect("[[:app/get] nil]"), Some(Dialect::Sente));
    assert_eq!(detect("[[:app/get]]"), Some(Dialect::Sente));
    assert_eq!(
        detect(r#"["sente-lite/subscribe", {"channel-id": "c1"}]"#),
        Some(Dialect::Json)
    );
    for undecidable in [
        "",
        "hello",
        "{:a 1}",
        "[1 2]",
        "[[1] nil]",
        "[[:a] 5]",
        "[:a",
        "[]",
    ] {
        assert_eq!(detect(undecidable), None, "{undecidable:?}");
    }
}

/// Whether an error is the variant a case expects.
type ErrorCheck = fn(&DialectError) -> bool;

#[test]
fn malformed_messages_are_typed_errors() {
    let cases: [(Dialect, &str, ErrorCheck); 11] = [
        (Dialect::SenteLite, "[1 2]", |e| {
            matches!(e, DialectError::EventId { .. })
        }),
        (Dialect::SenteLite, "{:a 1}", |e| {
            matches!(e, DialectError::Shape { .. })
        }),
        (Dialect::SenteLite, "[:a 1 2]", |e| {
            matches!(e, DialectError::Shape { .. })
        }),
        (Dialect::SenteLite, "[]", |e| {
            matches!(e, DialectError::Shape { .. })
        }),
        (Dialect::SenteLite, "[:sente-lite/subscribe {}]", |e| {
            matches!(
                e,
                DialectError::Field {
                    field: "channel-id",
                    ..
                }
            )
        }),
        (
            Dialect::SenteLite,
            "[:sente-lite/subscribe {:channel-id 5}]",
            |e| {
                matches!(
                    e,
                    DialectError::Field {
                        field: "channel-id",
                        ..
                    }
                )
            },
        ),
        (
            Dialect::SenteLite,
            r#"[:sente-lite/publish {:channel-id "c" :exclude-sender? 1}]"#,
            |e| {
                matches!(
                    e,
                    DialectError::Field {
                        field: "exclude-sender?",
                        ..
                    }
                )
            },
        ),
        (Dialect::SenteLite, "[:a", |e| {
            matches!(e, DialectError::Translate(_))
        }),
        (Dialect::Json, r#"["", 1]"#, |e| {
            matches!(e, DialectError::EventId { .. })
        }),
        (Dialect::Json, r#"["a" 1]"#, |e| {
            matches!(e, DialectError::Translate(_))
        }),
        (Dialect::Sente, "[[:a] 5]", |e| {
            matches!(e, DialectError::Shape { .. })
        }),
    ];
    for (dialect, text, is_expected) in cases {
        let error = decode(dialect, text).expect_err(text);
        assert!(is_expected(&error), "{text:?} gave {error:?}");
        assert!(!error.to_string().is_empty());
    }
    assert_eq!(
        decode(Dialect::SenteLite, "[:sente-lite/subscribe {}]")
            .unwrap_err()
            .to_string(),
        "sente-lite/subscribe needs :channel-id as a string"
    );
}

#[test]
fn one_unwritable_message_leaves_the_others() {
    let data = value("{:a 1}");
    let messages = [
        Outbound::Event {
            event: "app/a",
            data: &data,
        },
        Outbound::Event {
            event: "not a keyword",
            data: &data,
        },
        Outbound::Reply {
            cb: "x",
            data: &data,
        },
        Outbound::Event {
            event: "app/c",
            data: &data,
        },
    ];
    let (frames, errors) = encode_batch(Dialect::SenteLite, &messages, EncodeOptions::default());
    assert_eq!(frames, ["[:app/a {:a 1}]", "[:app/c {:a 1}]"]);
    assert_eq!(errors.len(), 2);
    assert!(matches!(errors[1], DialectError::NotInDialect { .. }));
    let (frames, errors) = encode_batch(Dialect::Sente, &messages, EncodeOptions::default());
    assert_eq!(
        frames,
        [
            "[[[:app/a {:a 1}]] nil]",
            r#"[{:a 1} "x"]"#,
            "[[[:app/c {:a 1}]] nil]"
        ]
    );
    assert_eq!(errors.len(), 1);
}

/// The frames in the code blocks of docs/PROTOCOL.md sections 16–18: what a client sends
/// (`>>`) must decode, and what the server sends (`<<`, or a bare frame) must be exactly
/// what the server's writer prints for it, so the document cannot drift from the code.
#[test]
fn protocol_document_frames_are_what_the_codec_reads_and_writes() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md"))
        .expect("docs/PROTOCOL.md is readable");
    let mut checked = 0;
    for (section, dialect) in [
        ("## 16. ", Dialect::SenteLite),
        ("## 17. ", Dialect::Sente),
        ("## 18. ", Dialect::Json),
    ] {
        let start = doc.find(section).expect("dialect section present");
        let body = &doc[start + section.len()..];
        let body = &body[..body.find("\n## ").unwrap_or(body.len())];
        let mut in_block = false;
        for line in body.lines() {
            if line.starts_with("```") {
                in_block = !in_block;
                continue;
            }
            if !in_block || line.trim().is_empty() {
                continue;
            }
            if let Some(sent) = line.strip_prefix(">> ") {
                decode(dialect, sent).unwrap_or_else(|e| panic!("{sent}: {e}"));
            } else {
                let frame = line.strip_prefix("<< ").unwrap_or(line);
                assert_eq!(reprinted(dialect, frame), frame, "section {section}");
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 14,
        "only {checked} frames found in sections 16-18"
    );
}

fn reprinted(dialect: Dialect, frame: &str) -> String {
    use crate::translate::{edn_read, edn_write, json};
    match dialect {
        Dialect::Json => json::to_json(&super::json_item(frame).expect("JSON frame reads"))
            .expect("JSON frame prints")
            .to_string(),
        _ => edn_write::to_edn(&edn_read::parse(frame).expect("EDN frame reads"))
            .expect("EDN frame prints"),
    }
}
