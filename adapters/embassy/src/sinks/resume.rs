//! Where an interrupted download stood, kept in one flash sector so it survives a reboot.
//!
//! Only the position is trusted from the record: the SHA-256 state for the bytes already in
//! the partition is rebuilt by reading them back, so the hash the transfer finally checks
//! covers what is really on flash, not what was once received.

use super::ResumableSink;
use super::partition::{Activation, PartitionSink};
use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};
use heapless::{String, Vec};
use sentelite_core::blob::{BlobSink, ETAG_MAX, SinkError, TransferState};
use sha2::digest::common::hazmat::SerializableState;
use sha2::{Digest, Sha256};

/// Marks a sector holding a record; anything else (erased flash, another layout, the
/// postcard record of earlier versions, `SLR1`) is no record.
const MAGIC: [u8; 4] = *b"SLR2";
/// The record's fixed part, little-endian: magic, source (u32), offset, size and downloaded
/// (u64 each), the blob's SHA-256, then the ETag's length plus one (0: none) and its bytes.
/// The SHA-256 state is not stored: [`ResumeStore::load`] rebuilds it from the partition.
/// Written field by field rather than by postcard: its serde code for the state's encoding
/// and decoding took 2.6 KB of the Pico W's flash for these seven fields.
const FIXED: usize = MAGIC.len() + 4 + 3 * 8 + 32 + 1;
/// The record rounded up for any write size up to 32 bytes.
const RECORD_MAX: usize = (FIXED + ETAG_MAX).next_multiple_of(32);

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
        let etag = state.etag.as_ref().map_or(&[][..], |etag| etag.as_bytes());
        let mut out = Cursor {
            bytes: &mut record,
            at: 0,
        };
        out.put(&MAGIC);
        out.put(&state.source.to_le_bytes());
        for n in [state.offset, state.size, state.downloaded] {
            out.put(&n.to_le_bytes());
        }
        out.put(&state.sha256);
        out.put(&[state.etag.as_ref().map_or(0, |_| etag.len() as u8 + 1)]);
        out.put(etag);
        let used = out.at.next_multiple_of(S::WRITE_SIZE);
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
        let mut fields = record.get(MAGIC.len()..)?;
        let source = u32::from_le_bytes(take(&mut fields)?);
        let offset = u64::from_le_bytes(take(&mut fields)?);
        let size = u64::from_le_bytes(take(&mut fields)?);
        let downloaded = u64::from_le_bytes(take(&mut fields)?);
        let sha256 = take(&mut fields)?;
        let [etag_len] = take(&mut fields)?;
        let etag = match usize::from(etag_len).checked_sub(1) {
            None => None,
            Some(len) => {
                let text = core::str::from_utf8(fields.get(..len)?).ok()?;
                Some(String::try_from(text).ok()?)
            }
        };
        Some(TransferState {
            source,
            etag,
            offset,
            size,
            sha256,
            downloaded,
            hash_state: Vec::new(),
        })
    }
}

/// The next `N` bytes of `fields`, which then starts after them.
fn take<const N: usize>(fields: &mut &[u8]) -> Option<[u8; N]> {
    let (head, rest) = fields.split_first_chunk::<N>()?;
    *fields = rest;
    Some(*head)
}

/// A record being written; it always fits (`RECORD_MAX` bounds every field).
struct Cursor<'b> {
    bytes: &'b mut [u8],
    at: usize,
}

impl Cursor<'_> {
    fn put(&mut self, data: &[u8]) {
        if let Some(to) = self.bytes.get_mut(self.at..self.at + data.len()) {
            to.copy_from_slice(data);
        }
        self.at += data.len();
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

    /// A state with every field set apart from the others, its ETag `etag`.
    fn state_with(etag: Option<&str>) -> TransferState {
        TransferState {
            source: 0x0102_0304,
            etag: etag.map(|e| heapless::String::try_from(e).unwrap()),
            offset: 0,
            size: 0x1122_3344_5566_7788,
            sha256: core::array::from_fn(|i| i as u8),
            downloaded: u64::MAX - 1,
            hash_state: heapless::Vec::new(),
        }
    }

    #[test]
    fn a_saved_record_reads_back_field_for_field() {
        let longest = "e".repeat(ETAG_MAX);
        for etag in [None, Some(""), Some("\"v1\""), Some(longest.as_str())] {
            let mut store = ResumeStore::new(RamFlash::<4>::new(1));
            let saved = state_with(etag);
            store.save(&saved).unwrap();
            let mut partition = RamFlash::<4>::new(1);
            let loaded = store.load(&mut partition).expect("a record was saved");
            // The hash state is the partition's, rebuilt for offset 0: a fresh hasher's.
            let fresh: [u8; 104] = Sha256::new().serialize().into();
            assert_eq!(loaded.hash_state.as_slice(), &fresh[..]);
            assert_eq!(
                TransferState {
                    hash_state: heapless::Vec::new(),
                    ..loaded
                },
                saved
            );
        }
    }

    #[test]
    fn a_damaged_record_is_no_record() {
        let mut partition = RamFlash::<1>::new(1);
        let saved = |store: &mut ResumeStore<RamFlash<1>>, at: usize, byte: u8| {
            store.save(&state_with(Some("ab"))).unwrap();
            // Flash bits only clear: the byte is rewritten through a copy of the sector.
            let mut record = [0u8; RECORD_MAX];
            store.sector.read(0, &mut record).unwrap();
            record[at] = byte;
            store.clear().unwrap();
            store.sector.write(0, &record).unwrap();
        };
        let mut store = ResumeStore::new(RamFlash::<1>::new(1));
        // The earlier postcard record's magic.
        saved(&mut store, 3, b'1');
        assert!(store.load(&mut partition).is_none());
        // An ETag that is not UTF-8, and one longer than the machine keeps.
        saved(&mut store, FIXED, 0xff);
        assert!(store.load(&mut partition).is_none());
        saved(&mut store, FIXED - 1, ETAG_MAX as u8 + 2);
        assert!(store.load(&mut partition).is_none());
        // The same record unharmed reads.
        saved(&mut store, FIXED, b'a');
        assert_eq!(store.load(&mut partition).unwrap().etag.unwrap(), "ab");
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
