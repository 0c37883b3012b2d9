//! The device's log queue: a `static` [`Logger`] behind the `log` facade. `log::info!` and
//! friends format into a bounded record queue over a buffer the application gives once;
//! the [`crate::Runner`] ships it as `telemetry/log-batch` requests and applies the
//! server's `telemetry/log-control` changes (the levels kept) at run time.
//!
//! The facade's own maximum level is set to `Trace`: which records are kept is decided by
//! the queue's filter, which the server can change, so no level is compiled or cut out
//! before it.

use sentelite_core::Instant;
use sentelite_core::log::{LogConfig, RemoteLogger};

/// The logger type the runner drains: a [`RemoteLogger`] over a `'static` byte buffer.
pub type Logger = RemoteLogger<&'static mut [u8]>;

/// The embassy clock as the logger's clock: the session instant and milliseconds since
/// boot (the device knows no wall time; the server stamps arrival too).
pub fn uptime() -> (Instant, u64) {
    let micros = embassy_time::Instant::now().as_micros();
    (Instant::from_micros(micros), micros / 1000)
}

/// A ready logger with no local output. Boards that also want records on a local console
/// declare their own with [`RemoteLogger::with_local`]`(&LOCAL)`. It is all zero bytes until
/// [`install`], so it sits in `.bss` and costs no flash.
pub static LOGGER: Logger = Logger::new();

/// The logger could not become the `log` facade's logger (one was set already).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AlreadySet;

/// Gives `logger` its queue storage, configuration and clock ([`uptime`]) and makes it the `log` facade's
/// logger, with the facade's maximum level at `Trace` (the queue's filter decides).
///
/// Call it once, at start-up, before other tasks log: on targets without atomic
/// compare-and-swap (RP2040, ESP32-C3) the facade is set without synchronisation.
pub fn install(
    logger: &'static Logger,
    storage: &'static mut [u8],
    config: LogConfig,
    first_seq: u32,
) -> Result<(), AlreadySet> {
    logger.install(storage, config, first_seq, uptime);
    set_facade(logger)
}

#[cfg(target_has_atomic = "ptr")]
fn set_facade(logger: &'static Logger) -> Result<(), AlreadySet> {
    log::set_logger(logger).map_err(|_| AlreadySet)?;
    log::set_max_level(log::LevelFilter::Trace);
    Ok(())
}

#[cfg(not(target_has_atomic = "ptr"))]
#[allow(unsafe_code)]
fn set_facade(logger: &'static Logger) -> Result<(), AlreadySet> {
    // SAFETY: `install` is documented to be called once at start-up, before any other task
    // logs or sets a logger; nothing else touches the facade's state concurrently then.
    unsafe {
        log::set_logger_racy(logger).map_err(|_| AlreadySet)?;
        log::set_max_level_racy(log::LevelFilter::Trace);
    }
    Ok(())
}
