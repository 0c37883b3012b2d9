//! The LEB128 varint both log writers (the queue's entries and the wire batch) put lengths
//! and numbers in: seven bits per byte, low bits first, the high bit set on every byte but
//! the last; and the one [`Writer`] both write with.

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

/// Writes into a caller buffer from the front. Each write that fits is made; one that does
/// not is left out and remembered, and so are all after it (they start further on), while
/// the position keeps counting: it ends at the size the whole would have needed.
pub(super) struct Writer<'b> {
    buf: &'b mut [u8],
    at: usize,
    overflow: bool,
}

impl ByteSink for Writer<'_> {
    fn byte(&mut self, b: u8) {
        self.raw(&[b]);
    }
}

impl<'b> Writer<'b> {
    pub fn new(buf: &'b mut [u8]) -> Self {
        Self {
            buf,
            at: 0,
            overflow: false,
        }
    }

    /// Appends `b` as it is.
    pub fn raw(&mut self, b: &[u8]) {
        match self
            .buf
            .get_mut(self.at..)
            .and_then(|rest| rest.get_mut(..b.len()))
        {
            // Byte by byte: `copy_from_slice` would keep a length check (and its panic) that
            // `get_mut(..b.len())` already made.
            Some(dst) => dst.iter_mut().zip(b).for_each(|(d, s)| *d = *s),
            None => self.overflow = true,
        }
        self.at += b.len();
    }

    /// Appends `b` after its length as a varint.
    pub fn field(&mut self, b: &[u8]) {
        self.varint(b.len() as u64);
        self.raw(b);
    }

    /// The length written, or `Err` with the length the buffer would have needed.
    pub fn finish(self) -> Result<usize, usize> {
        if self.overflow {
            Err(self.at)
        } else {
            Ok(self.at)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ByteSink, Writer};

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

    #[test]
    fn the_writer_writes_what_fits_and_counts_the_rest() {
        let mut buf = [0u8; 8];
        let mut w = Writer::new(&mut buf);
        w.byte(1);
        w.field(b"abc");
        w.varint(300);
        assert_eq!(w.finish(), Ok(7));
        assert_eq!(&buf[..7], &[1, 3, b'a', b'b', b'c', 0xac, 0x02]);
        let mut short = [0u8; 4];
        let mut w = Writer::new(&mut short);
        w.field(b"abcdef");
        w.byte(9);
        assert_eq!(w.finish(), Err(8), "the size the whole needs");
        assert_eq!(
            short,
            [6, 0, 0, 0],
            "the field did not fit, nor anything after it"
        );
    }
}
