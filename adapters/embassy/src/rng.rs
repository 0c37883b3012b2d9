//! The WebSocket client masks every frame it sends (RFC 6455 §5.3) and picks a handshake
//! key; neither is a secret against an on-path attacker on a plain `ws://` link, so a seeded
//! xorshift is enough, and a board without a hardware RNG can still connect.

use rand_core::{RngCore, impls};

/// xorshift64* seeded from the client's configuration.
pub(crate) struct MaskRng(u64);

impl MaskRng {
    pub(crate) fn new(seed: u64) -> Self {
        // Zero is xorshift's one fixed point.
        Self(seed | 1)
    }
}

/// The 16 bytes of a handshake key (RFC 6455 §4.1), different from the masks drawn from the
/// same `seed`.
pub(crate) fn nonce(seed: u64) -> [u8; 16] {
    let mut nonce = [0; 16];
    MaskRng::new(seed.rotate_left(32)).fill_bytes(&mut nonce);
    nonce
}

impl RngCore for MaskRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        impls::fill_bytes_via_next(self, dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
