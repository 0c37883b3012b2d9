//! Where an interrupted download stood, kept in one flash sector so it survives a reboot.
//!
//! Only the position is trusted from the record: the SHA-256 state for the bytes already in
//! the partition is rebuilt by reading them back, so the hash the transfer finally checks
//! covers what is really on flash, not what was once received.

use super::ResumableSink;
use super::partition::{Activation, PartitionSink};
use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};
use sentelite_core::blob::{BlobSink, SinkError, TRANSFER_STATE_MAX_ENCODED, TransferState};
use sha2::digest::common::hazmat::SerializableState;
use sha2::{Digest, Sha256};

/// Marks a sector holding a record; anything else (erased flash, another layout) is no record.
const MAGIC: [u8; 4] = *b"SLR1";
/// Magic, a little-endian u16 length, then the postcard-encoded state.
const HEADER: usize = MAGIC.len() + 2;
/// The record rounded up for any write size up to 32 bytes.
const RECORD_MAX: usize = (HEADER + TRANSFER_STATE_MAX_ENCODED).next_multiple_of(32);

/// A flash sector (any NOR flash region of at least one erase block) holding at most one
/// [`TransferState`].
pub struct ResumeStore<S> {
    sector: S,
}

impl<S: NorFlash> ResumeStore<S> {
    /// A store over `sector`.
    pub fn new(sector: S) -> Self {
        const { assert!(S::WRITE_SIZE <= 32 && 32 % S::WRITE_SIZE == 0) };
        Self { sector }
    }

    /// Replace the record with `state` (call it after progress, e.g. every 64 KiB).
    pub fn save(&mut self, state: &TransferState) -> Result<(), SinkError> {
        let mut record = [0xff; RECORD_MAX];
        let body = postcard::to_slice(state, &mut record[HEADER..])
            .map_err(|_| SinkError::Io)?
            .len();
        record[..MAGIC.len()].copy_from_slice(&MAGIC);
        record[MAGIC.len()..HEADER].copy_from_slice(&(body as u16).to_le_bytes());
        let used = (HEADER + body).next_multiple_of(S::WRITE_SIZE);
        self.clear()?;
        self.sector
            .write(0, &record[..used])
            .map_err(|_| SinkError::Io)
    }

    /// Forget the record (after the transfer ended either way).
    pub fn clear(&mut self) -> Result<(), SinkError> {
        self.sector
            .erase(0, S::ERASE_SIZE as u32)
            .map_err(|_| SinkError::Io)
    }

    /// The saved state with its SHA-256 state rebuilt from the first `offset` bytes of
    /// `partition`; `None` when no readable record is stored or the partition cannot be read.
    pub fn load<P: ReadNorFlash>(&mut self, partition: &mut P) -> Option<TransferState> {
        let mut state = self.read()?;
        rehash(partition, &mut state).ok()?;
        Some(state)
    }

    /// As [`load`](Self::load), but only for a record of a blob of `size` bytes with this
    /// `sha256`: a record of another blob is not worth re-reading the partition for.
    pub fn load_matching<P: ReadNorFlash>(
        &mut self,
        partition: &mut P,
        size: u64,
        sha256: &[u8; 32],
    ) -> Option<TransferState> {
        let mut state = self.read()?;
        if state.size != size || &state.sha256 != sha256 {
            return None;
        }
        rehash(partition, &mut state).ok()?;
        Some(state)
    }

    /// The stored record as saved, its hash state untrusted.
    fn read(&mut self) -> Option<TransferState> {
        let mut record = [0u8; RECORD_MAX];
        let len = RECORD_MAX.min(self.sector.capacity());
        self.sector.read(0, &mut record[..len]).ok()?;
        if record[..MAGIC.len()] != MAGIC {
            return None;
        }
        let body = usize::from(u16::from_le_bytes([record[4], record[5]]));
        postcard::from_bytes(record.get(HEADER..HEADER + body)?).ok()
    }
}

/// A [`PartitionSink`] with a [`ResumeStore`]: the sink a board hands to
/// [`blob::serve`](crate::blob) so a download interrupted by a reboot continues where its
/// last saved point was, instead of from the first byte.
pub struct ResumingSink<F, A, R> {
    sink: PartitionSink<F, A>,
    store: ResumeStore<R>,
}

impl<F: NorFlash, A: Activation, R: NorFlash> ResumingSink<F, A, R> {
    /// `sink` writes the blobs; `store` keeps the resume point (a sector nothing else uses).
    pub fn new(sink: PartitionSink<F, A>, store: ResumeStore<R>) -> Self {
        Self { sink, store }
    }

