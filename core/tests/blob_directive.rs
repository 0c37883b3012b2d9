//! The blob directives' and reports' wire form (PROTOCOL.md section 14).

use minicbor::Decoder;
use minicbor::data::Type;
use proptest::prelude::*;
use sentelite_core::blob::directive::{
    Directive, DirectiveError, HandlerKind, MAX_MIRRORS, Metadata, Options, UploadDirective,
};
use sentelite_core::blob::hex;
use sentelite_core::blob::report::{
    CompleteReport, ErrorReport, FailureState, ProgressReport, RefusalReport, UploadReport,
};
use sentelite_core::value::{self, KEYWORD_TAG};

const SHA: [u8; 32] = [0xab; 32];

fn sample() -> Directive<'static> {
    Directive {
        kind: HandlerKind::Render,
        transfer_id: "t-17",
        url: "http://10.0.0.1:8080/blobs/abab",
        mirrors: ["http://mirror-a/x", "http://mirror-b/x"]
            .into_iter()
            .collect(),
        handler: "graphics/webgl",
        metadata: Metadata {
            size: Some(524_288_000),
            sha256: Some(SHA),
            content_type: Some("model/gltf-binary"),
        },
        options: Options {
            timeout_ms: Some(300_000),
            retry_count: Some(3),
            verify: true,
            chunk_size: Some(65_536),
            deadline_ms: Some(900_000),
        },
    }
}

fn encoded(d: &Directive<'_>) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let n = d.encode(&mut buf).unwrap();
    buf[..n].to_vec()
}

/// Reads a flat Value map's keys (keywords) and the values as text for comparison.
fn map_entries(bytes: &[u8]) -> Vec<(String, String)> {
    let mut d = Decoder::new(bytes);
    let n = d.map().unwrap().unwrap();
    let mut out = Vec::new();
    for _ in 0..n {
        assert_eq!(d.tag().unwrap().as_u64(), KEYWORD_TAG, "keys are keywords");
        let key = d.str().unwrap().to_string();
        let value = match d.datatype().unwrap() {
            Type::Tag => {
                d.tag().unwrap();
                format!(":{}", d.str().unwrap())
            }
            Type::String => d.str().unwrap().to_string(),
            Type::Null => {
                d.null().unwrap();
                "nil".into()
            }
            _ => d.u64().unwrap().to_string(),
        };
        out.push((key, value));
    }
    assert_eq!(d.position(), bytes.len(), "nothing after the map");
    out
}

fn entry<'a>(entries: &'a [(String, String)], key: &str) -> &'a str {
    &entries.iter().find(|(k, _)| k == key).unwrap().1
}

#[test]
fn a_directive_round_trips_and_borrows_from_its_payload() {
    let d = sample();
    let bytes = encoded(&d);
    let back = Directive::decode("blob/fetch-and-render", &bytes).unwrap();
    assert_eq!(back, d);
    let sources: Vec<_> = back.sources().collect();
    assert_eq!(
        sources,
        [
            "http://10.0.0.1:8080/blobs/abab",
            "http://mirror-a/x",
            "http://mirror-b/x"
        ]
    );
    // The url slice points into the payload: nothing was copied.
    let range = bytes.as_ptr_range();
    assert!(range.contains(&back.url.as_ptr()));
}

#[test]
fn the_event_id_gives_the_kind_and_other_events_are_refused() {
    let bytes = encoded(&sample());
    for kind in HandlerKind::ALL {
        let d = Directive::decode(kind.event(), &bytes).unwrap();
        assert_eq!(d.kind, kind);
        assert_eq!(
            kind.event().strip_prefix("blob/fetch-and-").unwrap(),
            kind.name()
        );
    }
    assert_eq!(
        Directive::decode("blob/upload", &bytes),
        Err(DirectiveError::UnknownEvent)
    );
}

