//! Edge cases of the blob fetch machine, one hostile or unusual answer at a time, and a
//! property feeding it arbitrary call sequences.

mod blob_support;

use blob_support::{M, Plan, TestSink, U, blob};
use proptest::prelude::*;
use sentelite_core::blob::{
    Action, BlobSink, End, FailReason, Fetch, FetchError, FetchOptions, RangeRequest, ResponseHead,
    SinkError, SliceSink, TransferState, TransportError,
};
use sentelite_core::time::{Duration, Instant};
use sha2::{Digest, Sha256};

const T0: Instant = Instant::from_millis(1);

fn plan(data: &[u8], sha: [u8; 32], chunk_size: u32) -> Plan {
    Plan::new("http://a.test/b", data.len() as u64, sha)
        .unwrap()
        .with_options(FetchOptions {
            chunk_size,
            retry_count: 1,
            attempt_timeout: Duration::from_secs(1),
            ..FetchOptions::default()
        })
}

fn head(
    status: u16,
    range_start: Option<u64>,
    total: Option<u64>,
    etag: Option<&str>,
) -> ResponseHead<'_> {
    ResponseHead {
        status,
        range_start,
        total,
        etag,
    }
}

/// The request the machine asks for now, owned.
fn request(
    f: &mut Fetch<M, U>,
    now: Instant,
    sink: &mut impl BlobSink,
) -> (usize, u64, Option<u64>, Option<String>) {
    match f.poll_action(now, sink) {
        Action::Request(RangeRequest {
            source,
            start,
            end_inclusive,
            if_range,
            ..
        }) => (source, start, end_inclusive, if_range.map(str::to_owned)),
        other => panic!("expected a request, got {other:?}"),
    }
}

fn finished(f: &mut Fetch<M, U>, now: Instant, sink: &mut impl BlobSink) -> End {
    match f.poll_action(now, sink) {
        Action::Finished(end) => *end,
        other => panic!("expected the end, got {other:?}"),
    }
}

#[test]
fn a_200_instead_of_206_restarts_from_zero() {
    let (data, sha) = blob(300, 1);
    let mut sink = TestSink::new(1, 0);
    let mut f = Fetch::new(T0, plan(&data, sha, 100), &mut sink);
    assert_eq!(request(&mut f, T0, &mut sink), (0, 0, Some(99), None));
    f.on_response(T0, head(206, Some(0), Some(300), Some("\"e\"")))
        .unwrap();
    f.on_body(T0, &data[..100], &mut sink).unwrap();
    assert_eq!(
        request(&mut f, T0, &mut sink),
        (0, 100, Some(199), Some("\"e\"".into()))
    );
    f.on_response(T0, head(200, None, Some(300), Some("\"e\"")))
        .unwrap();
    assert_eq!(f.offset(), 0);
    f.on_body(T0, &data, &mut sink).unwrap();
    assert_eq!(
        finished(&mut f, T0, &mut sink),
        End::Completed {
            bytes: 300,
            downloaded: 400,
            sha256: sha
        }
    );
    assert_eq!(sink.begins, 2, "the sink begins again for the whole body");
    assert_eq!(sink.data, data);
}

#[test]
fn wrong_content_range_gives_up_the_source() {
    let (data, sha) = blob(300, 2);
    let mut sink = TestSink::new(1, 0);
    let mut f = Fetch::new(T0, plan(&data, sha, 0), &mut sink);
    request(&mut f, T0, &mut sink);
    assert_eq!(
        f.on_response(T0, head(206, Some(5), Some(300), None)),
        Err(FetchError::BadRange)
    );
    assert_eq!(f.on_body(T0, &data, &mut sink), Err(FetchError::Finished));
    assert_eq!(
        finished(&mut f, T0, &mut sink),
        End::Failed {
            reason: FailReason::BadResponse
        }
    );
    assert_eq!(sink.commits, 0);
    assert!(sink.aborts >= 1);
}

