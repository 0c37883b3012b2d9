//! Where fetched blobs go. The RAM sink is the core's [`SliceSink`](sentelite_core::blob::SliceSink) over a buffer the
//! application owns; flash sinks (embassy-boot's `FirmwareUpdater` on RP2040,
//! esp-bootloader-esp-idf's `OtaUpdater` on ESP32-C3) live in modules of their own here,
//! each behind a cargo feature of the same name, so a board pulls in only its own.

pub use sentelite_core::blob::SliceSink as RamSink;
