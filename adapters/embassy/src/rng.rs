//! The WebSocket client masks every frame it sends (RFC 6455 §5.3) and picks a handshake
//! key; neither is a secret against an on-path attacker on a plain `ws://` link, so a seeded
//! xorshift is enough, and a board without a hardware RNG can still connect. A mask is
//! 32 bits, so the generator is a 32-bit one: one draw per frame, shifts and XORs only
//! (a 64-bit multiply is a library call on a Cortex-M0+).

/// xorshift32 (Marsaglia's 13, 17, 5) seeded from the client's configuration.
pub(crate) struct MaskRng(u32);

impl MaskRng {
    pub(crate) fn new(seed: u64) -> Self {
        // Both halves of the seed count; zero is xorshift's one fixed point.
        Self((seed ^ (seed >> 32)) as u32 | 1)
    }

    /// The next four bytes: one frame's mask.
    #[inline(never)]
    pub(crate) fn next_mask(&mut self) -> [u8; 4] {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x.to_le_bytes()
    }
}

/// The 16 bytes of a handshake key (RFC 6455 §4.1), different from the masks drawn from the
/// same `seed`.
pub(crate) fn nonce(seed: u64) -> [u8; 16] {
    let mut rng = MaskRng::new(seed.rotate_left(16));
    let mut nonce = [0; 16];
    for word in nonce.as_chunks_mut::<4>().0 {
        *word = rng.next_mask();
    }
    nonce
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mask_is_fresh() {
        let mut rng = MaskRng::new(7);
        let masks = [(); 8].map(|()| rng.next_mask());
        for (i, a) in masks.iter().enumerate() {
            assert!(masks[i + 1..].iter().all(|b| a != b), "{masks:?}");
        }
        // A seed of zero (xorshift's fixed point) still draws.
        let mut zero = MaskRng::new(0);
        assert_ne!(zero.next_mask(), zero.next_mask());
    }

    #[test]
    fn both_halves_of_the_seed_count() {
        let first = MaskRng::new(3).next_mask();
        assert_ne!(MaskRng::new(3 | 1 << 40).next_mask(), first);
        assert_ne!(MaskRng::new(3 | 1 << 8).next_mask(), first);
    }

    #[test]
    fn the_nonce_follows_the_seed_and_differs_from_the_masks() {
        assert_ne!(nonce(1), nonce(2));
        assert_eq!(nonce(3), nonce(3));
        let mut rng = MaskRng::new(3);
        let masks = [(); 4].map(|()| rng.next_mask());
        assert_ne!(nonce(3), *masks.as_flattened());
        // Every four bytes a fresh draw.
        let n = nonce(3);
        assert_ne!(n[..4], n[4..8]);
        assert_ne!(n[8..12], n[12..]);
    }
}