#[test]
fn a_changed_total_fails_over_to_the_mirror() {
    let (data, sha) = blob(300, 3);
    let mut sink = TestSink::new(1, 0);
    let mut p = plan(&data, sha, 0);
    p.add_source("http://b.test/b").unwrap();
    let mut f = Fetch::new(T0, p, &mut sink);
    request(&mut f, T0, &mut sink);
    assert_eq!(
        f.on_response(T0, head(206, Some(0), Some(301), None)),
        Err(FetchError::SizeChanged)
    );
    assert_eq!(request(&mut f, T0, &mut sink), (1, 0, None, None));
    f.on_response(T0, head(206, Some(0), Some(u64::MAX), None))
        .unwrap_err();
    assert_eq!(
        finished(&mut f, T0, &mut sink),
        End::Failed {
            reason: FailReason::SizeMismatch
        }
    );
}

#[test]
fn bytes_beyond_the_range_are_ignored() {
    let (data, sha) = blob(300, 4);
    let mut sink = TestSink::new(1, 0);
    let mut f = Fetch::new(T0, plan(&data, sha, 100), &mut sink);
    request(&mut f, T0, &mut sink);
    f.on_response(T0, head(206, Some(0), Some(300), None))
        .unwrap();
    assert_eq!(
        f.on_body(T0, &data[..150], &mut sink),
        Err(FetchError::Overrun)
    );
    assert_eq!(f.offset(), 100);
    assert_eq!(sink.len, 100);
    assert_eq!(request(&mut f, T0, &mut sink).1, 100);
}

#[test]
fn a_changed_etag_restarts_from_zero() {
    let (data, sha) = blob(300, 5);
    let mut sink = TestSink::new(1, 0);
    let mut f = Fetch::new(T0, plan(&data, sha, 100), &mut sink);
    request(&mut f, T0, &mut sink);
    f.on_response(T0, head(206, Some(0), Some(300), Some("\"a\"")))
        .unwrap();
    f.on_body(T0, &data[..100], &mut sink).unwrap();
    assert_eq!(request(&mut f, T0, &mut sink).3.as_deref(), Some("\"a\""));
    assert_eq!(
        f.on_response(T0, head(206, Some(100), Some(300), Some("\"b\""))),
        Err(FetchError::ContentChanged)
    );
    assert_eq!(f.offset(), 0);
    // A backoff delay, then offset 0 again without If-Range.
    let Action::Wait(t) = f.poll_action(T0, &mut sink) else {
        panic!("no backoff")
    };
    assert_eq!(request(&mut f, t, &mut sink), (0, 0, Some(99), None));
}

#[test]
fn not_found_everywhere_fails_with_the_status() {
    let (data, sha) = blob(300, 6);
    let mut sink = TestSink::new(1, 0);
    let mut f = Fetch::new(T0, plan(&data, sha, 0), &mut sink);
    request(&mut f, T0, &mut sink);
    assert_eq!(
        f.on_response(T0, head(404, None, None, None)),
        Err(FetchError::Status(404))
    );
    assert_eq!(
        finished(&mut f, T0, &mut sink),
        End::Failed {
            reason: FailReason::Status(404)
        }
    );
    assert_eq!(f.last_status(), Some(404));
}

#[test]
fn sink_without_space_fails() {
    let (data, sha) = blob(300, 7);
    let mut sink = TestSink::new(1, 0);
    sink.capacity = 300;
    let mut f = Fetch::new(T0, plan(&data, sha, 0), &mut sink);
    sink.capacity = 50;
    request(&mut f, T0, &mut sink);
    f.on_response(T0, head(206, Some(0), Some(300), None))
        .unwrap();
    assert_eq!(f.on_body(T0, &data, &mut sink), Err(FetchError::Finished));
    assert_eq!(
        finished(&mut f, T0, &mut sink),
        End::Failed {
            reason: FailReason::Sink(SinkError::NoSpace)
        }
    );
    assert_eq!(sink.commits, 0);

    // Too large from the start: no request at all.
    let mut small = [0u8; 10];
    let mut slice = SliceSink::new(&mut small);
    let mut f: Fetch<M, U> = Fetch::new(T0, plan(&data, sha, 0), &mut slice);
    assert_eq!(
        finished(&mut f, T0, &mut slice),
        End::Failed {
            reason: FailReason::Sink(SinkError::TooLarge)
        }
    );
}

