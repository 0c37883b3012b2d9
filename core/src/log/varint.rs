//! The LEB128 varint both log writers (the queue's entries and the wire batch) put lengths
//! and numbers in: seven bits per byte, low bits first, the high bit set on every byte but
//! the last.

/// A writer of single bytes that can therefore write varints.
pub(super) trait ByteSink {
    /// Appends one byte (each writer decides what a byte past its room means).
    fn byte(&mut self, b: u8);

    /// Appends `n` as a varint.
    fn varint(&mut self, mut n: u64) {
        loop {
            let low = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                self.byte(low);
                return;
            }
            self.byte(low | 0x80);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ByteSink;

    impl ByteSink for heapless::Vec<u8, 16> {
        fn byte(&mut self, b: u8) {
            self.push(b).unwrap();
        }
    }

    #[test]
    fn varints_are_seven_bits_per_byte_low_first() {
        for (n, bytes) in [
            (0u64, &[0x00][..]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (300, &[0xac, 0x02]),
            (
                u64::MAX,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ] {
            let mut out = heapless::Vec::<u8, 16>::new();
            out.varint(n);
            assert_eq!(out.as_slice(), bytes, "{n}");
        }
    }
}
