//! The `log` facade front end: `log::warn!` reaches the shipper as a record with the target as
//! namespace and the formatted text (cut at its limit), levels outside the filter cost nothing,
//! and the local logger is used while records cannot be sent.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use sentelite_core::Instant;
use sentelite_core::log::{
    FilterConfig, Level, LevelSet, LogConfig, LogControl, Logged, MESSAGE_BYTES, NewRecord, Pushed,
    RemoteLogger, decode_batch, format_message,
};

static NOW_MS: AtomicU64 = AtomicU64::new(0);

fn clock() -> (Instant, u64) {
    let ms = NOW_MS.load(Ordering::Relaxed);
    (Instant::from_millis(ms), 1_700_000_000_000 + ms)
}

/// A local logger that remembers what it was given.
struct Local(Mutex<Vec<String>>);

impl log::Log for Local {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0.lock().unwrap().push(format!("{}", record.args()));
    }
    fn flush(&self) {}
}

static LOCAL: Local = Local(Mutex::new(Vec::new()));
static LOGGER: RemoteLogger<Vec<u8>> = RemoteLogger::with_local(&LOCAL);

#[test]
fn log_macros_feed_the_shipper_and_fall_back_to_local_when_offline() {
    LOGGER.install(vec![0; 4096], LogConfig::default(), 0, clock);
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(log::LevelFilter::Trace);

    log::info!(target: "app.boot", "not sent: info is below the default levels");
    log::warn!(target: "app.pump", "pressure {} kPa", 312);
    log::error!(target: "app.pump", "{}", "x".repeat(1000));
    assert_eq!(LOGGER.with(|s| s.queue().len()), Some(2));
    // Offline: every record also went to the local logger.
    assert_eq!(LOCAL.0.lock().unwrap().len(), 3);

    NOW_MS.store(10, Ordering::Relaxed);
    LOGGER.with(|s| {
        s.on_connected(Instant::from_millis(10));
        s.apply(LogControl::SetFilter(FilterConfig {
            levels: LevelSet::ALL,
            ..FilterConfig::default()
        }));
    });
    log::debug!(target: "app.net", "online now");
    assert_eq!(LOCAL.0.lock().unwrap().len(), 3, "connected: no local copy");

    let mut out = vec![0u8; 4096];
    let ready = LOGGER
        .with(|s| s.poll_batch(Instant::from_millis(10), &mut out))
        .flatten()
        .expect("records are due after reconnecting");
    let batch = decode_batch(&out[..ready.len]).unwrap();
    let records: Vec<_> = batch.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 3);
    assert_eq!(
        (records[0].level, records[0].namespace, records[0].message),
        (Level::Warn, "app.pump", "pressure 312 kPa")
    );
    assert_eq!(records[0].time_ms, 1_700_000_000_000);
    assert_eq!(
        records[1].message.len(),
        MESSAGE_BYTES,
        "cut to the limit, mark included"
    );
    assert!(records[1].message.ends_with('…'));
    assert_eq!(
        (records[2].level, records[2].message),
        (Level::Debug, "online now")
    );
}

/// A local logger that counts flushes and says yes to every level.
struct Flushes(AtomicU64);

