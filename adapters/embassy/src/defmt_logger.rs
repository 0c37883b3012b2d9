//! The defmt front end (feature `defmt-logger`): a `#[defmt::global_logger]` that captures
//! each whole defmt frame (rzCOBS-encoded, as defmt's encoder makes it) and pushes it into
//! the remote log queue, [`crate::logging::LOGGER`], as one record: namespace
//! [`DEFMT_NAMESPACE`], level `info`, empty message, the frame as the record's data. The
//! runner ships it like every other record; the host needs the firmware's ELF (named by
//! the build id in the Hello) to turn the frame back into text. A frame costs a few bytes
//! where the formatted text would cost tens.
//!
//! defmt's `Logger` contract is `unsafe`: between `acquire` and `release` this logger holds
//! a critical section (taken with `critical_section::acquire`, given back in `release`), so
//! nothing else can log meanwhile and the capture buffer has one user. A `defmt` call made
//! while a frame is being captured (from a panic inside the logger, say) is dropped rather
//! than interleaved. A frame larger than [`FRAME_MAX`] is dropped too; the queue counts
//! neither, as it never saw them.
#![allow(unsafe_code)]

use core::cell::UnsafeCell;

use critical_section::RestoreState;
use heapless::Vec;
use sentelite_core::log::{Level, NewRecord};

use crate::logging::{LOGGER, uptime};

/// The namespace of records that carry a defmt frame.
pub const DEFMT_NAMESPACE: &str = "defmt";
/// Largest frame captured; larger ones are dropped.
pub const FRAME_MAX: usize = 128;

/// One frame being captured.
struct Capture {
    encoder: defmt::Encoder,
    frame: Vec<u8, FRAME_MAX>,
    /// The frame outgrew [`FRAME_MAX`]: dropped at `release`.
    overflow: bool,
    /// `acquire` calls not yet released: 1 while capturing, more when nested.
    depth: u32,
    restore: RestoreState,
}

/// The capture state; only touched between `acquire` and `release`, inside the critical
/// section `acquire` took.
struct Cell(UnsafeCell<Capture>);

// SAFETY: every access happens inside the critical section held from `acquire` to
// `release`, so there is never more than one accessor.
unsafe impl Sync for Cell {}

static CAPTURE: Cell = Cell(UnsafeCell::new(Capture {
    encoder: defmt::Encoder::new(),
    frame: Vec::new(),
    overflow: false,
    depth: 0,
    restore: RestoreState::invalid(),
}));

/// The global defmt logger of firmware built with `defmt-logger`.
#[defmt::global_logger]
struct RemoteDefmt;

impl Capture {
    fn push(frame: &mut Vec<u8, FRAME_MAX>, overflow: &mut bool, bytes: &[u8]) {
        if frame.extend_from_slice(bytes).is_err() {
            *overflow = true;
        }
    }
}

// SAFETY: `acquire` takes a critical section that `release` gives back; `write` and `flush`
// are only called in between (defmt's contract), so `CAPTURE` has one user at a time.
unsafe impl defmt::Logger for RemoteDefmt {
    fn acquire() {
        // SAFETY: released in `release` (or right here when nested), in order.
        let restore = unsafe { critical_section::acquire() };
        // SAFETY: inside the critical section just taken.
        let capture = unsafe { &mut *CAPTURE.0.get() };
        capture.depth += 1;
        if capture.depth > 1 {
            // Nested: keep the outer frame intact, ignore this one.
            // SAFETY: the state this very call acquired.
            unsafe { critical_section::release(restore) };
            return;
        }
        capture.restore = restore;
        capture.frame.clear();
        capture.overflow = false;
        let Capture {
            encoder,
            frame,
            overflow,
            ..
        } = capture;
        encoder.start_frame(|bytes| Capture::push(frame, overflow, bytes));
    }

    unsafe fn flush() {}

    unsafe fn release() {
        // SAFETY: `acquire` ran, so the critical section is held (by us, or by the outer
        // `acquire` when nested).
        let capture = unsafe { &mut *CAPTURE.0.get() };
        if capture.depth > 1 {
            capture.depth -= 1;
            return;
        }
        let Capture {
            encoder,
            frame,
            overflow,
            ..
        } = capture;
        encoder.end_frame(|bytes| Capture::push(frame, overflow, bytes));
        if !capture.overflow {
            let (now, time_ms) = uptime();
            let record = NewRecord {
                time_ms,
                level: Level::Info,
                namespace: DEFMT_NAMESPACE,
                id: None,
                message: "",
                data: &capture.frame,
            };
            // Nested inside our critical section: `critical_section::with` allows that.
            let _ = LOGGER.with(|shipper| shipper.log(now, &record));
        }
        capture.depth = 0;
        let restore = capture.restore;
        // SAFETY: the state `acquire` got for this frame, released once.
        unsafe { critical_section::release(restore) };
    }

    unsafe fn write(bytes: &[u8]) {
        // SAFETY: between `acquire` and `release`.
        let capture = unsafe { &mut *CAPTURE.0.get() };
        if capture.depth > 1 {
            return;
        }
        let Capture {
            encoder,
            frame,
            overflow,
            ..
        } = capture;
        encoder.write(bytes, |encoded| Capture::push(frame, overflow, encoded));
    }
}
