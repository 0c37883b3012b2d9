//! Blob sinks that write a fetched firmware image straight into a flash partition, and the
//! record that lets an interrupted download resume after a reboot.
//!
//! | module | job | feature |
//! |---|---|---|
//! | [`partition`] | a [`BlobSink`](sentelite_core::blob::BlobSink) over any NOR-flash partition: erases each sector on first touch, resumes on an erase block | `flash-sink` |
//! | [`resume`] | keeps a transfer's resume point in a flash sector; rebuilds the SHA-256 state by re-reading the partition | `flash-sink` |
//! | [`embassy_boot`] | commit = embassy-boot's `mark_updated` (RP2040 and other embassy-boot targets) | `embassy-boot` |
//!
//! The ESP32-C3's commit (esp-bootloader-esp-idf `OtaUpdater`: select the next OTA slot)
//! lives in `firmware-examples/esp32-c3`, because that crate only builds for an Espressif
//! chip; it plugs into [`partition::PartitionSink`] through the same [`partition::Activation`]
//! trait.
//!
//! The crate root declares this module as `#[cfg(feature = "flash-sink")] pub mod sinks;`.

#[cfg(feature = "embassy-boot")]
pub mod embassy_boot;
pub mod partition;
pub mod resume;
#[cfg(test)]
mod test_flash;

pub use partition::{Activation, PartitionSink};
pub use resume::ResumeStore;
