//! The WebSocket client masks every frame it sends (RFC 6455 §5.3) and picks a handshake
//! key; neither is a secret against an on-path attacker on a plain `ws://` link, so a seeded
//! xorshift is enough, and a board without a hardware RNG can still connect.

/// xorshift64* seeded from the client's configuration.
pub(crate) struct MaskRng(u64);

impl MaskRng {
    pub(crate) fn new(seed: u64) -> Self {
        // Zero is xorshift's one fixed point.
        Self(seed | 1)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Fills `dest` with the next draws.
    pub(crate) fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            for (b, drawn) in chunk.iter_mut().zip(self.next_u64().to_le_bytes()) {
                *b = drawn;
            }
        }
    }
}

/// The 16 bytes of a handshake key (RFC 6455 §4.1), different from the masks drawn from the
/// same `seed`.
pub(crate) fn nonce(seed: u64) -> [u8; 16] {
    let mut nonce = [0; 16];
    MaskRng::new(seed.rotate_left(32)).fill_bytes(&mut nonce);
    nonce
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mask_is_fresh_and_every_byte_drawn() {
        let mut rng = MaskRng::new(7);
        let (mut a, mut b) = ([0u8; 4], [0u8; 4]);
        rng.fill_bytes(&mut a);
        rng.fill_bytes(&mut b);
        assert_ne!(a, b);
        // A length that is no multiple of 8: the last bytes come from a fresh draw too.
        let mut long = [0u8; 20];
        rng.fill_bytes(&mut long);
        assert!(long[16..].iter().any(|&x| x != 0), "{long:?}");
        assert_ne!(long[..8], long[8..16]);
    }

    #[test]
    fn the_nonce_follows_the_seed_and_differs_from_the_masks() {
        assert_ne!(nonce(1), nonce(2));
        assert_eq!(nonce(3), nonce(3));
        let mut mask = [0u8; 16];
        MaskRng::new(3).fill_bytes(&mut mask);
        assert_ne!(nonce(3), mask);
    }
}