#[test]
fn text_keys_from_the_json_dialect_are_understood() {
    let mut buf = [0u8; 256];
    let mut e = value::encoder(&mut buf);
    e.map(5).unwrap();
    e.str("url").unwrap().str("http://h/b").unwrap();
    e.str(":handler").unwrap().str(":ml/load-model").unwrap();
    e.str("metadata").unwrap().map(2).unwrap();
    e.str("sha256").unwrap().str(&hex::encode(&SHA)).unwrap();
    e.str("size").unwrap().u64(10).unwrap();
    e.str("extra")
        .unwrap()
        .array(2)
        .unwrap()
        .u8(1)
        .unwrap()
        .u8(2)
        .unwrap();
    e.str("options").unwrap().map(1).unwrap();
    e.str("retry-count").unwrap().u8(5).unwrap();
    let n = value::finish(e);
    let d = Directive::decode("blob/fetch-and-process", &buf[..n]).unwrap();
    assert_eq!(d.url, "http://h/b");
    assert_eq!(d.handler, "ml/load-model");
    assert_eq!(d.metadata.sha256, Some(SHA));
    assert_eq!(d.metadata.size, Some(10));
    assert_eq!(d.options.retry_count, Some(5));
    assert!(d.options.verify, "verify defaults to true");
    assert_eq!(d.transfer_id, "");
}

#[test]
fn bad_directives_get_the_field_that_is_wrong() {
    let mut plain = sample();
    plain.metadata.sha256 = None;
    let bytes = encoded(&plain);
    assert_eq!(
        Directive::decode("blob/fetch-and-eval", &bytes),
        Err(DirectiveError::Missing("sha256")),
        "a directive that must be verified needs a hash"
    );
    plain.options.verify = false;
    let bytes = encoded(&plain);
    assert!(Directive::decode("blob/fetch-and-eval", &bytes).is_ok());

    let mut buf = [0u8; 64];
    let mut e = value::encoder(&mut buf);
    e.map(1).unwrap();
    value::keyword(&mut e, "handler").unwrap();
    value::keyword(&mut e, "x/y").unwrap();
    let n = value::finish(e);
    assert_eq!(
        Directive::decode("blob/fetch-and-eval", &buf[..n]),
        Err(DirectiveError::Missing("url"))
    );

    let mut trailing = encoded(&sample());
    trailing.push(0);
    assert_eq!(
        Directive::decode("blob/fetch-and-eval", &trailing),
        Err(DirectiveError::Malformed)
    );
    assert_eq!(
        Directive::decode("blob/fetch-and-eval", &[0x83, 1, 2, 3]),
        Err(DirectiveError::Malformed)
    );

    let mut buf = [0u8; 256];
    let mut e = value::encoder(&mut buf);
    e.map(3).unwrap();
    e.str("url").unwrap().str("u").unwrap();
    e.str("handler").unwrap().str("h").unwrap();
    e.str("mirrors")
        .unwrap()
        .array(MAX_MIRRORS as u64 + 1)
        .unwrap();
    for _ in 0..=MAX_MIRRORS {
        e.str("m").unwrap();
    }
    let n = value::finish(e);
    let mut unverified = buf[..n].to_vec();
    // Add `:options {:verify false}` by re-encoding with one more entry.
    unverified[0] = 0xa4;
    unverified.extend_from_slice(&[0x67]);
    unverified.extend_from_slice(b"options");
    unverified.extend_from_slice(&[0xa1, 0x66]);
    unverified.extend_from_slice(b"verify");
    unverified.push(0xf4);
    assert_eq!(
        Directive::decode("blob/fetch-and-eval", &unverified),
        Err(DirectiveError::TooManyMirrors)
    );

    let mut buf = [0u8; 256];
    let mut e = value::encoder(&mut buf);
    e.map(3).unwrap();
    e.str("url").unwrap().str("u").unwrap();
    e.str("handler").unwrap().str("h").unwrap();
    e.str("metadata").unwrap().map(1).unwrap();
    e.str("sha256").unwrap().str("not hex").unwrap();
    let n = value::finish(e);
    assert_eq!(
        Directive::decode("blob/fetch-and-eval", &buf[..n]),
        Err(DirectiveError::Invalid("sha256"))
    );
}

/// Found by the `blob_directive` fuzz target: text `"::i/show"` decoded to the handler
/// `:i/show`, which re-encodes as a keyword that decodes to `i/show`.
#[test]
fn a_name_with_two_leading_colons_is_refused() {
    for name in ["::i/show", ":::x", "::"] {
        let mut buf = [0u8; 128];
        let mut e = value::encoder(&mut buf);
        e.map(3).unwrap();
        e.str("url").unwrap().str("http://h/x").unwrap();
        e.str("handler").unwrap().str(name).unwrap();
        e.str("options").unwrap().map(1).unwrap();
        e.str("verify").unwrap().bool(false).unwrap();
        let n = value::finish(e);
        assert_eq!(
            Directive::decode("blob/fetch-and-display", &buf[..n]),
            Err(DirectiveError::Invalid("handler")),
            "{name:?}"
        );
        let mut e = value::encoder(&mut buf);
        e.map(2).unwrap();
        e.str("url").unwrap().str("http://h/b").unwrap();
        e.str("source").unwrap().str(name).unwrap();
        let n = value::finish(e);
        assert_eq!(
            UploadDirective::decode(&buf[..n]),
            Err(DirectiveError::Invalid("source")),
            "{name:?}"
        );
    }
}

