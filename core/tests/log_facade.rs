//! The `log` facade front end: `log::warn!` reaches the shipper as a record with the target as
//! namespace and the formatted text (cut at its limit), levels outside the filter cost nothing,
//! and the local logger is used while records cannot be sent.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use sentelite_core::Instant;
use sentelite_core::log::{
    FilterConfig, Level, LevelSet, LogConfig, LogControl, MESSAGE_BYTES, RemoteLogger, decode_batch,
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
static LOGGER: RemoteLogger<Vec<u8>> = RemoteLogger::with_local(clock, &LOCAL);

#[test]
fn log_macros_feed_the_shipper_and_fall_back_to_local_when_offline() {
    LOGGER.install(vec![0; 4096], LogConfig::default(), 0);
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
