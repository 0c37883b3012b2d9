//! Firmware updates on the ESP32-C3: a blob directive's image is written into the OTA slot
//! the device is not running from, and once its SHA-256 matched the OTA data (`otadata` in
//! `partitions.csv`) selects that slot, so the ESP-IDF bootloader starts it at the next reset.
//! Every 64 KiB written, where the download stood is saved in the `sentelite` data
//! partition (one sector), so a download cut by a reset continues from there when the server
//! sends the same image again.

use core::cell::RefCell;

use embassy_embedded_hal::flash::partition::BlockingPartition;
use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use esp_bootloader_esp_idf::ota::OtaImageState;
use esp_bootloader_esp_idf::ota_updater::OtaUpdater;
use esp_bootloader_esp_idf::partitions::{
    Error, PARTITION_TABLE_MAX_LEN, PartitionType, read_partition_table,
};
use esp_hal::peripherals::FLASH;
use esp_println::println;
use esp_storage::FlashStorage;
use sentelite_embassy::core_protocol::blob::SinkError;
use sentelite_embassy::sinks::{Activation, PartitionSink, ResumeStore, ResumingSink};
use static_cell::StaticCell;

type Chip = Mutex<NoopRawMutex, RefCell<FlashStorage<'static>>>;

type Part = BlockingPartition<'static, NoopRawMutex, FlashStorage<'static>>;

/// The next OTA slot as a sink that selects it on commit, with its resume record.
pub type Sink = ResumingSink<Part, SelectSlot, Part>;

/// The label of the data partition holding the resume record (`partitions.csv`).
const RESUME_LABEL: &str = "sentelite";

/// Commit: make the slot just written the one the bootloader starts.
pub struct SelectSlot {
    chip: &'static Chip,
}

impl Activation for SelectSlot {
    fn ready(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn activate(&mut self, _size: u64) -> Result<(), SinkError> {
        self.chip
            .lock(|chip| {
                let mut buf = [0u8; PARTITION_TABLE_MAX_LEN];
                let mut flash = chip.borrow_mut();
                let mut ota = OtaUpdater::new(&mut flash, &mut buf)?;
                ota.activate_next_partition()?;
                ota.set_current_ota_state(OtaImageState::New)
            })
            .map_err(|_| SinkError::Io)
    }
}

/// Open the flash, confirm the running image (so a bootloader built with rollback keeps
/// it) and return a sink over the other OTA slot; `None` when the flash holds no OTA layout
/// or no `sentelite` partition for the resume record.
pub fn open(flash: FLASH<'static>) -> Option<Sink> {
    static CHIP: StaticCell<Chip> = StaticCell::new();
    let chip: &'static Chip = CHIP.init(Mutex::new(RefCell::new(FlashStorage::new(flash))));
    let slot = chip.lock(|chip| next_slot(&mut chip.borrow_mut()));
    match slot {
        Ok(((offset, len), (record_offset, record_len))) => Some(ResumingSink::new(
            PartitionSink::new(
                BlockingPartition::new(chip, offset, len),
                SelectSlot { chip },
            ),
            ResumeStore::new(BlockingPartition::new(chip, record_offset, record_len)),
        )),
        Err(e) => {
            println!("no OTA slot to write updates into: {e:?}");
            None
        }
    }
}

/// Offset and length of the slot an update goes to and of the resume record's partition;
/// marks the running image valid.
fn next_slot(flash: &mut FlashStorage<'static>) -> Result<((u32, u32), (u32, u32)), Error> {
    let mut buf = [0u8; PARTITION_TABLE_MAX_LEN];
    let slot = {
        let mut ota = OtaUpdater::new(flash, &mut buf)?;
        if matches!(
            ota.current_ota_state(),
            Ok(OtaImageState::New | OtaImageState::PendingVerify)
        ) {
            ota.set_current_ota_state(OtaImageState::Valid)?;
        }
        ota.next_partition()?.1
    };
    let table = read_partition_table(flash, &mut buf)?;
    let entry = table
        .find_partition(PartitionType::App(slot))?
        .ok_or(Error::Invalid)?;
    let record = table
        .iter()
        .find(|p| p.label_as_str() == RESUME_LABEL)
        .ok_or(Error::Invalid)?;
    Ok((
        (entry.offset(), entry.len()),
        (record.offset(), record.len()),
    ))
}

/// Reset the chip into the selected slot.
pub fn reboot() -> ! {
    esp_hal::system::software_reset()
}