#[test]
fn a_state_that_does_not_fit_starts_over() {
    let (data, sha) = blob(10_000, 8);
    let mut sink = TestSink::new(4096, 0);
    let mut f = Fetch::new(T0, plan(&data, sha, 0), &mut sink);
    request(&mut f, T0, &mut sink);
    f.on_response(T0, head(206, Some(0), Some(10_000), None))
        .unwrap();
    f.on_body(T0, &data[..9000], &mut sink).unwrap();
    let good = f.state();
    assert_eq!(good.offset, 8192, "newest erase-aligned durable checkpoint");

    type Spoil = fn(&mut TransferState);
    let cases: [(&str, Spoil); 5] = [
        ("other blob", |s| s.sha256[0] ^= 1),
        ("other size", |s| s.size += 1),
        ("unaligned", |s| s.offset = 100),
        ("beyond durable", |s| s.offset = 12_288),
        ("bad hash state", |s| {
            s.hash_state.pop();
        }),
    ];
    for (what, spoil) in cases {
        let mut bad = good.clone();
        spoil(&mut bad);
        let begins = sink.begins;
        let mut f = Fetch::resume(T0, plan(&data, sha, 0), &bad, &mut sink);
        assert_eq!(request(&mut f, T0, &mut sink).1, 0, "{what}");
        assert_eq!(sink.begins, begins + 1, "{what}");
        sink.write_at(0, &data[..9000]).unwrap();
    }
    let mut f = Fetch::resume(T0, plan(&data, sha, 0), &good, &mut sink);
    assert_eq!(request(&mut f, T0, &mut sink).1, 8192);
    f.on_response(T0, head(206, Some(8192), Some(10_000), None))
        .unwrap();
    f.on_body(T0, &data[8192..], &mut sink).unwrap();
    assert!(matches!(
        finished(&mut f, T0, &mut sink),
        End::Completed { .. }
    ));
    assert_eq!(sink.data, data);
}

#[test]
fn an_empty_blob_completes_without_a_request() {
    let sha: [u8; 32] = Sha256::digest([]).into();
    let mut sink = TestSink::new(1, 0);
    let mut f = Fetch::new(T0, plan(&[], sha, 0), &mut sink);
    assert_eq!(
        finished(&mut f, T0, &mut sink),
        End::Completed {
            bytes: 0,
            downloaded: 0,
            sha256: sha
        }
    );
    assert_eq!(sink.commits, 1);
}

#[test]
fn without_verify_the_actual_hash_is_committed() {
    let (data, sha) = blob(300, 9);
    let mut sink = TestSink::new(1, 0);
    let mut p = plan(&data, [0; 32], 0);
    p.options.verify = false;
    let mut f = Fetch::new(T0, p, &mut sink);
    request(&mut f, T0, &mut sink);
    f.on_response(T0, head(200, None, Some(300), None)).unwrap();
    f.on_body(T0, &data, &mut sink).unwrap();
    assert_eq!(
        finished(&mut f, T0, &mut sink),
        End::Completed {
            bytes: 300,
            downloaded: 300,
            sha256: sha
        }
    );
}

#[test]
fn calls_out_of_order_are_refused() {
    let (data, sha) = blob(300, 10);
    let mut sink = TestSink::new(1, 0);
    let mut f = Fetch::new(T0, plan(&data, sha, 0), &mut sink);
    assert_eq!(
        f.on_response(T0, head(206, Some(0), Some(300), None)),
        Err(FetchError::Unexpected)
    );
    assert_eq!(f.on_body(T0, &data, &mut sink), Err(FetchError::Unexpected));
    request(&mut f, T0, &mut sink);
    assert_eq!(f.on_body(T0, &data, &mut sink), Err(FetchError::Unexpected));
    assert_eq!(sink.len, 0);
}

