//! Where fetched blobs go. The RAM sink is the core's [`SliceSink`] over a buffer the
//! application owns; flash sinks write a firmware image straight into a partition and keep
//! the record that lets an interrupted download resume after a reboot. Each flash part sits
//! behind a cargo feature, so a board pulls in only its own.
//!
//! | module | job | feature |
//! |---|---|---|
//! | `partition` | a [`BlobSink`] over any NOR-flash partition: erases each sector on first touch, resumes on an erase block | `flash-sink` |
//! | `resume` | keeps a transfer's resume point in a flash sector; rebuilds the SHA-256 state by re-reading the partition; `ResumingSink` pairs it with a `PartitionSink` as a [`ResumableSink`] | `flash-sink` |
//! | `embassy_boot` | commit = embassy-boot's `mark_updated` (RP2040 and other embassy-boot targets) | `embassy-boot` |
//!
//! The ESP32-C3's commit (esp-bootloader-esp-idf `OtaUpdater`: select the next OTA slot)
//! lives in `firmware-examples/esp32-c3`, because that crate only builds for an Espressif
//! chip; it plugs into `partition::PartitionSink` through the same `partition::Activation`
//! trait.
//!
//! [`SliceSink`]: sentelite_core::blob::SliceSink

pub use sentelite_core::blob::SliceSink as RamSink;

use sentelite_core::blob::{BlobSink, SinkError, TransferState};

/// A sink that can keep the resume point of an interrupted transfer across a reboot.
/// [`blob::serve`](crate::blob) restores it when a directive arrives, saves it as the
/// transfer makes durable progress and forgets it when the transfer ends; the core's
/// [`Fetch::resume`](sentelite_core::blob::Fetch::resume) decides whether a restored point
/// fits the directive. The defaults keep nothing, which is right for memory: nothing in it
/// survives a reboot.
pub trait ResumableSink: BlobSink {
    /// The saved point of a transfer of `size` bytes with this `sha256`, its hash state
    /// rebuilt from what the sink holds, with the sink set to continue from it; `None` when
    /// nothing usable is saved.
    fn restore(&mut self, size: u64, sha256: &[u8; 32]) -> Option<TransferState> {
        let _ = (size, sha256);
        None
    }

    /// Keep `state` (replacing any earlier one).
    fn save(&mut self, state: &TransferState) -> Result<(), SinkError> {
        let _ = state;
        Ok(())
    }

    /// Drop the saved point (the transfer ended, either way).
    fn forget(&mut self) {}
}

impl ResumableSink for RamSink<'_> {}

#[cfg(feature = "embassy-boot")]
pub mod embassy_boot;
#[cfg(feature = "flash-sink")]
pub mod partition;
#[cfg(feature = "flash-sink")]
pub mod resume;
#[cfg(all(test, feature = "flash-sink"))]
mod test_flash;

#[cfg(feature = "flash-sink")]
pub use partition::{Activation, PartitionSink};
#[cfg(feature = "flash-sink")]
pub use resume::{ResumeStore, ResumingSink};