#[test]
fn an_upload_directive_round_trips() {
    let up = UploadDirective {
        transfer_id: "t-9",
        url: "http://127.0.0.1:9/blobs",
        source: "diag/core-dump",
    };
    let mut buf = [0u8; 128];
    let n = up.encode(&mut buf).unwrap();
    assert_eq!(UploadDirective::decode(&buf[..n]).unwrap(), up);
    assert_eq!(
        UploadDirective::decode(&buf[..n - 3]),
        Err(DirectiveError::Malformed)
    );
}

#[test]
fn reports_carry_the_seed_shapes() {
    let mut buf = [0u8; 256];
    let progress = ProgressReport {
        transfer_id: "t-1",
        url: "http://h/b",
        loaded: 52_428_800,
        total: 104_857_600,
    };
    let n = progress.encode(&mut buf).unwrap();
    let m = map_entries(&buf[..n]);
    assert_eq!(entry(&m, "loaded"), "52428800");
    assert_eq!(entry(&m, "total"), "104857600");
    assert_eq!(entry(&m, "percent"), "50");
    assert_eq!(entry(&m, "transfer-id"), "t-1");

    let done = CompleteReport {
        transfer_id: "t-1",
        url: "http://h/b",
        handler: "custom/processor",
        duration_ms: 5000,
        bytes_transferred: 104_857_600,
        sha256: SHA,
    };
    let n = done.encode(&mut buf).unwrap();
    let m = map_entries(&buf[..n]);
    assert_eq!(entry(&m, "status"), ":success");
    assert_eq!(entry(&m, "handler"), ":custom/processor");
    assert_eq!(entry(&m, "duration-ms"), "5000");
    assert_eq!(entry(&m, "bytes-transferred"), "104857600");
    assert_eq!(entry(&m, "sha256"), hex::encode(&SHA).as_str());

    let failed = ErrorReport {
        transfer_id: "t-1",
        url: "http://h/b",
        error: "Network timeout",
        retry_count: 3,
        status_code: Some(503),
        state: FailureState::Rescheduled { after_ms: 30_000 },
        offset: 4096,
    };
    let n = failed.encode(&mut buf).unwrap();
    let m = map_entries(&buf[..n]);
    assert_eq!(entry(&m, "error"), "Network timeout");
    assert_eq!(entry(&m, "retry-count"), "3");
    assert_eq!(entry(&m, "status-code"), "503");
    assert_eq!(entry(&m, "state"), ":rescheduled");
    assert_eq!(entry(&m, "after-ms"), "30000");
    assert_eq!(entry(&m, "offset"), "4096");

    let n = ErrorReport {
        status_code: None,
        state: FailureState::Failed,
        ..failed
    }
    .encode(&mut buf)
    .unwrap();
    let m = map_entries(&buf[..n]);
    assert_eq!(entry(&m, "status-code"), "nil");
    assert_eq!(entry(&m, "state"), ":failed");
    assert!(m.iter().all(|(k, _)| k != "after-ms"));

    let n = UploadReport {
        transfer_id: "t-2",
        sha256: SHA,
        bytes: 77,
    }
    .encode(&mut buf)
    .unwrap();
    let m = map_entries(&buf[..n]);
    assert_eq!(entry(&m, "bytes"), "77");

    let n = RefusalReport {
        transfer_id: "t-3",
        error: "unknown handler :x/y",
    }
    .encode(&mut buf)
    .unwrap();
    let m = map_entries(&buf[..n]);
    assert_eq!(entry(&m, "error"), "unknown handler :x/y");

    assert!(
        progress.encode(&mut [0u8; 8]).is_err(),
        "short buffers are refused"
    );
}