#[test]
fn a_silent_server_times_out_and_is_retried() {
    let (data, sha) = blob(300, 11);
    let mut sink = TestSink::new(1, 0);
    let mut f = Fetch::new(T0, plan(&data, sha, 0), &mut sink);
    request(&mut f, T0, &mut sink);
    let Action::Wait(idle) = f.poll_action(T0, &mut sink) else {
        panic!()
    };
    assert_eq!(idle, T0 + Duration::from_secs(1));
    assert_eq!(f.poll_timeout(), Some(idle));
    let Action::Wait(retry_at) = f.poll_action(idle, &mut sink) else {
        panic!("no backoff")
    };
    assert_eq!(f.retries(), 1);
    request(&mut f, retry_at, &mut sink);
    f.on_error(retry_at, TransportError::Timeout);
    // retry_count 1 on the only source: out of retries, transient only.
    assert!(matches!(
        finished(&mut f, retry_at, &mut sink),
        End::Rescheduled { .. }
    ));
    assert_eq!(
        sink.aborts, 0,
        "a rescheduled transfer keeps its bytes for a resume"
    );
}

#[test]
fn cancel_aborts_and_sticks() {
    let (data, sha) = blob(300, 12);
    let mut sink = TestSink::new(1, 0);
    let mut f = Fetch::new(T0, plan(&data, sha, 0), &mut sink);
    request(&mut f, T0, &mut sink);
    f.on_response(T0, head(206, Some(0), Some(300), None))
        .unwrap();
    f.on_body(T0, &data[..100], &mut sink).unwrap();
    f.cancel(&mut sink);
    assert_eq!(sink.aborts, 1);
    assert_eq!(
        f.on_body(T0, &data[100..], &mut sink),
        Err(FetchError::Finished)
    );
    assert_eq!(
        finished(&mut f, T0, &mut sink),
        End::Failed {
            reason: FailReason::Cancelled
        }
    );
    assert_eq!(f.poll_timeout(), None);
    assert_eq!(sink.commits, 0);
}

#[test]
fn slice_sink_holds_the_committed_blob() {
    let (data, sha) = blob(500, 13);
    let mut buf = [0u8; 512];
    let mut sink = SliceSink::new(&mut buf);
    let mut f: Fetch<M, U> = Fetch::new(T0, plan(&data, sha, 0), &mut sink);
    request(&mut f, T0, &mut sink);
    f.on_response(T0, head(206, Some(0), Some(500), None))
        .unwrap();
    f.on_body(T0, &data, &mut sink).unwrap();
    assert!(matches!(
        finished(&mut f, T0, &mut sink),
        End::Completed { .. }
    ));
    assert_eq!(sink.committed(), Some(&data[..]));
    assert!(sink.contains(&sha));
}

