//! A [`BlobSink`] over a NOR-flash partition.
//!
//! NOR flash only clears bits when written, so every sector must be erased before its
//! first write. Erasing the whole partition up front would stall the device for seconds;
//! the sink erases each sector when the first byte for it arrives instead. A transfer that
//! restarts (from offset 0, or after a reboot from an erase-block boundary) erases again
//! from there, so no byte is ever written over old content.
//!
//! Flash that writes in words (`WRITE_SIZE` > 1, e.g. 4 on the ESP32-C3) gets whole words:
//! the sink holds the last partial word back until the next chunk or the commit.

use embedded_storage::nor_flash::NorFlash;
use sentelite_core::blob::{BlobSink, SinkError};

/// Largest flash write granularity the sink supports.
const MAX_WRITE_SIZE: usize = 32;

/// What makes a fully written, verified image the one that boots next.
pub trait Activation {
    /// Called before a transfer starts: refuse when an update may not be written now
    /// (for example, the running image was not yet confirmed and a rollback is pending).
    fn ready(&mut self) -> Result<(), SinkError>;
    /// The partition holds a verified image of `size` bytes: boot it at the next reset.
    fn activate(&mut self, size: u64) -> Result<(), SinkError>;
}

/// Writes a blob into `flash` (a partition, offset 0 = its first byte) and hands it to an
/// [`Activation`] once its hash matched.
pub struct PartitionSink<F, A> {
    flash: F,
    activation: A,
    /// Size of the transfer in progress.
    size: u64,
    /// Bytes from offset 0 that are on flash (a multiple of the write size).
    on_flash: u64,
    /// Sectors below this offset were erased (or written) for this transfer.
    erased_to: u64,
    /// Bytes after `on_flash` held back until they fill a write word.
    tail: [u8; MAX_WRITE_SIZE],
    tail_len: usize,
    committed: Option<[u8; 32]>,
}

impl<F: NorFlash, A: Activation> PartitionSink<F, A> {
    /// A sink for a fresh transfer into `flash`.
    pub fn new(flash: F, activation: A) -> Self {
        const { assert!(F::WRITE_SIZE <= MAX_WRITE_SIZE && F::ERASE_SIZE > 0) };
        Self {
            flash,
            activation,
            size: 0,
            on_flash: 0,
            erased_to: 0,
            tail: [0; MAX_WRITE_SIZE],
            tail_len: 0,
            committed: None,
        }
    }

    /// A sink after a reboot, for a transfer of `size` bytes whose first `durable` bytes are
    /// on flash: the offset of a saved [`TransferState`](sentelite_core::blob::TransferState),
    /// an erase-block boundary. The fetch resumes there.
    pub fn resuming(flash: F, activation: A, size: u64, durable: u64) -> Self {
        let mut sink = Self::new(flash, activation);
        sink.set_resume_point(size, durable);
        sink
    }

    /// Set this sink up for a transfer of `size` bytes whose first `durable` bytes (rounded
    /// down to an erase block) are on flash, as [`resuming`](Self::resuming) does after a
    /// reboot. Refused like [`begin`](BlobSink::begin) when the blob cannot fit or the
    /// activation is not ready for an update.
    pub fn resume_at(&mut self, size: u64, durable: u64) -> Result<(), SinkError> {
        if size > self.capacity() || durable > size {
            return Err(SinkError::TooLarge);
        }
        self.activation.ready()?;
        self.set_resume_point(size, durable);
        Ok(())
    }

    fn set_resume_point(&mut self, size: u64, durable: u64) {
        let durable = durable - durable % F::ERASE_SIZE as u64;
        self.size = size;
        self.on_flash = durable;
        self.erased_to = durable;
        self.tail_len = 0;
        self.committed = None;
    }

    /// The partition's size in bytes.
    pub fn capacity(&self) -> u64 {
        self.flash.capacity() as u64
    }

    /// The partition, to read back what was written (a resume rebuilds its hash from it).
    pub fn flash_mut(&mut self) -> &mut F {
        &mut self.flash
    }

    /// The activation, e.g. to confirm the running image at boot.
    pub fn activation_mut(&mut self) -> &mut A {
        &mut self.activation
    }

    /// Give the flash and the activation back.
    pub fn into_parts(self) -> (F, A) {
        (self.flash, self.activation)
    }

    fn received(&self) -> u64 {
        if F::WRITE_SIZE == 1 {
            // Nothing is held back on byte-writable flash (`append`).
            return self.on_flash;
        }
        self.on_flash + self.tail_len as u64
    }

