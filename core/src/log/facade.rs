//! A `log::Log` front end: `log::warn!` and friends on a device (or a host) go into the
//! [`LogShipper`] the connection drains. The logger is a `static`, shared between the code
//! that logs and the code that ships, behind a critical section: no allocation, no lock that
//! an interrupt could deadlock on.
//!
//! ```no_run
//! use sentelite_core::Instant;
//! use sentelite_core::log::{LogConfig, RemoteLogger};
//!
//! /// The board's clock: the session's instant and the record time in milliseconds.
//! fn uptime() -> (Instant, u64) {
//!     (Instant::from_millis(0), 0)
//! }
//!
//! static LOGGER: RemoteLogger<[u8; 4096]> = RemoteLogger::new();
//!
//! LOGGER.install([0; 4096], LogConfig::default(), 0, uptime);
//! log::set_logger(&LOGGER).unwrap();
//! log::set_max_level(log::LevelFilter::Info);
//! log::warn!("pressure high");
//! // The connection task drains it: `LOGGER.with(|shipper| shipper.poll_batch(..))`.
//! ```

use core::cell::RefCell;
use core::fmt::Write;

use critical_section::Mutex;
use heapless::String;

use super::level::Level;
use super::record::NewRecord;
use super::shipper::{LogConfig, LogShipper, Logged};
use crate::time::Instant;

/// Longest message kept; longer ones are cut and end with `…`.
pub const MESSAGE_BYTES: usize = 256;

/// The clock a logger stamps records with: the session's [`Instant`] and the record
/// timestamp in milliseconds (Unix time where the device knows it, else time since boot).
pub type Clock = fn() -> (Instant, u64);

/// A `log::Log` that queues records for the server, and optionally also passes them to a
/// local logger while they cannot be sent (sente-lite's `fallback-to-local`).
///
/// A logger made by [`Self::new`] is all zero bytes, so a `static` one is placed in `.bss`:
/// its queue state and clock arrive with [`Self::install`]. A non-zero initial value would
/// be stored in flash as well as in RAM (744 bytes on a Cortex-M0+).
pub struct RemoteLogger<B: 'static> {
    state: Mutex<RefCell<State<B>>>,
    local: Option<&'static (dyn log::Log + Sync)>,
}

/// The logger before and after [`RemoteLogger::install`]. `repr(u8)` gives it a tag of its
/// own with `Empty` = 0; an `Option` would put `None` in a niche of the shipper (a bool or
/// enum field holding a non-zero value). The logger holds one for its whole life, so the
/// empty variant's size does not matter.
#[repr(u8)]
#[allow(clippy::large_enum_variant)]
enum State<B> {
    Empty = 0,
    Installed {
        shipper: LogShipper<B>,
        clock: Clock,
    } = 1,
}

impl<B: AsRef<[u8]> + AsMut<[u8]> + Send> RemoteLogger<B> {
    /// A logger with no queue yet (records are ignored until [`Self::install`]).
    pub const fn new() -> Self {
        Self {
            state: Mutex::new(RefCell::new(State::Empty)),
            local: None,
        }
    }

    /// The same, also handing records to `local` when they cannot be sent.
    pub const fn with_local(local: &'static (dyn log::Log + Sync)) -> Self {
        Self {
            state: Mutex::new(RefCell::new(State::Empty)),
            local: Some(local),
        }
    }

    /// Gives the logger its queue storage, configuration and clock; `first_seq` is 0 on a
    /// fresh boot.
    pub fn install(&self, storage: B, config: LogConfig, first_seq: u32, clock: Clock) {
        // Built before the critical section, which then only moves it in.
        let installed = State::Installed {
            shipper: LogShipper::new(storage, config, first_seq),
            clock,
        };
        critical_section::with(|cs| {
            // Only busy when called from inside `with`; that install is ignored.
            if let Ok(mut state) = self.state.borrow(cs).try_borrow_mut() {
                *state = installed;
            }
        });
    }