#[derive(Debug, Clone)]
enum Op {
    Poll(u64),
    Head {
        status: u16,
        start: Option<u64>,
        total: Option<u64>,
        etag: u8,
    },
    Body {
        from: u64,
        len: usize,
        flip: bool,
    },
    BodyEnd,
    Error,
    Reboot,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u64..3_000_000).prop_map(Op::Poll),
        (
            prop_oneof![Just(200u16), Just(206), Just(404), Just(503), any::<u16>()],
            proptest::option::of(prop_oneof![0u64..2000, any::<u64>()]),
            proptest::option::of(prop_oneof![Just(1000u64), any::<u64>()]),
            0u8..3,
        )
            .prop_map(|(status, start, total, etag)| Op::Head {
                status,
                start,
                total,
                etag
            }),
        (0u64..1200, 0usize..3000, any::<bool>()).prop_map(|(from, len, flip)| Op::Body {
            from,
            len,
            flip
        }),
        Just(Op::BodyEnd),
        Just(Op::Error),
        Just(Op::Reboot),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Arbitrary heads, bodies, errors, clock jumps and reboots in any order: no panic, no
    /// commit of bytes other than the blob, and a deadline still ends it.
    #[test]
    fn arbitrary_call_sequences_never_panic_or_commit_wrong_bytes(
        ops in proptest::collection::vec(op(), 1..200),
        erase in prop_oneof![Just(1u32), Just(256)],
        chunk_size in prop_oneof![Just(0u32), 1u32..1500],
    ) {
        let (data, sha) = blob(1000, 99);
        let mut sink = TestSink::new(erase, 64);
        let deadline = T0 + Duration::from_secs(60);
        let mut p = plan(&data, sha, chunk_size);
        p.options.deadline = Some(deadline);
        p.options.checkpoint_step = 100;
        let mut f = Fetch::new(T0, p.clone(), &mut sink);
        let mut now = T0;
        let etags = ["\"x\"", "\"y\"", "W/\"x\""];
        for op in ops {
            match op {
                Op::Poll(dt) => {
                    now += Duration::from_micros(dt);
                    let _ = f.poll_action(now, &mut sink);
                }
                Op::Head { status, start, total, etag } => {
                    let _ = f.on_response(now, head(status, start, total, Some(etags[etag as usize])));
                }
                Op::Body { from, len, flip } => {
                    let from = from.min(1000) as usize;
                    let mut bytes: Vec<u8> = data[from..].iter().copied().cycle().take(len).collect();
                    if flip && !bytes.is_empty() {
                        bytes[0] ^= 1;
                    }
                    let _ = f.on_body(now, &bytes, &mut sink);
                }
                Op::BodyEnd => f.on_body_end(now, &mut sink),
                Op::Error => f.on_error(now, TransportError::Cut),
                Op::Reboot => {
                    let bytes = postcard::to_allocvec(&f.state()).unwrap();
                    sink.crash();
                    let saved: TransferState = postcard::from_bytes(&bytes).unwrap();
                    f = Fetch::resume(now, p.clone(), &saved, &mut sink);
                }
            }
            prop_assert!(sink.violations.is_empty(), "{:?}", sink.violations);
        }
        if let Some(End::Completed { .. }) = f.end() {
            prop_assert_eq!(&sink.data, &data);
        }
        prop_assert!(sink.commits <= 1);
        if sink.commits == 1 {
            prop_assert_eq!(&sink.data, &data);
        }
        // Past the deadline it is over, one way or another.
        let after = deadline.max(now) + Duration::from_secs(1);
        let _ = f.poll_action(after, &mut sink);
        prop_assert!(f.end().is_some());
    }
}

#[test]
fn a_directive_becomes_a_plan() {
    use sentelite_core::blob::PlanError;
    use sentelite_core::blob::directive::{Directive, HandlerKind, Metadata, Options};
    let mut d = Directive {
        kind: HandlerKind::Process,
        transfer_id: "t1",
        url: "http://h:1/blobs/aa",
        mirrors: heapless::Vec::from_slice(&["http://m:1/blobs/aa"]).unwrap(),
        handler: "fw/update",
        metadata: Metadata {
            size: Some(10),
            sha256: Some([7; 32]),
            content_type: None,
        },
        options: Options {
            timeout_ms: Some(2500),
            retry_count: Some(5),
            verify: true,
            chunk_size: Some(4096),
            deadline_ms: Some(60_000),
        },
    };
    let p: Plan = Plan::from_directive(&d, T0).unwrap();
    assert_eq!(p.sources.len(), 2);
    assert_eq!(p.sources[1].as_str(), "http://m:1/blobs/aa");
    assert_eq!((p.size, p.sha256), (10, [7; 32]));
    assert_eq!(p.options.retry_count, 5);
    assert_eq!(p.options.chunk_size, 4096);
    assert_eq!(p.options.attempt_timeout, Duration::from_millis(2500));
    assert_eq!(p.options.deadline, Some(T0 + Duration::from_secs(60)));
    d.metadata.sha256 = None;
    assert_eq!(
        Plan::from_directive(&d, T0).unwrap_err(),
        PlanError::MissingSha256
    );
    d.options.verify = false;
    assert!(Plan::from_directive(&d, T0).is_ok());
    d.metadata.size = None;
    assert_eq!(
        Plan::from_directive(&d, T0).unwrap_err(),
        PlanError::MissingSize
    );
    d.metadata.size = Some(1);
    d.url = "http://a-very-long-host-name-that-does-not-fit-in-sixty-four-bytes.test/blobs/aa";
    assert_eq!(
        Plan::from_directive(&d, T0).unwrap_err(),
        PlanError::UrlTooLong
    );
}