    fn erase_through(&mut self, end: u64) -> Result<(), SinkError> {
        let erase = F::ERASE_SIZE as u64;
        while self.erased_to < end {
            let from = offset(self.erased_to)?;
            let to = offset(self.erased_to + erase)?;
            self.flash.erase(from, to).map_err(|_| SinkError::Io)?;
            self.erased_to += erase;
        }
        Ok(())
    }

    // Not inlined: shared by `append` and `commit` (12 B less flash on the Pico W).
    #[inline(never)]
    fn program(&mut self, data: &[u8]) -> Result<(), SinkError> {
        self.flash
            .write(offset(self.on_flash)?, data)
            .map_err(|_| SinkError::Io)?;
        self.on_flash += data.len() as u64;
        Ok(())
    }

    /// Append `data` after what was received: whole words to flash, the rest to the tail.
    fn append(&mut self, mut data: &[u8]) -> Result<(), SinkError> {
        let word = F::WRITE_SIZE;
        let end = self.received() + data.len() as u64;
        if word == 1 {
            // Byte-writable flash (the RP2040's) never holds a tail back: the word handling
            // below is left out of its build.
            self.erase_through(end)?;
            return match data {
                [] => Ok(()),
                _ => self.program(data),
            };
        }
        self.erase_through(end.next_multiple_of(word as u64))?;
        if self.tail_len > 0 {
            let take = (word - self.tail_len).min(data.len());
            self.tail[self.tail_len..self.tail_len + take].copy_from_slice(&data[..take]);
            self.tail_len += take;
            data = &data[take..];
            if self.tail_len == word {
                let tail = self.tail;
                self.program(&tail[..word])?;
                self.tail_len = 0;
            }
        }
        let whole = data.len() - data.len() % word;
        if whole > 0 {
            self.program(&data[..whole])?;
        }
        let rest = &data[whole..];
        self.tail[self.tail_len..self.tail_len + rest.len()].copy_from_slice(rest);
        self.tail_len += rest.len();
        Ok(())
    }
}

/// A partition offset as the flash API takes it.
fn offset(at: u64) -> Result<u32, SinkError> {
    u32::try_from(at).map_err(|_| SinkError::TooLarge)
}

impl<F: NorFlash, A: Activation> BlobSink for PartitionSink<F, A> {
    fn erase_block(&self) -> u32 {
        F::ERASE_SIZE as u32
    }

    fn contains(&mut self, sha256: &[u8; 32]) -> bool {
        self.committed.as_ref() == Some(sha256)
    }

    fn begin(&mut self, size: u64) -> Result<(), SinkError> {
        if size > self.capacity() {
            return Err(SinkError::TooLarge);
        }
        self.activation.ready()?;
        self.size = size;
        self.on_flash = 0;
        self.erased_to = 0;
        self.tail_len = 0;
        self.committed = None;
        Ok(())
    }

    fn write_at(&mut self, at: u64, data: &[u8]) -> Result<(), SinkError> {
        if self.committed.is_some() {
            return Err(SinkError::Refused);
        }
        if at != self.received() {
            // A restart: only at an erase-block boundary already reached, and everything
            // from there is erased again before it is written.
            if at > self.received() || !at.is_multiple_of(F::ERASE_SIZE as u64) {
                return Err(SinkError::Refused);
            }
            self.on_flash = at;
            self.erased_to = at;
            self.tail_len = 0;
        }
        if at + data.len() as u64 > self.size {
            return Err(SinkError::TooLarge);
        }
        self.append(data)
    }

    fn durable(&self) -> u64 {
        self.on_flash
    }

    fn commit(&mut self, sha256: &[u8; 32]) -> Result<(), SinkError> {
        if self.received() != self.size {
            return Err(SinkError::Refused);
        }
        if F::WRITE_SIZE > 1 && self.tail_len > 0 {
            // Pad the last word with the erased value, which leaves those bytes untouched.
            let mut word = [0xff; MAX_WRITE_SIZE];
            word[..self.tail_len].copy_from_slice(&self.tail[..self.tail_len]);
            self.program(&word[..F::WRITE_SIZE])?;
            self.tail_len = 0;
        }
        self.activation.activate(self.size)?;
        self.committed = Some(*sha256);
        Ok(())
    }

