//! Firmware updates on the Pico W: a blob directive's image is written into the DFU
//! partition as it arrives, embassy-boot's state is marked once its SHA-256 matched, and
//! the bootloader swaps it in at the next reset (and swaps it back if the new image never
//! confirms itself with [`Ota::mark_booted`]). Every 64 KiB written, where the download
//! stood is saved in the SENTELITE_RESUME sector, so a download cut by a reset continues
//! from there when the server sends the same image again.

use core::cell::RefCell;

use embassy_boot_rp::{AlignedBuffer, FirmwareUpdaterConfig};
use embassy_embedded_hal::flash::partition::BlockingPartition;
use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use sentelite_embassy::sinks::embassy_boot::{BootActivation, firmware_sink};
use sentelite_embassy::sinks::{ResumeStore, ResumingSink};
use static_cell::StaticCell;

use crate::client::Chip;

type Part = BlockingPartition<'static, NoopRawMutex, Chip>;

/// The DFU partition as a sink that marks the update for the bootloader on commit, with
/// its resume record.
pub type Sink = ResumingSink<Part, BootActivation<'static, Part>, Part>;

/// SENTELITE_RESUME of `memory.x` (`__sentelite_resume_start`/`_end`), as an offset from
/// the start of flash: the sector nothing but the resume record uses. Constants rather than
/// the linker symbols, which only `unsafe` code can read.
const RESUME_START: u32 = 0x001E_8000;
const RESUME_LEN: u32 = 4096;

/// The DFU, state and resume partitions of `memory.x`.
pub struct Ota {
    sink: Sink,
}

impl Ota {
    /// Open the partitions on `chip` (call once).
    pub fn open(chip: Chip) -> Self {
        static CHIP: StaticCell<Mutex<NoopRawMutex, RefCell<Chip>>> = StaticCell::new();
        static ALIGNED: StaticCell<AlignedBuffer<1>> = StaticCell::new();
        let chip: &'static _ = CHIP.init(Mutex::new(RefCell::new(chip)));
        let config = FirmwareUpdaterConfig::from_linkerfile_blocking(chip, chip);
        let aligned = &mut ALIGNED.init(AlignedBuffer([0; 1])).0;
        let record = ResumeStore::new(Part::new(chip, RESUME_START, RESUME_LEN));
        Self {
            sink: ResumingSink::new(firmware_sink(config, aligned), record),
        }
    }

    /// Confirm the running image, so the bootloader keeps it and updates are accepted.
    pub fn mark_booted(&mut self) {
        if self.sink.sink_mut().activation_mut().mark_booted().is_err() {
            defmt::error!("could not confirm the running image; updates are refused");
        }
    }

    /// Where fetched images go.
    pub fn sink(&mut self) -> &mut Sink {
        &mut self.sink
    }
}

/// Reset the chip: the bootloader swaps in a marked update.
pub fn reboot() -> ! {
    cortex_m::peripheral::SCB::sys_reset()
}