/// The resume point of a machine with `C` hash checkpoints after `upto` bytes of a 64 KiB
/// blob arrived in 1 KiB chunks, into a sink with 4 KiB erase blocks that reports durable
/// `lag` bytes behind its last whole block.
fn resume_point_with<const C: usize>(lag: u64, upto: usize) -> u64 {
    let (data, sha) = blob(64 * 1024, 3);
    let mut sink = TestSink::new(4096, lag);
    let mut f = Fetch::<M, U, C>::new_with_checkpoints(T0, plan(&data, sha, 0), &mut sink);
    assert!(matches!(f.poll_action(T0, &mut sink), Action::Request(_)));
    let total = Some(data.len() as u64);
    f.on_response(T0, head(200, None, total, None)).unwrap();
    for chunk in data[..upto].chunks(1024) {
        f.on_body(T0, chunk, &mut sink).unwrap();
    }
    f.state().offset
}

#[test]
fn one_checkpoint_keeps_up_with_a_write_through_sink_and_lags_behind_a_slow_one() {
    // Durable as soon as a block is whole (a flash partition written through): one
    // checkpoint waits at a time, so one is as good as four.
    assert_eq!(resume_point_with::<1>(0, 40 * 1024), 40 * 1024);
    assert_eq!(resume_point_with::<4>(0, 40 * 1024), 40 * 1024);
    // Durable two blocks late: four checkpoints follow it exactly; one skips the
    // boundaries crossed while it waits, so the resume point is an older one.
    assert_eq!(resume_point_with::<4>(8192, 40 * 1024), 32 * 1024);
    assert_eq!(resume_point_with::<1>(8192, 40 * 1024), 28 * 1024);
}

#[test]
fn no_waiting_checkpoint_keeps_up_with_a_write_through_sink_only() {
    // `C = 0` (the devices' sizing): a boundary the sink already holds when it is hashed
    // becomes the resume point at once, so a write-through sink resumes as with four.
    assert_eq!(resume_point_with::<0>(0, 40 * 1024), 40 * 1024);
    assert_eq!(resume_point_with::<0>(0, 40 * 1024 + 512), 40 * 1024);
    // A sink that lags has nothing durable at any boundary when it is hashed, and nothing
    // can wait: the resume point stays at the start, which is why the devices' sinks are
    // written through.
    assert_eq!(resume_point_with::<0>(8192, 40 * 1024), 0);
}