    fn abort(&mut self) {
        self.on_flash = 0;
        self.tail_len = 0;
        self.committed = None;
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::sinks::test_flash::{Activations, RamFlash};
    use sentelite_core::blob::{Fetch, FetchPlan};

    fn sink<const W: usize>(sectors: usize) -> PartitionSink<RamFlash<W>, Activations> {
        PartitionSink::new(RamFlash::new(sectors), Activations::default())
    }

    fn image(len: usize) -> std::vec::Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn odd_chunks_land_word_aligned_and_commit_activates() {
        let data = image(10_003);
        let mut s = sink::<4>(4);
        s.begin(data.len() as u64).unwrap();
        let mut at = 0;
        for chunk in data.chunks(333) {
            s.write_at(at, chunk).unwrap();
            at += chunk.len() as u64;
            assert_eq!(s.durable() % 4, 0);
        }
        s.commit(&[1; 32]).unwrap();
        assert_eq!(&s.flash.bytes()[..data.len()], &data[..]);
        assert_eq!(s.activation.activated, Some(data.len() as u64));
        assert!(s.contains(&[1; 32]));
    }

    #[test]
    fn byte_flash_holds_nothing_back() {
        let data = image(10_003);
        let mut s = sink::<1>(3);
        s.begin(data.len() as u64).unwrap();
        let mut at = 0;
        for chunk in data.chunks(333).chain([&[][..]]) {
            s.write_at(at, chunk).unwrap();
            at += chunk.len() as u64;
            assert_eq!(s.durable(), at);
        }
        assert_eq!(s.flash.erases, 3);
        s.commit(&[3; 32]).unwrap();
        assert_eq!(&s.flash.bytes()[..data.len()], &data[..]);
        assert_eq!(s.activation.activated, Some(data.len() as u64));
    }

    #[test]
    fn restart_from_zero_erases_again_before_writing() {
        let data = image(5000);
        let mut s = sink::<1>(2);
        s.begin(5000).unwrap();
        s.write_at(0, &[0u8; 3000]).unwrap();
        // The same transfer restarts at 0 (say the ETag changed) with other bytes: they
        // must land as sent, not ANDed with the zeros already on flash.
        s.write_at(0, &data).unwrap();
        s.commit(&[2; 32]).unwrap();
        assert_eq!(&s.flash.bytes()[..5000], &data[..]);
    }

    #[test]
    fn rejects_writes_that_skip_or_restart_off_a_sector() {
        let mut s = sink::<1>(2);
        s.begin(8192).unwrap();
        s.write_at(0, &[1; 5000]).unwrap();
        assert_eq!(s.write_at(6000, &[1]), Err(SinkError::Refused));
        assert_eq!(s.write_at(100, &[1]), Err(SinkError::Refused));
        assert_eq!(s.write_at(5000, &[1; 4000]), Err(SinkError::TooLarge));
        assert_eq!(s.commit(&[0; 32]), Err(SinkError::Refused));
        assert_eq!(s.activation.activated, None);
    }

    #[test]
    fn too_large_or_not_ready_never_starts() {
        let mut s = sink::<1>(1);
        assert_eq!(s.begin(4097), Err(SinkError::TooLarge));
        s.activation.refuse = true;
        assert_eq!(s.begin(10), Err(SinkError::Refused));
    }

    #[test]
    fn a_fetch_writes_the_blob_through_the_sink() {
        use sentelite_core::blob::{Action, ResponseHead};
        use sentelite_core::time::Instant;
        use sha2::{Digest, Sha256};
        let data = image(9000);
        let sha: [u8; 32] = Sha256::digest(&data).into();
        let plan: FetchPlan<2, 64> =
            FetchPlan::new("http://h/blob", data.len() as u64, sha).unwrap();
        let mut s = sink::<4>(3);
        let now = Instant::from_micros(0);
        let mut fetch = Fetch::new(now, plan, &mut s);
        let mut fed = false;
        loop {
            match fetch.poll_action(now, &mut s) {
                Action::Request(_) if !fed => {
                    fed = true;
                    fetch
                        .on_response(
                            now,
                            ResponseHead {
                                status: 200,
                                range_start: None,
                                total: Some(data.len() as u64),
                                etag: None,
                            },
                        )
                        .unwrap();
                    for chunk in data.chunks(1000) {
                        fetch.on_body(now, chunk, &mut s).unwrap();
                    }
                    fetch.on_body_end(now, &mut s);
                }
                Action::Finished(_) => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(s.contains(&sha));
        assert_eq!(&s.flash.bytes()[..9000], &data[..]);
    }
}