#[test]
fn percent_is_whole_and_bounded() {
    let p = |loaded, total| {
        ProgressReport {
            transfer_id: "",
            url: "",
            loaded,
            total,
        }
        .percent()
    };
    assert_eq!(p(0, 0), 100);
    assert_eq!(p(1, 3), 33);
    assert_eq!(p(2, 3), 66);
    assert_eq!(p(5, 3), 100);
    assert_eq!(p(u64::MAX - 1, u64::MAX), 99);
}

#[test]
fn hex_round_trips_and_refuses_other_text() {
    let digest: [u8; 32] = core::array::from_fn(|i| (i * 37) as u8);
    let text = hex::encode(&digest);
    assert_eq!(text.len(), 64);
    assert_eq!(hex::decode(&text), Some(digest));
    assert_eq!(hex::decode(&text.to_uppercase()), Some(digest));
    assert_eq!(hex::decode(&text[1..]), None);
    assert_eq!(hex::decode(&format!("{}g", &text[..63])), None);
    assert!(text.starts_with("00254a6f94"));
}

proptest! {
    #[test]
    fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Directive::decode("blob/fetch-and-process", &bytes);
        let _ = UploadDirective::decode(&bytes);
    }

    #[test]
    fn any_directive_round_trips(
        id in "[a-z0-9-]{0,12}",
        url in "http://[a-z]{1,8}/[a-z0-9]{0,20}",
        mirrors in proptest::collection::vec("http://[a-z]{1,8}/m", 0..=MAX_MIRRORS),
        handler in "[a-z]{1,6}/[a-z-]{1,10}",
        size in proptest::option::of(any::<u64>()),
        sha in proptest::option::of(any::<[u8; 32]>()),
        retry in proptest::option::of(any::<u32>()),
        chunk in proptest::option::of(any::<u32>()),
        deadline in proptest::option::of(any::<u64>()),
        timeout in proptest::option::of(any::<u64>()),
        kind in 0usize..4,
    ) {
        let d = Directive {
            kind: HandlerKind::ALL[kind],
            transfer_id: &id,
            url: &url,
            mirrors: mirrors.iter().map(String::as_str).collect(),
            handler: &handler,
            metadata: Metadata { size, sha256: sha, content_type: None },
            options: Options {
                timeout_ms: timeout,
                retry_count: retry,
                verify: sha.is_some(),
                chunk_size: chunk,
                deadline_ms: deadline,
            },
        };
        let bytes = encoded(&d);
        prop_assert_eq!(Directive::decode(d.kind.event(), &bytes), Ok(d));
    }
}

#[test]
fn errors_say_what_is_wrong() {
    assert_eq!(
        DirectiveError::Missing("url").to_string(),
        "directive lacks :url"
    );
    assert_eq!(
        DirectiveError::Invalid("sha256").to_string(),
        "directive's :sha256 is invalid"
    );
    assert!(
        DirectiveError::TooManyMirrors
            .to_string()
            .contains(&MAX_MIRRORS.to_string())
    );
    assert!(DirectiveError::Malformed.to_string().contains("CBOR"));
    assert!(DirectiveError::UnknownEvent.to_string().contains("event"));
    assert!(
        sentelite_core::blob::directive::BufferTooSmall
            .to_string()
            .contains("too small")
    );
}

#[test]
fn a_hash_may_come_as_32_bytes() {
    let mut buf = [0u8; 128];
    let mut e = value::encoder(&mut buf);
    e.map(3).unwrap();
    e.str("url").unwrap().str("http://h/b").unwrap();
    e.str("handler").unwrap().str("x/y").unwrap();
    e.str("metadata").unwrap().map(1).unwrap();
    e.str("sha256").unwrap().bytes(&SHA).unwrap();
    let n = value::finish(e);
    let d = Directive::decode("blob/fetch-and-process", &buf[..n]).unwrap();
    assert_eq!(d.metadata.sha256, Some(SHA));

    let mut buf = [0u8; 128];
    let mut e = value::encoder(&mut buf);
    e.map(3).unwrap();
    e.str("url").unwrap().str("http://h/b").unwrap();
    e.str("handler").unwrap().str("x/y").unwrap();
    e.str("metadata").unwrap().map(1).unwrap();
    e.str("sha256").unwrap().bytes(&SHA[..31]).unwrap();
    let n = value::finish(e);
    assert_eq!(
        Directive::decode("blob/fetch-and-process", &buf[..n]),
        Err(DirectiveError::Invalid("sha256"))
    );
}
