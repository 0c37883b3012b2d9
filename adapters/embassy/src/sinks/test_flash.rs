//! A RAM NOR flash for the sink tests: 4 KiB sectors, `W`-byte writes, and NOR's rule that a
//! write only clears bits, so a missing erase shows up as corrupted data.

extern crate std;

use crate::sinks::partition::Activation;
use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use sentelite_core::blob::SinkError;
use std::vec::Vec;

pub(crate) struct RamFlash<const W: usize> {
    bytes: Vec<u8>,
    pub(crate) erases: usize,
}

impl<const W: usize> RamFlash<W> {
    pub(crate) fn new(sectors: usize) -> Self {
        Self {
            bytes: std::vec![0x5a; sectors * 4096],
            erases: 0,
        }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

#[derive(Debug)]
pub(crate) struct Misuse(NorFlashErrorKind);

impl NorFlashError for Misuse {
    fn kind(&self) -> NorFlashErrorKind {
        self.0
    }
}

impl<const W: usize> ErrorType for RamFlash<W> {
    type Error = Misuse;
}

impl<const W: usize> ReadNorFlash for RamFlash<W> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Misuse> {
        let at = offset as usize;
        let src = self
            .bytes
            .get(at..at + bytes.len())
            .ok_or(Misuse(NorFlashErrorKind::OutOfBounds))?;
        bytes.copy_from_slice(src);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.bytes.len()
    }
}

impl<const W: usize> NorFlash for RamFlash<W> {
    const WRITE_SIZE: usize = W;
    const ERASE_SIZE: usize = 4096;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Misuse> {
        let (from, to) = (from as usize, to as usize);
        if !from.is_multiple_of(4096) || !to.is_multiple_of(4096) {
            return Err(Misuse(NorFlashErrorKind::NotAligned));
        }
        self.bytes
            .get_mut(from..to)
            .ok_or(Misuse(NorFlashErrorKind::OutOfBounds))?
            .fill(0xff);
        self.erases += 1;
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Misuse> {
        let at = offset as usize;
        if !at.is_multiple_of(W) || !bytes.len().is_multiple_of(W) {
            return Err(Misuse(NorFlashErrorKind::NotAligned));
        }
        let dst = self
            .bytes
            .get_mut(at..at + bytes.len())
            .ok_or(Misuse(NorFlashErrorKind::OutOfBounds))?;
        for (d, s) in dst.iter_mut().zip(bytes) {
            *d &= *s;
        }
        Ok(())
    }
}

/// Records what the sink asked of its activation.
#[derive(Default)]
pub(crate) struct Activations {
    pub(crate) activated: Option<u64>,
    pub(crate) refuse: bool,
}

impl Activation for Activations {
    fn ready(&mut self) -> Result<(), SinkError> {
        if self.refuse {
            Err(SinkError::Refused)
        } else {
            Ok(())
        }
    }

    fn activate(&mut self, size: u64) -> Result<(), SinkError> {
        self.activated = Some(size);
        Ok(())
    }
}
