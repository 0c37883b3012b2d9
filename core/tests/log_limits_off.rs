//! A build without the `log-limits` feature (the firmware examples'): the filter keeps the
//! switch and levels a server's `SetFilter` gives, applies no sampling and no rate limits, and
//! says so with one warn record from `sentelite::log` per control message that asked for them.
//!
//! Compiled only without the feature, which `cargo test --workspace` always enables through
//! the host; run it on its own with
//! `cargo test -p sentelite-core --no-default-features --features log-facade --test log_limits_off`.
#![cfg(not(feature = "log-limits"))]

use sentelite_core::Instant;
use sentelite_core::log::{
    FilterConfig, Level, LevelSet, LogConfig, LogControl, LogShipper, Logged, NewRecord, Rate,
    RemoteLogger, UNAPPLIED_MESSAGE, UNAPPLIED_TARGET, Verdict, decode_batch,
};

fn record(level: Level, time_ms: u64) -> NewRecord<'static> {
    NewRecord {
        time_ms,
        level,
        namespace: "app",
        id: None,
        message: "tick",
        data: &[],
    }
}

/// Levels from debug up, one debug record in three, error rate limited.
fn limited() -> FilterConfig {
    let mut filter = FilterConfig {
        levels: LevelSet::at_least(Level::Debug),
        ..FilterConfig::default()
    };
    filter.sample_every[Level::Debug.index()] = 3;
    filter.rate[Level::Error.index()] = Some(Rate {
        per_second: 1,
        burst: 1,
    });
    filter
}

/// A wire batch's records as (namespace, level, time, message).
fn records_of(batch: &[u8]) -> Vec<(String, Level, u64, String)> {
    decode_batch(batch)
        .unwrap()
        .records()
        .map(|r| {
            let r = r.unwrap();
            (
                r.namespace.to_string(),
                r.level,
                r.time_ms,
                r.message.to_string(),
            )
        })
        .collect()
}

/// The records of the batch that is due now, as (namespace, level, time, message).
fn shipped(
    shipper: &mut LogShipper<[u8; 1024]>,
    now: Instant,
) -> Vec<(String, Level, u64, String)> {
    shipper.on_connected(now);
    shipper.apply(LogControl::Flush);
    let mut out = [0u8; 1024];
    let Some(ready) = shipper.poll_batch(now, &mut out) else {
        return Vec::new();
    };
    assert!(shipper.on_ack(ready.id));
    records_of(&out[..ready.len])
}

#[test]
fn levels_apply_and_sampling_and_rate_limits_do_not() {
    let mut shipper = LogShipper::new([0u8; 1024], LogConfig::default(), 0);
    assert!(!shipper.wants(Level::Debug));
    shipper.apply(LogControl::SetFilter(limited()));
    assert!(shipper.wants(Level::Debug) && !shipper.wants(Level::Trace));
    // What is in force: the levels, no sampling, no limits.
    assert_eq!(
        shipper.config().filter,
        FilterConfig {
            levels: LevelSet::at_least(Level::Debug),
            ..FilterConfig::default()
        }
    );
    let now = Instant::from_millis(5);
    for t in 0..6 {
        assert!(matches!(
            shipper.log(now, &record(Level::Debug, t)),
            Logged::Queued(_)
        ));
        assert!(matches!(
            shipper.log(now, &record(Level::Error, t)),
            Logged::Queued(_)
        ));
    }
    assert_eq!(
        shipper.log(now, &record(Level::Trace, 9)),
        Logged::Filtered(Verdict::LevelOff)
    );
    assert_eq!(shipper.filter_stats(), Default::default());
    assert_eq!(
        shipper.queue().len(),
        12,
        "every debug and error record kept"
    );
}

#[test]
fn a_filter_asking_for_limits_is_answered_with_one_warning() {
    let mut shipper = LogShipper::new([0u8; 1024], LogConfig::default(), 0);
    let now = Instant::from_millis(7);
    // Only error kept: the warning still goes, it bypasses the level set.
    let filter = FilterConfig {
        levels: LevelSet::of(&[Level::Error]),
        ..limited()
    };
    shipper.apply(LogControl::SetFilter(filter));
    assert!(matches!(
        shipper.log_unapplied(now, 1_234),
        Some(Logged::Queued(_))
    ));
    assert_eq!(shipper.log_unapplied(now, 1_235), None, "once per message");
    assert_eq!(
        shipped(&mut shipper, now),
        [(
            UNAPPLIED_TARGET.to_string(),
            Level::Warn,
            1_234,
            UNAPPLIED_MESSAGE.to_string()
        )]
    );
    assert_eq!(UNAPPLIED_TARGET, "sentelite::log");

    // The same message again: one more warning, never more than one per message.
    shipper.apply(LogControl::SetFilter(filter));
    shipper.apply(LogControl::SetFilter(filter));
    assert!(shipper.log_unapplied(now, 2_000).is_some());
    assert_eq!(shipper.log_unapplied(now, 2_001), None);
    assert_eq!(shipped(&mut shipper, now).len(), 1);

    // A filter asking for none, or switching logging off, or a flush: no warning.
    shipper.apply(LogControl::SetFilter(limited()));
    shipper.apply(LogControl::SetFilter(FilterConfig::default()));
    assert_eq!(
        shipper.log_unapplied(now, 3_000),
        None,
        "the last one asked none"
    );
    shipper.apply(LogControl::SetFilter(FilterConfig {
        enabled: false,
        ..limited()
    }));
    assert_eq!(shipper.log_unapplied(now, 3_001), None, "logging is off");
    assert_eq!(
        shipper.log(now, &record(Level::Error, 3)),
        Logged::Filtered(Verdict::Disabled)
    );
    shipper.apply(LogControl::Flush);
    assert_eq!(shipper.log_unapplied(now, 3_002), None);
    assert!(shipper.queue().is_empty());
}

static LOGGER: RemoteLogger<[u8; 1024]> = RemoteLogger::new();

fn clock() -> (Instant, u64) {
    (Instant::from_millis(40), 1_700_000_000_040)
}

#[test]
fn the_facade_reports_the_warning_ahead_of_the_next_record() {
    LOGGER.install([0; 1024], LogConfig::default(), 0, clock);
    LOGGER.with(|s| s.apply(LogControl::SetFilter(limited())));
    let log = |level, text: &str| {
        log::Log::log(
            &LOGGER,
            &log::Record::builder()
                .level(level)
                .target("app.pump")
                .args(format_args!("{text}"))
                .build(),
        )
    };
    log(log::Level::Debug, "one");
    log(log::Level::Debug, "two");
    let records = LOGGER
        .with(|s| {
            s.on_connected(clock().0);
            s.apply(LogControl::Flush);
            let mut out = [0u8; 1024];
            let ready = s.poll_batch(clock().0, &mut out).unwrap();
            records_of(&out[..ready.len])
        })
        .unwrap();
    let app = |text: &str| {
        (
            "app.pump".to_string(),
            Level::Debug,
            1_700_000_000_040,
            text.to_string(),
        )
    };
    assert_eq!(
        records,
        [
            (
                UNAPPLIED_TARGET.to_string(),
                Level::Warn,
                1_700_000_000_040,
                UNAPPLIED_MESSAGE.to_string()
            ),
            app("one"),
            app("two"),
        ],
        "one warning, then both debug records (no sampling)"
    );
}