    /// Runs `f` on the shipper (inside a critical section: keep it short). `None` before
    /// [`Self::install`], and when called from inside another `f` (a record logged while
    /// one is being queued, e.g. by a `Display` impl the message formats): that record then
    /// goes to the local logger, as before installation, instead of panicking.
    pub fn with<T>(&self, f: impl FnOnce(&mut LogShipper<B>) -> T) -> Option<T> {
        self.with_clock(|shipper, _| f(shipper))
    }

    /// [`Self::with`], also giving the installed clock.
    fn with_clock<T>(&self, f: impl FnOnce(&mut LogShipper<B>, Clock) -> T) -> Option<T> {
        critical_section::with(|cs| {
            let mut state = self.state.borrow(cs).try_borrow_mut().ok()?;
            match &mut *state {
                State::Installed { shipper, clock } => Some(f(shipper, *clock)),
                State::Empty => None,
            }
        })
    }

    /// Queues a record of any level (fatal and report included, which `log` has no macro
    /// for).
    pub fn log_record(&self, record: &NewRecord<'_>) -> Option<Logged> {
        self.with_clock(|s, clock| s.log(clock().0, record))
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]> + Send> Default for RemoteLogger<B> {
    fn default() -> Self {
        Self::new()
    }
}

/// The sentelite level of a `log` level.
pub fn level_of(level: log::Level) -> Level {
    match level {
        log::Level::Error => Level::Error,
        log::Level::Warn => Level::Warn,
        log::Level::Info => Level::Info,
        log::Level::Debug => Level::Debug,
        log::Level::Trace => Level::Trace,
    }
}

/// Formats `args` into at most [`MESSAGE_BYTES`], marking a cut with `…`.
pub fn format_message(args: &core::fmt::Arguments<'_>) -> String<MESSAGE_BYTES> {
    let mut out = Truncating {
        text: String::new(),
        cut: false,
    };
    let _ = out.write_fmt(*args);
    if !out.cut {
        return out.text;
    }
    // Rebuilt rather than popped char by char: the cut is one prefix, and popping decodes
    // UTF-8 backwards (200 B on a Cortex-M0+).
    const MARK: &str = "…";
    let mut cut = String::new();
    let _ = cut.push_str(crate::text::prefix_within(
        &out.text,
        MESSAGE_BYTES - MARK.len(),
    ));
    let _ = cut.push_str(MARK);
    cut
}

/// Keeps as much of each piece as fits (on a character boundary) and remembers the cut.
struct Truncating {
    text: String<MESSAGE_BYTES>,
    cut: bool,
}

impl Write for Truncating {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = MESSAGE_BYTES - self.text.len();
        let head = crate::text::prefix_within(s, room);
        let _ = self.text.push_str(head);
        if head.len() < s.len() {
            self.cut = true;
            return Err(core::fmt::Error);
        }
        Ok(())
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]> + Send> log::Log for RemoteLogger<B> {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        let level = level_of(metadata.level());
        let remote = self.with(|s| s.wants(level)).unwrap_or(false);
        remote || self.local.is_some_and(|l| l.enabled(metadata))
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = level_of(record.level());
        let mut local_too = false;
        let installed = self.with_clock(|s, clock| {
            let (now, time_ms) = clock();
            // A filter the server set that this build could not fully apply is reported
            // ahead of the next record, with its time.
            #[cfg(not(feature = "log-limits"))]
            let _ = s.log_unapplied(now, time_ms);
            local_too = s.should_log_locally(now);
            if s.wants(level) {
                let message = format_message(record.args());
                let new = NewRecord {
                    time_ms,
                    level,
                    namespace: record.target(),
                    id: None,
                    message: &message,
                    data: &[],
                };
                // Without sampling and rate limits, `wants` was the filter's whole verdict.
                #[cfg(not(feature = "log-limits"))]
                let _ = s.push(now, &new);
                #[cfg(feature = "log-limits")]
                let _ = s.log(now, &new);
            }
        });
        if let Some(local) = self.local
            && (local_too || installed.is_none())
        {
            local.log(record);
        }
    }

    fn flush(&self) {
        if let Some(local) = self.local {
            local.flush();
        }
    }
}