    /// The partition sink, e.g. to reach its activation.
    pub fn sink_mut(&mut self) -> &mut PartitionSink<F, A> {
        &mut self.sink
    }

    /// Give the sink and the store back.
    pub fn into_parts(self) -> (PartitionSink<F, A>, ResumeStore<R>) {
        (self.sink, self.store)
    }
}

impl<F: NorFlash, A: Activation, R: NorFlash> BlobSink for ResumingSink<F, A, R> {
    fn erase_block(&self) -> u32 {
        self.sink.erase_block()
    }

    fn contains(&mut self, sha256: &[u8; 32]) -> bool {
        self.sink.contains(sha256)
    }

    fn begin(&mut self, size: u64) -> Result<(), SinkError> {
        self.sink.begin(size)
    }

    fn write_at(&mut self, at: u64, data: &[u8]) -> Result<(), SinkError> {
        self.sink.write_at(at, data)
    }

    fn durable(&self) -> u64 {
        self.sink.durable()
    }

    fn commit(&mut self, sha256: &[u8; 32]) -> Result<(), SinkError> {
        self.sink.commit(sha256)
    }

    fn abort(&mut self) {
        self.sink.abort()
    }
}

impl<F: NorFlash, A: Activation, R: NorFlash> ResumableSink for ResumingSink<F, A, R> {
    // Not inlined into `blob::serve`'s poll code (see `blob::prepare`).
    #[inline(never)]
    fn restore(&mut self, size: u64, sha256: &[u8; 32]) -> Option<TransferState> {
        let state = self
            .store
            .load_matching(self.sink.flash_mut(), size, sha256)?;
        self.sink.resume_at(size, state.offset).ok()?;
        Some(state)
    }

    fn save(&mut self, state: &TransferState) -> Result<(), SinkError> {
        self.store.save(state)
    }

    fn forget(&mut self) {
        // An erase that fails leaves a record the next directive checks against its own
        // blob and the partition's bytes, so a stale one cannot commit wrong data.
        let _ = self.store.clear();
    }
}

