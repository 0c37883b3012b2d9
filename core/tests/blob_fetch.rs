//! Simulation properties of the blob fetch machine: random cuts, chunk sizes, reboots,
//! mirror failures, corruption and deadlines against simulated HTTP sources.

mod blob_support;

use blob_support::{Kind, Sim, Source, TestSink, blob};
use proptest::prelude::*;
use sentelite_core::blob::{End, FailReason, FetchOptions};
use sentelite_core::time::{Duration, Instant};
use sha2::{Digest, Sha256};

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Good),
        (0usize..4096).prop_map(Kind::Corrupt),
        Just(Kind::Down),
        Just(Kind::Unavailable),
        Just(Kind::NotFound),
        Just(Kind::IgnoresRange),
        Just(Kind::WrongRange),
        Just(Kind::WrongTotal),
        Just(Kind::Overruns),
    ]
}

fn fast_options(chunk_size: u32) -> FetchOptions {
    FetchOptions {
        chunk_size,
        retry_count: 2,
        attempt_timeout: Duration::from_secs(5),
        ..FetchOptions::default()
    }
}

/// Checks that hold for every run, whatever the sources did.
fn check_end(end: &End, sink: &TestSink, data: &[u8], any_good: bool) {
    assert!(
        sink.violations.is_empty(),
        "sink contract broken: {:?}",
        sink.violations
    );
    match end {
        End::Completed { bytes, sha256, .. } => {
            assert_eq!(*bytes, data.len() as u64);
            assert_eq!(sink.data, data, "committed bytes differ from the blob");
            let actual: [u8; 32] = Sha256::digest(&sink.data).into();
            assert_eq!(&actual, sha256);
            assert_eq!(sink.commits, 1);
        }
        End::Failed { .. } => {
            assert_eq!(sink.commits, 0, "a failed transfer committed");
            assert!(
                sink.aborts >= 1,
                "a failed transfer left the sink unaborted"
            );
            assert!(!any_good, "failed although a good source exists: {end:?}");
        }
        End::Rescheduled { after } => {
            assert_eq!(sink.commits, 0);
            assert!(after.as_micros() > 0);
            assert!(!any_good, "rescheduled although a good source exists");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Blobs of 640 KiB to 1 MiB, up to 8 cuts at random offsets and up to 3 reboots at
    /// random points, sinks with 1- or 4096-byte erase blocks and up to 8 KiB of durable
    /// lag, random body chunking and request chunk sizes: the transfer completes with the
    /// right bytes and re-downloads at most 10 % of the blob. Each reboot can cost at most
    /// lag + one erase block + one checkpoint step (≤ 16 KiB, 2.5 % of the smallest blob);
    /// in-run cuts cost nothing.
    #[test]
    fn cuts_and_reboots_complete_within_ten_percent(
        size in (640usize * 1024)..=(1024 * 1024),
        seed in any::<u64>(),
        cut_fracs in proptest::collection::vec(0.0f64..1.0, 0..=8),
        reboot_after in proptest::collection::btree_set(1u32..30, 0..=3),
        erase in prop_oneof![Just(1u32), Just(4096)],
        lag in prop_oneof![Just(0u64), Just(4096), Just(8192)],
        chunks in proptest::collection::vec(1usize..20_000, 1..6),
        chunk_size in prop_oneof![Just(0u32), 4096u32..300_000],
        mirrors in 1usize..=3,
    ) {
        let (data, sha) = blob(size, seed);
        let sources = (0..mirrors).map(|i| {
            let mut s = Source::new(Kind::Good);
            s.chunks = chunks.clone();
            if i == 0 {
                s.cuts = cut_fracs.iter().map(|f| (f * size as f64) as u64).collect();
            }
            s
        }).collect();
        let mut sim = Sim::new(data.clone(), sources);
        sim.reboot_after = reboot_after.into_iter().collect();
        let plan = sim.plan(sha).with_options(fast_options(chunk_size));
        let mut sink = TestSink::new(erase, lag);
        let out = sim.run(plan, &mut sink);
        check_end(&out.end, &sink, &data, true);
        let End::Completed { downloaded, .. } = out.end else {
            panic!("not completed: {:?}", out.end)
        };
        prop_assert_eq!(downloaded, sim.served());
        let limit = size as u64 + size as u64 / 10;
        prop_assert!(
            sim.served() <= limit,
            "re-downloaded {} bytes over {} ({} reboots)", sim.served() - size as u64, size, out.reboots
        );
    }

    /// Any mixture of good, corrupt, down, missing and misbehaving mirrors, with cuts:
    /// always one end state within a bounded number of steps; Completed exactly when a good
    /// source exists, with the right bytes; otherwise nothing committed.
    #[test]
    fn any_mirror_mixture_ends_explicitly(
        size in 1usize..20_000,
        seed in any::<u64>(),
        kinds in proptest::collection::vec(kind(), 1..=4),
        cuts in proptest::collection::vec(0usize..20_000, 0..4),
        chunks in proptest::collection::vec(1usize..5000, 1..4),
        chunk_size in prop_oneof![Just(0u32), 512u32..8192],
        erase in prop_oneof![Just(1u32), Just(4096)],
    ) {
        let (data, sha) = blob(size, seed);
        let sources: Vec<Source> = kinds.iter().map(|k| {
            let mut s = Source::new(match k {
                Kind::Corrupt(at) => Kind::Corrupt(at % size),
                k => k.clone(),
            });
            s.chunks = chunks.clone();
            s.cuts = cuts.iter().map(|c| (c % size) as u64).collect();
            s
        }).collect();
        let any_good = sources.iter().any(|s| s.kind == Kind::Good);
        let mut sim = Sim::new(data.clone(), sources);
        sim.step_limit = 2_000;
        let plan = sim.plan(sha).with_options(fast_options(chunk_size));
        let mut sink = TestSink::new(erase, 0);
        let out = sim.run(plan, &mut sink);
        check_end(&out.end, &sink, &data, any_good);
        let only_bad_content = sim.sources.iter().all(|s| matches!(s.kind, Kind::Corrupt(_)));
        if only_bad_content {
            prop_assert_eq!(out.end, End::Failed { reason: FailReason::Corrupt });
        }
    }

    /// A deadline somewhere within the transfer's natural duration: it either completes
    /// before the deadline or fails with `Deadline` at (not long after) it; never later.
    #[test]
    fn deadline_is_honoured(
        size in 1000usize..200_000,
        seed in any::<u64>(),
        deadline_ms in 1u64..400,
        down_first in any::<bool>(),
    ) {
        let (data, sha) = blob(size, seed);
        let mut good = Source::new(Kind::Good);
        good.chunk_micros = 2_000;
        let sources = if down_first { vec![Source::new(Kind::Down), good] } else { vec![good] };
        let mut sim = Sim::new(data.clone(), sources);
        let deadline = sim.now + Duration::from_millis(deadline_ms);
        let mut options = fast_options(0);
        options.deadline = Some(deadline);
        let plan = sim.plan(sha).with_options(options);
        let mut sink = TestSink::new(1, 0);
        let out = sim.run(plan, &mut sink);
        check_end(&out.end, &sink, &data, out.end != End::Failed { reason: FailReason::Deadline });
        match out.end {
            End::Completed { .. } => prop_assert!(out.now < deadline),
            End::Failed { reason: FailReason::Deadline } => {
                prop_assert!(out.now >= deadline);
                // One body chunk past it at most.
                prop_assert!(out.now <= deadline + Duration::from_millis(3));
            }
            other => prop_assert!(false, "unexpected end {:?}", other),
        }
    }
}

/// Only corrupt sources: Failed { Corrupt }, the sink aborted, never committed.
#[test]
fn corrupt_only_sources_fail_without_commit() {
    let (data, sha) = blob(50_000, 7);
    let sources = vec![
        Source::new(Kind::Corrupt(10)),
        Source::new(Kind::Corrupt(49_999)),
    ];
    let mut sim = Sim::new(data.clone(), sources);
    let plan = sim.plan(sha).with_options(fast_options(0));
    let mut sink = TestSink::new(1, 0);
    let out = sim.run(plan, &mut sink);
    assert_eq!(
        out.end,
        End::Failed {
            reason: FailReason::Corrupt
        }
    );
    assert_eq!(sink.commits, 0);
    assert!(sink.aborts >= 2, "each corrupt whole is aborted");
    assert!(sink.data.is_empty());
    // Each source delivered the blob once and was then given up on.
    assert_eq!(sim.sources[0].served, 50_000);
    assert_eq!(sim.sources[1].served, 50_000);
}

/// A corrupt first source, a good mirror: completes from the mirror.
#[test]
fn corrupt_source_fails_over_to_good_mirror() {
    let (data, sha) = blob(30_000, 8);
    let sources = vec![Source::new(Kind::Corrupt(123)), Source::new(Kind::Good)];
    let mut sim = Sim::new(data.clone(), sources);
    let plan = sim.plan(sha).with_options(fast_options(0));
    let mut sink = TestSink::new(1, 0);
    let out = sim.run(plan, &mut sink);
    check_end(&out.end, &sink, &data, true);
    assert!(matches!(
        out.end,
        End::Completed {
            downloaded: 60_000,
            ..
        }
    ));
}

/// Only transient failures everywhere: Rescheduled, after each source used its retries.
#[test]
fn transient_only_failures_reschedule() {
    let (data, sha) = blob(1000, 9);
    let sources = vec![Source::new(Kind::Down), Source::new(Kind::Unavailable)];
    let mut sim = Sim::new(data.clone(), sources);
    let plan = sim.plan(sha).with_options(fast_options(0));
    let mut sink = TestSink::new(1, 0);
    let out = sim.run(plan, &mut sink);
    assert!(matches!(out.end, End::Rescheduled { .. }), "{:?}", out.end);
    // retry_count 2: three attempts per source.
    assert_eq!(sim.sources[0].requests, 3);
    assert_eq!(sim.sources[1].requests, 3);
    // Backoff waited between attempts.
    assert!(out.now > Instant::from_millis(1) + Duration::from_millis(4 * 250));
}

/// A sink that already holds the blob: Completed at once, no request at all.
#[test]
fn dedup_completes_without_request() {
    let (data, sha) = blob(10_000, 10);
    let mut sim = Sim::new(data, vec![Source::new(Kind::Good)]);
    let plan = sim.plan(sha);
    let mut sink = TestSink::new(1, 0);
    sink.holds = Some(sha);
    let out = sim.run(plan, &mut sink);
    assert_eq!(
        out.end,
        End::Completed {
            bytes: 10_000,
            downloaded: 0,
            sha256: sha
        }
    );
    assert_eq!(out.requests, 0);
    assert_eq!(sim.sources[0].requests, 0);
    assert_eq!(sink.begins, 0);
}

/// A reboot halfway: the postcard-saved state resumes at a durable, erase-aligned
/// checkpoint with its SHA-256 state, and the result hashes right.
#[test]
fn reboot_resumes_from_saved_hash_state() {
    let size = 256 * 1024;
    let (data, sha) = blob(size, 11);
    let mut src = Source::new(Kind::Good);
    src.chunks = vec![10_000];
    let mut sim = Sim::new(data.clone(), vec![src]);
    let mut options = fast_options(64 * 1024);
    options.checkpoint_step = 4096;
    let plan = sim.plan(sha).with_options(options);
    // Reboot after two 64 KiB requests: 128 KiB written, durable 128 KiB - 8 KiB lag.
    sim.reboot_after = vec![2];
    let mut sink = TestSink::new(4096, 8192);
    let out = sim.run(plan, &mut sink);
    check_end(&out.end, &sink, &data, true);
    assert_eq!(out.reboots, 1);
    assert_eq!(sink.begins, 1, "the resume must not restart the sink");
    let redone = sim.served() - size as u64;
    assert!(
        redone > 0 && redone <= 8192 + 4096,
        "re-downloaded {redone}"
    );
}

/// Progress comes at the configured step and ends at 100 %.
#[test]
fn progress_at_configured_granularity() {
    let size = 100_000;
    let (data, sha) = blob(size, 12);
    let mut sim = Sim::new(data.clone(), vec![Source::new(Kind::Good)]);
    let mut options = fast_options(0);
    options.progress_step = 10_000;
    let plan = sim.plan(sha).with_options(options);
    let mut sink = TestSink::new(1, 0);
    let out = sim.run(plan, &mut sink);
    check_end(&out.end, &sink, &data, true);
    // Chunks of 1500 bytes: one report per 10 000 bytes crossed, the last at 100 %.
    assert_eq!(out.progress.len(), 10, "{:?}", out.progress);
    assert_eq!(*out.progress.last().unwrap(), (size as u64, 100));
    for w in out.progress.windows(2) {
        assert!(w[1].0 - w[0].0 >= 10_000 || w[1].0 == size as u64);
    }
}
