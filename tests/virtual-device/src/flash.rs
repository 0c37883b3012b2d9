//! A NOR flash for the virtual board that behaves like a board's and survives the process:
//! 4 KiB erase blocks, 4-byte writes that only clear bits, every change written through to a
//! file when the board was given one. A restarted virtual device finds its firmware
//! partition and resume record as a rebooted board would.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::Path;

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

/// Erase block, as on the RP2040's and ESP32-C3's flash.
pub const ERASE: usize = 4096;

/// One flash region: its bytes, and the file they are kept in (if any).
pub struct FileFlash {
    bytes: Vec<u8>,
    file: Option<File>,
}

impl FileFlash {
    /// `len` bytes (rounded up to an erase block), erased; kept only in memory.
    pub fn in_memory(len: usize) -> Self {
        Self {
            bytes: vec![0xff; len.next_multiple_of(ERASE)],
            file: None,
        }
    }

    /// `len` bytes (rounded up to an erase block) kept in `path`: what an earlier run left
    /// there is read back, a missing or shorter file is extended with erased bytes.
    pub fn open(path: &Path, len: usize) -> io::Result<Self> {
        let len = len.next_multiple_of(ERASE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut bytes = vec![0xff; len];
        let have = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
        let kept = have.min(len);
        file.read_exact_at(&mut bytes[..kept], 0)?;
        if kept < len {
            file.write_all_at(&bytes[kept..], kept as u64)?;
        }
        Ok(Self {
            bytes,
            file: Some(file),
        })
    }

    /// Bytes `0..len`, as stored.
    pub fn contents(&self, len: usize) -> &[u8] {
        &self.bytes[..len.min(self.bytes.len())]
    }

    fn persist(&self, from: usize, to: usize) -> Result<(), FlashError> {
        match &self.file {
            Some(file) => file
                .write_all_at(&self.bytes[from..to], from as u64)
                .map_err(|_| FlashError(NorFlashErrorKind::Other)),
            None => Ok(()),
        }
    }

    fn range(&self, offset: u32, len: usize) -> Result<(usize, usize), FlashError> {
        let from = offset as usize;
        let to = from
            .checked_add(len)
            .filter(|&to| to <= self.bytes.len())
            .ok_or(FlashError(NorFlashErrorKind::OutOfBounds))?;
        Ok((from, to))
    }
}

/// A misuse of the flash (unaligned, out of bounds) or a failed file write.
#[derive(Debug)]
pub struct FlashError(NorFlashErrorKind);

impl NorFlashError for FlashError {
    fn kind(&self) -> NorFlashErrorKind {
        self.0
    }
}

impl ErrorType for FileFlash {
    type Error = FlashError;
}

impl ReadNorFlash for FileFlash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        let (from, to) = self.range(offset, bytes.len())?;
        bytes.copy_from_slice(&self.bytes[from..to]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.bytes.len()
    }
}

impl NorFlash for FileFlash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = ERASE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        if !(from as usize).is_multiple_of(ERASE) || !(to as usize).is_multiple_of(ERASE) {
            return Err(FlashError(NorFlashErrorKind::NotAligned));
        }
        let (from, to) = self.range(from, to.saturating_sub(from) as usize)?;
        self.bytes[from..to].fill(0xff);
        self.persist(from, to)
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        if !(offset as usize).is_multiple_of(Self::WRITE_SIZE)
            || !bytes.len().is_multiple_of(Self::WRITE_SIZE)
        {
            return Err(FlashError(NorFlashErrorKind::NotAligned));
        }
        let (from, to) = self.range(offset, bytes.len())?;
        for (stored, new) in self.bytes[from..to].iter_mut().zip(bytes) {
            *stored &= *new;
        }
        self.persist(from, to)
    }
}