#[test]
fn a_plan_by_index_asks_by_source_number_and_fails_over_in_the_directive_order() {
    use sentelite_core::blob::FetchPlan;
    use sentelite_core::blob::directive::{Directive, HandlerKind, Metadata, Options};
    let (data, sha) = blob(3000, 5);
    let directive = Directive {
        kind: HandlerKind::Process,
        transfer_id: "t1",
        url: "http://a.test/b",
        mirrors: heapless::Vec::from_slice(&["http://mirror.test/a/rather/long/path/b"]).unwrap(),
        handler: "fw/update",
        metadata: Metadata {
            size: Some(data.len() as u64),
            sha256: Some(sha),
            content_type: None,
        },
        options: Options {
            retry_count: Some(0),
            ..Options::default()
        },
    };
    // U = 0: no URL text is kept, whatever its length; `from_directive` refuses it.
    assert!(FetchPlan::<M, 0>::from_directive(&directive, T0).is_err());
    let plan = FetchPlan::<M, 0>::from_directive_by_index(&directive, T0).unwrap();
    assert_eq!((plan.sources.len(), plan.size), (2, 3000));
    assert_eq!(plan.options.retry_count, 0);
    let mut sink = TestSink::new(1, 0);
    let mut f = Fetch::<M, 0>::new(T0, plan, &mut sink);
    let Action::Request(first) = f.poll_action(T0, &mut sink) else {
        panic!("expected a request");
    };
    assert_eq!((first.source, first.url), (0, ""));
    f.on_response(T0, head(404, None, None, None)).unwrap_err();
    let Action::Request(second) = f.poll_action(T0, &mut sink) else {
        panic!("expected the mirror");
    };
    assert_eq!((second.source, second.url), (1, ""));
    let mirror = directive.sources().nth(second.source);
    assert_eq!(mirror, Some("http://mirror.test/a/rather/long/path/b"));
    f.on_response(T0, head(200, None, Some(3000), None))
        .unwrap();
    f.on_body(T0, &data, &mut sink).unwrap();
    let end = f.poll_action(T0, &mut sink);
    assert!(
        matches!(end, Action::Finished(End::Completed { .. })),
        "{end:?}"
    );
}

#[test]
fn the_run_time_constructor_starts_and_resumes_as_the_two_constructors_do() {
    let (data, sha) = blob(64 * 1024, 7);
    // A saved point after 40 KiB, from a sink that holds it durably.
    let saved = {
        let mut sink = TestSink::new(4096, 0);
        let mut f = Fetch::<M, U, 1>::new_with_checkpoints(T0, plan(&data, sha, 0), &mut sink);
        assert!(matches!(f.poll_action(T0, &mut sink), Action::Request(_)));
        let total = Some(data.len() as u64);
        f.on_response(T0, head(200, None, total, Some("\"e\"")))
            .unwrap();
        for chunk in data[..40 * 1024].chunks(1024) {
            f.on_body(T0, chunk, &mut sink).unwrap();
        }
        f.state()
    };
    assert_eq!(saved.offset, 40 * 1024);
    // What each machine asks first, and the point it would save.
    let first = |mut f: Fetch<M, U, 1>, sink: &mut TestSink| {
        let asked = match f.poll_action(T0, sink) {
            Action::Request(r) => Some((
                r.source,
                r.start,
                r.end_inclusive,
                r.if_range.map(str::to_owned),
            )),
            _ => None,
        };
        (asked, f.state())
    };
    let held = || {
        let mut sink = TestSink::new(4096, 0);
        sink.begin(data.len() as u64).unwrap();
        sink.write_at(0, &data[..40 * 1024]).unwrap();
        sink
    };
    for saved in [None, Some(&saved)] {
        let (mut a, mut b) = (held(), held());
        let by_kind = match saved {
            None => Fetch::<M, U, 1>::new_with_checkpoints(T0, plan(&data, sha, 0), &mut a),
            Some(s) => {
                Fetch::<M, U, 1>::resume_with_checkpoints(T0, plan(&data, sha, 0), s, &mut a)
            }
        };
        let at_run_time = Fetch::<M, U, 1>::start_or_resume_with_checkpoints(
            T0,
            plan(&data, sha, 0),
            saved,
            &mut b,
        );
        let (asked, state) = first(by_kind, &mut a);
        assert_eq!((asked.clone(), state.clone()), first(at_run_time, &mut b));
        // Resumed: from 40 KiB with the ETag; started: from 0 without one.
        let start = asked.as_ref().map(|r| r.1);
        assert_eq!(start, Some(if saved.is_some() { 40 * 1024 } else { 0 }));
        assert_eq!(a.begins, b.begins);
    }
}
