//! The part of a transfer that must survive a reboot: where it stands, against which source
//! and ETag, and the SHA-256 state at exactly that offset, so a resumed transfer hashes only
//! the bytes it fetches again instead of re-reading storage.

use heapless::{String, Vec};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sha2::digest::common::hazmat::SerializableState;
use sha2::digest::typenum::Unsigned;

/// Longest ETag kept for `If-Range`; longer ones are not used.
pub const ETAG_MAX: usize = 96;

/// Bytes of a serialised SHA-256 state (sha2's own stable form).
pub const HASH_STATE_LEN: usize = <Sha256 as SerializableState>::SerializedStateSize::USIZE;

/// An upper bound on the postcard encoding of a [`TransferState`], for sizing buffers.
pub const TRANSFER_STATE_MAX_ENCODED: usize =
    5 + 1 + 1 + ETAG_MAX + 3 * 10 + 32 + 1 + HASH_STATE_LEN;

/// A resumable snapshot of a transfer, from [`Fetch::state`](super::Fetch::state).
/// Serde-encodable (postcard: at most [`TRANSFER_STATE_MAX_ENCODED`] bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferState {
    /// Index of the source being fetched from.
    pub source: u32,
    /// That source's ETag, for `If-Range`.
    pub etag: Option<String<ETAG_MAX>>,
    /// Bytes from 0 held durably and hashed into `hash_state`.
    pub offset: u64,
    /// The blob's size, to check the state belongs to the plan.
    pub size: u64,
    /// The blob's SHA-256, to check the state belongs to the plan.
    pub sha256: [u8; 32],
    /// Body bytes downloaded so far, across resumes.
    pub downloaded: u64,
    /// sha2's serialised SHA-256 state after hashing bytes `0..offset`.
    pub hash_state: Vec<u8, HASH_STATE_LEN>,
}

/// Serialise a hasher into the state's form.
pub(crate) fn save_hasher(hasher: &Sha256) -> Vec<u8, HASH_STATE_LEN> {
    let bytes: [u8; HASH_STATE_LEN] = hasher.serialize().into();
    Vec::from_array(bytes)
}

/// Rebuild a hasher; `None` when the bytes are not a state sha2 accepts.
pub(crate) fn load_hasher(bytes: &[u8]) -> Option<Sha256> {
    let state = bytes.try_into().ok()?;
    Sha256::deserialize(state).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    #[test]
    fn hasher_round_trips_mid_block() {
        let data = [7u8; 200];
        let mut h = Sha256::new();
        h.update(&data[..77]);
        let saved = save_hasher(&h);
        assert_eq!(saved.len(), HASH_STATE_LEN);
        let mut back = load_hasher(&saved).unwrap();
        back.update(&data[77..]);
        assert_eq!(back.finalize(), Sha256::digest(data));
        assert!(load_hasher(&saved[1..]).is_none());
    }

    #[test]
    fn largest_state_fits_the_announced_bound() {
        let full = TransferState {
            source: u32::MAX,
            etag: Some(String::try_from("e".repeat(ETAG_MAX).as_str()).unwrap()),
            offset: u64::MAX,
            size: u64::MAX,
            sha256: [0xff; 32],
            downloaded: u64::MAX,
            hash_state: save_hasher(&Sha256::new()),
        };
        let mut buf = [0u8; 512];
        let used = postcard::to_slice(&full, &mut buf).unwrap().len();
        assert_eq!(used, TRANSFER_STATE_MAX_ENCODED);
        assert_eq!(HASH_STATE_LEN, 104);
        assert_eq!(TRANSFER_STATE_MAX_ENCODED, 270);
    }
}
