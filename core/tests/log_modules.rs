//! The remote-logging pieces checked exactly from outside the crate: the filter's token
//! bucket (its cap, and fractions of a token kept between calls), level sets, the batch
//! decoder's varint bound and error texts, and the shipper's settings, counters and its
//! silence while offline. These are what mutation testing showed the module and property
//! tests could not pin down (see docs/TESTING.md).

use sentelite_core::log::{
    BatchError, FilterConfig, Level, LevelSet, LogConfig, LogControl, LogShipper, NewRecord,
    decode_batch,
};
#[cfg(feature = "log-limits")]
use sentelite_core::log::{LogFilter, Rate, Verdict};
use sentelite_core::{Duration, Instant};

#[cfg(feature = "log-limits")]
fn kept(filter: &mut LogFilter, now: Instant, level: Level, tries: usize) -> usize {
    (0..tries)
        .filter(|_| filter.admit(now, level) == Verdict::Keep)
        .count()
}

#[cfg(feature = "log-limits")]
#[test]
fn the_filter_reports_the_settings_it_was_given() {
    let mut config = FilterConfig {
        enabled: true,
        levels: LevelSet::of(&[Level::Debug, Level::Report]),
        ..FilterConfig::default()
    };
    config.sample_every[Level::Debug.index()] = 7;
    config.rate[Level::Report.index()] = Some(Rate {
        per_second: 2,
        burst: 9,
    });
    let mut filter = LogFilter::new(config);
    assert_eq!(filter.config(), config);
    let off = FilterConfig {
        enabled: false,
        ..config
    };
    filter.set_config(off);
    assert_eq!(filter.config(), off);
}

#[cfg(feature = "log-limits")]
#[test]
fn a_long_idle_bucket_holds_at_most_its_burst() {
    let mut config = FilterConfig::default();
    config.rate[Level::Warn.index()] = Some(Rate {
        per_second: 10,
        burst: 3,
    });
    let mut filter = LogFilter::new(config);
    let t0 = Instant::from_millis(1_000);
    assert_eq!(kept(&mut filter, t0, Level::Warn, 10), 3, "the first burst");
    // An hour of silence earns far more than three tokens; the bucket keeps three.
    let later = t0 + Duration::from_secs(3600);
    assert_eq!(kept(&mut filter, later, Level::Warn, 10), 3);
}

#[cfg(feature = "log-limits")]
#[test]
fn frequent_calls_still_earn_tokens_at_the_configured_rate() {
    // One token a second, asked every half millisecond: each call alone earns less than a
    // thousandth of a token, so the time since the last refill must carry over.
    let mut config = FilterConfig::default();
    config.rate[Level::Error.index()] = Some(Rate {
        per_second: 1,
        burst: 1,
    });
    let mut filter = LogFilter::new(config);
    let t0 = Instant::from_millis(0);
    assert_eq!(filter.admit(t0, Level::Error), Verdict::Keep);
    let mut kept_at = Vec::new();
    for step in 1..=4_100u64 {
        let now = t0 + Duration::from_micros(step * 500);
        if filter.admit(now, Level::Error) == Verdict::Keep {
            kept_at.push(step * 500 / 1000);
        }
    }
    assert_eq!(kept_at, [1000, 2000], "one record a second, in ms since t0");
}

#[test]
fn adding_a_level_already_in_a_set_keeps_it() {
    let set = LevelSet::of(&[Level::Warn]);
    assert!(set.with(Level::Warn).contains(Level::Warn));
    assert_eq!(set.with(Level::Warn), set);
    let both = set.with(Level::Error).with(Level::Error);
    assert_eq!(both, LevelSet::WARN_AND_ERROR);
}

#[test]
fn batch_errors_say_what_was_wrong() {
    assert_eq!(
        BatchError::Version(9).to_string(),
        "unknown log batch version 9"
    );
    assert_eq!(BatchError::Truncated.to_string(), "log batch ends early");
    assert_eq!(BatchError::Malformed.to_string(), "malformed log batch");
    assert_eq!(
        BatchError::TableTooLarge.to_string(),
        "log batch string table too large"
    );
}

#[test]
fn a_ten_byte_varint_may_carry_only_the_top_bit_of_a_u64() {
    // version, flags, count 0, first_seq 0, first_time as ten varint bytes, no strings.
    let batch = |last: u8| {
        let mut bytes = vec![1, 0, 0, 0];
        bytes.extend([0xff; 9]);
        bytes.extend([last, 0]);
        bytes
    };
    // u64::MAX needs exactly one bit in the tenth byte.
    assert!(decode_batch(&batch(0x01)).is_ok());
    // Anything more would not fit in 64 bits.
    assert_eq!(
        decode_batch(&batch(0x02)).unwrap_err(),
        BatchError::Malformed
    );
    assert_eq!(
        decode_batch(&batch(0x7f)).unwrap_err(),
        BatchError::Malformed
    );
}

#[test]
fn the_shipper_reports_its_settings_with_the_servers_filter() {
    let config = LogConfig {
        batch_size: 7,
        batch_timeout: Duration::from_millis(1234),
        fallback_to_local: false,
        ..LogConfig::default()
    };
    let mut shipper = LogShipper::new([0u8; 256], config, 0);
    assert_eq!(shipper.config(), config);
    let filter = FilterConfig {
        levels: LevelSet::ALL,
        ..FilterConfig::default()
    };
    shipper.apply(LogControl::SetFilter(filter));
    assert_eq!(shipper.config(), LogConfig { filter, ..config });
}

fn warn_record(time_ms: u64) -> NewRecord<'static> {
    NewRecord {
        time_ms,
        level: Level::Warn,
        namespace: "app",
        id: None,
        message: "tick",
        data: &[],
    }
}

#[cfg(feature = "log-limits")]
#[test]
fn the_shipper_counts_what_it_queued_and_what_its_filter_held_back() {
    let mut config = LogConfig::default();
    config.filter.sample_every[Level::Warn.index()] = 2;
    let mut shipper = LogShipper::new([0u8; 512], config, 0);
    assert!(shipper.wants(Level::Warn));
    assert!(!shipper.wants(Level::Debug), "debug is off by default");
    for t in 0..4 {
        shipper.log(Instant::from_millis(t), &warn_record(t));
    }
    assert_eq!(shipper.queue_stats().queued, 2);
    assert_eq!(shipper.filter_stats().sampled[Level::Warn.index()], 2);
}

#[test]
fn nothing_is_due_and_no_timer_runs_while_offline() {
    let config = LogConfig {
        batch_size: 2,
        ..LogConfig::default()
    };
    let mut shipper = LogShipper::new([0u8; 1024], config, 0);
    let mut out = [0u8; 256];
    for t in 0..4 {
        shipper.log(Instant::from_millis(t), &warn_record(t));
    }
    // More than a batch, and long past the batch timeout, but no connection.
    let late = Instant::from_millis(60_000);
    assert!(!shipper.batch_due(late));
    assert_eq!(shipper.poll_timeout(), None);
    assert_eq!(shipper.poll_batch(late, &mut out), None);
    shipper.on_connected(late);
    assert!(shipper.batch_due(late));
}

#[test]
fn a_flush_with_nothing_queued_is_not_a_batch() {
    let mut shipper = LogShipper::new([0u8; 512], LogConfig::default(), 0);
    shipper.on_connected(Instant::ZERO);
    shipper.apply(LogControl::Flush);
    assert!(!shipper.batch_due(Instant::ZERO));
    assert_eq!(shipper.poll_timeout(), None);
}
