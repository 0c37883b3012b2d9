//! Commit through embassy-boot: once the image in the DFU partition is verified, mark it so
//! the bootloader swaps it into the active partition at the next reset.
//!
//! The sink writes the DFU partition itself (a [`PartitionSink`] over it) and only needs
//! embassy-boot's state partition here; the running image must have called `mark_booted`
//! first, or a rollback is still pending and no update is accepted.

use super::partition::{Activation, PartitionSink};
use embassy_boot::{BlockingFirmwareState, FirmwareUpdaterConfig, State};
use embedded_storage::nor_flash::NorFlash;
use sentelite_core::blob::SinkError;

/// embassy-boot's state partition as an [`Activation`].
pub struct BootActivation<'d, STATE> {
    state: BlockingFirmwareState<'d, STATE>,
}

impl<'d, STATE: NorFlash> BootActivation<'d, STATE> {
    /// `aligned` is embassy-boot's scratch buffer: `STATE::WRITE_SIZE` bytes, aligned as the
    /// flash driver needs.
    pub fn new(state: STATE, aligned: &'d mut [u8]) -> Self {
        Self {
            state: BlockingFirmwareState::new(state, aligned),
        }
    }

    /// Confirm that the running image works, so the bootloader keeps it (and updates may
    /// be written). Call it once the application is known to be healthy.
    pub fn mark_booted(&mut self) -> Result<(), SinkError> {
        self.state.mark_booted().map_err(|_| SinkError::Io)
    }
}

impl<STATE: NorFlash> Activation for BootActivation<'_, STATE> {
    fn ready(&mut self) -> Result<(), SinkError> {
        match self.state.get_state() {
            Ok(State::Boot | State::DfuDetach | State::Revert) => Ok(()),
            Ok(_) => Err(SinkError::Refused),
            Err(_) => Err(SinkError::Io),
        }
    }

    fn activate(&mut self, _size: u64) -> Result<(), SinkError> {
        self.state.mark_updated().map_err(|_| SinkError::Io)
    }
}

/// The DFU partition as a sink that marks the update for the bootloader on commit.
pub type FirmwareSink<'d, DFU, STATE> = PartitionSink<DFU, BootActivation<'d, STATE>>;

/// A sink over the DFU and state partitions of an embassy-boot layout (for example from
/// `FirmwareUpdaterConfig::from_linkerfile_blocking`).
pub fn firmware_sink<'d, DFU: NorFlash, STATE: NorFlash>(
    config: FirmwareUpdaterConfig<DFU, STATE>,
    aligned: &'d mut [u8],
) -> FirmwareSink<'d, DFU, STATE> {
    PartitionSink::new(config.dfu, BootActivation::new(config.state, aligned))
}