impl log::Log for Flushes {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, _: &log::Record<'_>) {}
    fn flush(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

static FLUSHES: Flushes = Flushes(AtomicU64::new(0));

fn metadata(level: log::Level) -> log::Metadata<'static> {
    log::Metadata::builder().level(level).target("app").build()
}

#[test]
fn a_level_is_enabled_when_the_filter_or_the_local_logger_wants_it() {
    static REMOTE_ONLY: RemoteLogger<Vec<u8>> = RemoteLogger::new();
    static WITH_LOCAL: RemoteLogger<Vec<u8>> = RemoteLogger::with_local(&FLUSHES);
    use log::Log;

    // Not installed yet: nothing to send to.
    assert!(!REMOTE_ONLY.enabled(&metadata(log::Level::Error)));
    REMOTE_ONLY.install(vec![0; 1024], LogConfig::default(), 0, clock);
    // The default filter keeps warnings and errors only.
    assert!(REMOTE_ONLY.enabled(&metadata(log::Level::Warn)));
    assert!(REMOTE_ONLY.enabled(&metadata(log::Level::Error)));
    assert!(!REMOTE_ONLY.enabled(&metadata(log::Level::Info)));

    // A local logger that takes everything enables every level, installed or not.
    assert!(WITH_LOCAL.enabled(&metadata(log::Level::Trace)));
    WITH_LOCAL.install(vec![0; 1024], LogConfig::default(), 0, clock);
    assert!(WITH_LOCAL.enabled(&metadata(log::Level::Debug)));
}

#[test]
fn flush_reaches_the_local_logger() {
    static FLUSHING: RemoteLogger<Vec<u8>> = RemoteLogger::with_local(&FLUSHES);
    use log::Log;
    let before = FLUSHES.0.load(Ordering::Relaxed);
    FLUSHING.flush();
    FLUSHING.flush();
    assert_eq!(FLUSHES.0.load(Ordering::Relaxed), before + 2);
}

#[test]
fn log_record_queues_levels_the_log_crate_has_no_macro_for() {
    static DIRECT: RemoteLogger<Vec<u8>> = RemoteLogger::new();
    let fatal = NewRecord {
        time_ms: 5,
        level: Level::Fatal,
        namespace: "app.power",
        id: Some("app/brownout"),
        message: "supply below 3 V",
        data: &[],
    };
    assert_eq!(DIRECT.log_record(&fatal), None, "no queue before install");
    let mut config = LogConfig::default();
    config.filter.levels = LevelSet::ALL;
    DIRECT.install(vec![0; 1024], config, 40, clock);
    assert_eq!(
        DIRECT.log_record(&fatal),
        Some(Logged::Queued(Pushed::Queued {
            seq: 40,
            evicted: 0
        }))
    );
    assert_eq!(DIRECT.with(|s| s.queue().len()), Some(1));
}

#[test]
fn a_message_cut_across_pieces_keeps_every_piece_up_to_the_limit() {
    // The first piece fits, the second only partly: the cut falls inside the second.
    let a = "a".repeat(200);
    let b = "b".repeat(100);
    let message = format_message(&format_args!("{a}{b}"));
    assert_eq!(message.len(), MESSAGE_BYTES);
    let kept_b = MESSAGE_BYTES - 200 - '…'.len_utf8();
    assert_eq!(message.as_str(), format!("{a}{}…", "b".repeat(kept_b)));
}

#[test]
fn a_message_is_cut_on_a_character_boundary() {
    // 'é' takes two bytes and starts at odd offsets here, so byte 256 falls inside one.
    let text = format!("a{}", "é".repeat(200));
    let message = format_message(&format_args!("{text}"));
    assert_eq!(message.len(), MESSAGE_BYTES);
    assert_eq!(message.as_str(), format!("a{}…", "é".repeat(126)));
    // Short text is kept whole, with no mark.
    assert_eq!(format_message(&format_args!("é{}", 1)).as_str(), "é1");
}

static NESTED_LOCAL: Local = Local(Mutex::new(Vec::new()));
static NESTING: RemoteLogger<Vec<u8>> = RemoteLogger::with_local(&NESTED_LOCAL);

/// A value whose first formatting logs through [`NESTING`] itself (only the first: the local
/// logger formats the outer record again).
struct LogsWhileFormatted;

static NESTED_ONCE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl std::fmt::Display for LogsWhileFormatted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use log::Log;
        if NESTED_ONCE.swap(true, Ordering::Relaxed) {
            return f.write_str("outer");
        }
        NESTING.log(
            &log::Record::builder()
                .level(log::Level::Warn)
                .target("app.inner")
                .args(format_args!("inner"))
                .build(),
        );
        f.write_str("outer")
    }
}

#[test]
fn a_record_logged_while_one_is_queued_goes_to_the_local_logger() {
    use log::Log;
    NESTING.install(vec![0; 1024], LogConfig::default(), 0, clock);
    NESTING.log(
        &log::Record::builder()
            .level(log::Level::Warn)
            .target("app.outer")
            .args(format_args!("{}", LogsWhileFormatted))
            .build(),
    );
    // The outer record is queued; the inner one, logged from inside the queueing, is not
    // (the queue is busy) but reaches the local logger instead of a panic.
    assert_eq!(NESTING.with(|s| s.queue().len()), Some(1));
    let local = NESTED_LOCAL.0.lock().unwrap();
    assert!(local.iter().any(|m| m == "inner"), "{local:?}");
}
