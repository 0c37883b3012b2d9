//! The bootloader of the sentelite Pico W firmware (embassy-boot).
//!
//! On every reset it reads the state partition: after the application wrote an update into
//! DFU and marked it, the bootloader swaps DFU and ACTIVE; if the swapped-in image resets
//! again before marking itself booted, the next reset swaps the old image back. Then it
//! jumps to ACTIVE. A watchdog guards the swap so a stuck flash operation resets and resumes.
#![no_std]
#![no_main]

use core::cell::RefCell;

use cortex_m_rt::entry;
use embassy_boot_rp::{BootLoader, BootLoaderConfig, WatchdogFlash};
use embassy_sync::blocking_mutex::Mutex;
use embassy_time::Duration;

/// The Pico W's flash chip (W25Q16JV).
const FLASH_SIZE: usize = 2 * 1024 * 1024;

#[entry]
fn main() -> ! {
    let p = embassy_rp::init(Default::default());
    let flash = WatchdogFlash::<FLASH_SIZE>::start(p.FLASH, p.WATCHDOG, Duration::from_secs(8));
    let flash = Mutex::new(RefCell::new(flash));
    let config = BootLoaderConfig::from_linkerfile_blocking(&flash, &flash, &flash);
    let active = config.active.offset();
    let bootloader: BootLoader = BootLoader::prepare(config);
    // SAFETY: ACTIVE holds an image linked for that address (the application's memory.x
    // puts FLASH there), and nothing of the bootloader is used after the jump.
    #[allow(unsafe_code)]
    unsafe {
        bootloader.load(embassy_rp::flash::FLASH_BASE as u32 + active)
    }
}

/// A fault resets the chip: the bootloader then resumes or reverts an interrupted swap.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
#[unsafe(link_section = ".HardFault.user")]
unsafe extern "C" fn HardFault() {
    cortex_m::peripheral::SCB::sys_reset();
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    cortex_m::peripheral::SCB::sys_reset();
}