/// Set `state.hash_state` to the SHA-256 state after hashing bytes `0..state.offset` of
/// `partition`.
pub fn rehash<P: ReadNorFlash>(
    partition: &mut P,
    state: &mut TransferState,
) -> Result<(), SinkError> {
    let mut hasher = Sha256::new();
    let mut buf = [0u8; 256];
    let end = u32::try_from(state.offset).map_err(|_| SinkError::TooLarge)?;
    let mut at = 0u32;
    while at < end {
        let n = (end - at).min(buf.len() as u32);
        // Reads cover whole READ_SIZE units: the offset is an erase-block boundary.
        let chunk = &mut buf[..n as usize];
        partition.read(at, chunk).map_err(|_| SinkError::Io)?;
        hasher.update(&chunk[..]);
        at += n;
    }
    state.hash_state.clear();
    state
        .hash_state
        .extend_from_slice(hasher.serialize().as_slice())
        .map_err(|_| SinkError::Io)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::sinks::partition::PartitionSink;
    use crate::sinks::test_flash::{Activations, RamFlash};
    use sentelite_core::blob::{Action, End, Fetch, FetchPlan, ResponseHead};
    use sentelite_core::time::Instant;
    use std::vec::Vec;

    type Plan = FetchPlan<2, 64>;

    fn image(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 13 + i / 509) as u8).collect()
    }

    /// Feed the request the fetch asks for from `data`, at most `limit` body bytes, then
    /// cut or end the body.
    fn serve(
        fetch: &mut Fetch<2, 64>,
        sink: &mut impl sentelite_core::blob::BlobSink,
        data: &[u8],
        limit: usize,
    ) -> Option<End> {
        let now = Instant::from_micros(0);
        let start = match fetch.poll_action(now, sink) {
            Action::Request(req) => req.start,
            Action::Finished(end) => return Some(*end),
            Action::Wait(_) => panic!("the fetch waits"),
        };
        let from = start as usize;
        fetch
            .on_response(
                now,
                ResponseHead {
                    status: if from == 0 { 200 } else { 206 },
                    range_start: (from > 0).then_some(start),
                    total: Some(data.len() as u64),
                    etag: None,
                },
            )
            .unwrap();
        let body = &data[from..from.saturating_add(limit).min(data.len())];
        for chunk in body.chunks(700) {
            fetch.on_body(now, chunk, sink).unwrap();
        }
        if from + body.len() < data.len() {
            fetch.on_error(now, sentelite_core::blob::TransportError::Cut);
            None
        } else {
            fetch.on_body_end(now, sink);
            match fetch.poll_action(now, sink) {
                Action::Finished(end) => Some(*end),
                _ => None,
            }
        }
    }

    /// Download part of an image, "reboot" (drop everything but the two flashes), resume
    /// from the store and finish; `tamper` runs on the partition in between.
    fn interrupted(tamper: impl FnOnce(&mut RamFlash<4>)) -> (End, RamFlash<4>) {
        use sha2::Digest;
        let data = image(20_000);
        let sha: [u8; 32] = Sha256::digest(&data).into();
        let plan = || Plan::new("http://h/fw", data.len() as u64, sha).unwrap();
        let mut store = ResumeStore::new(RamFlash::<4>::new(1));
        let now = Instant::from_micros(0);

        let mut sink = PartitionSink::new(RamFlash::<4>::new(6), Activations::default());
        let mut fetch = Fetch::new(now, plan(), &mut sink);
        assert!(serve(&mut fetch, &mut sink, &data, 11_000).is_none());
        let mut saved = fetch.state();
        assert_eq!(
            saved.offset, 8192,
            "checkpoint on the last erase block written"
        );
        // What is restored must not matter: the hash state is rebuilt from flash.
        saved.hash_state.clear();
        store.save(&saved).unwrap();
        let (mut partition, _) = sink.into_parts();

        tamper(&mut partition);
        let state = store.load(&mut partition).expect("a record was saved");
        assert_eq!(state.offset, 8192);
        let mut sink =
            PartitionSink::resuming(partition, Activations::default(), state.size, state.offset);
        let mut fetch = Fetch::resume(now, plan(), &state, &mut sink);
        let end = serve(&mut fetch, &mut sink, &data, usize::MAX).expect("the fetch ends");
        store.clear().unwrap();
        assert!(store.load(sink.flash_mut()).is_none());
        (end, sink.into_parts().0)
    }

    #[test]
    fn resumes_after_a_reboot_with_the_hash_rebuilt_from_flash() {
        let (end, partition) = interrupted(|_| {});
        assert!(matches!(end, End::Completed { .. }), "{end:?}");
        assert_eq!(&partition.bytes()[..20_000], &image(20_000)[..]);
    }

    #[test]
    fn a_partition_changed_across_the_reboot_fails_the_hash() {
        let (end, _) = interrupted(|flash| {
            flash.erase(4096, 8192).unwrap();
        });
        assert!(matches!(end, End::Failed { .. }), "{end:?}");
    }

    #[test]
    fn a_resuming_sink_restores_only_its_own_blob_and_forgets() {
        use sha2::Digest;
        let data = image(20_000);
        let sha: [u8; 32] = Sha256::digest(&data).into();
        let plan = || Plan::new("http://h/fw", data.len() as u64, sha).unwrap();
        let now = Instant::from_micros(0);
        let mut sink = ResumingSink::new(
            PartitionSink::new(RamFlash::<4>::new(6), Activations::default()),
            ResumeStore::new(RamFlash::<4>::new(1)),
        );
        let mut fetch = Fetch::new(now, plan(), &mut sink);
        assert!(serve(&mut fetch, &mut sink, &data, 13_000).is_none());
        sink.save(&fetch.state()).unwrap();
        // A reboot: only the two flashes survive.
        let (partition, store) = sink.into_parts();
        let (flash, _) = partition.into_parts();
        let mut sink = ResumingSink::new(PartitionSink::new(flash, Activations::default()), store);
        assert!(sink.restore(20_000, &[9; 32]).is_none(), "another blob");
        assert!(sink.restore(19_999, &sha).is_none(), "another size");
        let state = sink.restore(20_000, &sha).expect("its own blob");
        assert_eq!((state.offset, sink.durable()), (12_288, 12_288));
        let mut fetch = Fetch::resume(now, plan(), &state, &mut sink);
        let end = serve(&mut fetch, &mut sink, &data, usize::MAX).expect("the fetch ends");
        assert!(matches!(end, End::Completed { downloaded, .. } if downloaded == 13_000 + 7_712));
        sink.forget();
        assert!(sink.restore(20_000, &sha).is_none(), "forgotten");
    }

    #[test]
    fn erased_or_foreign_sector_holds_no_record() {
        let mut store = ResumeStore::new(RamFlash::<1>::new(1));
        let mut partition = RamFlash::<1>::new(1);
        assert!(store.load(&mut partition).is_none());
        store.clear().unwrap();
        assert!(store.load(&mut partition).is_none());
    }
}
