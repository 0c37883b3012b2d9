//! Logs a few known defmt messages so the host's decoder has a real table and real
//! locations to read. It never runs: the test reads its ELF and encodes the frames the
//! statements below would send.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering};

/// Read by the log statements, so the optimizer keeps their arguments.
static READING: AtomicU32 = AtomicU32::new(0);

#[defmt::global_logger]
struct Discard;

// SAFETY: the logger keeps no state; every call does nothing.
unsafe impl defmt::Logger for Discard {
    fn acquire() {}
    unsafe fn flush() {}
    unsafe fn release() {}
    unsafe fn write(_bytes: &[u8]) {}
}

defmt::timestamp!("{=u64:us}", READING.load(Ordering::Relaxed) as u64);

/// The entry the linker starts from; every statement is reachable from it.
#[no_mangle]
pub extern "C" fn _start() -> ! {
    defmt::info!("pump started");
    let reading = READING.load(Ordering::Relaxed);
    defmt::warn!("temperature {=u32} C over limit", reading);
    defmt::error!("sensor {=str} failed", if reading > 1 { "a" } else { "b" });
    defmt::debug!("tick {=u8}", reading as u8);
    loop {
        READING.store(reading.wrapping_add(1), Ordering::Relaxed);
    }
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
