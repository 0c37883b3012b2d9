//! COBS framing for byte-stream links (UART, USB serial), where there are no message
//! boundaries. Each frame is COBS-encoded and followed by one `0x00` byte.
//!
//! [`CobsAccumulator`] takes input in whatever pieces the link delivers and reports how many
//! bytes it used, so the caller keeps the rest for the next call. A partial frame is normal
//! input, not an error.

use crate::codec::{EncodeError, encoded_len};
use crate::frame::{Frame, PROTOCOL_VERSION};

/// Encodes `frame` as one COBS packet including the trailing `0x00`.
pub fn encode_cobs(frame: &Frame<'_>, buf: &mut [u8]) -> Result<usize, EncodeError> {
    match postcard::to_slice_cobs(&(PROTOCOL_VERSION, frame), buf) {
        Ok(out) => Ok(out.len()),
        Err(_) => {
            let raw = encoded_len(frame);
            // COBS adds one byte per 254 plus the leading code byte and the terminator.
            Err(EncodeError::BufferTooSmall {
                required: raw + raw / 254 + 2,
            })
        }
    }
}

/// What one call to [`CobsAccumulator::feed`] produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Feed<'a> {
    /// All input was used and no packet is complete yet.
    Consumed,
    /// A complete packet: `frame` holds its decoded bytes (pass them to
    /// [`crate::codec::decode`]); `consumed` input bytes were used, feed the rest again.
    Frame {
        /// The decoded frame bytes, borrowed from the accumulator.
        frame: &'a [u8],
        /// Input bytes used, including the terminating zero.
        consumed: usize,
    },
    /// A packet ended but was unusable; it was discarded and the accumulator resynchronised.
    Error {
        /// What was wrong.
        error: FeedError,
        /// Input bytes used, including the terminating zero.
        consumed: usize,
    },
}

/// Why a COBS packet was discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FeedError {
    /// The packet was longer than the accumulator's capacity.
    OverFull,
    /// The bytes were not valid COBS.
    Malformed,
}

/// Collects COBS packets from a byte stream into a fixed buffer of `N` bytes.
pub struct CobsAccumulator<const N: usize> {
    buf: [u8; N],
    len: usize,
    overflowed: bool,
}

impl<const N: usize> Default for CobsAccumulator<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> CobsAccumulator<N> {
    /// An empty accumulator.
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
            overflowed: false,
        }
    }

    /// Bytes of an unfinished packet held so far.
    pub fn pending(&self) -> usize {
        self.len
    }

    /// Drops any partial packet (for example after the link was reset).
    pub fn reset(&mut self) {
        self.len = 0;
        self.overflowed = false;
    }

    /// Feeds input; call again with `&input[consumed..]` while it returns a packet or error.
    /// Empty packets (repeated zeros, used by senders to resynchronise) are skipped.
    pub fn feed<'s>(&'s mut self, input: &[u8]) -> Feed<'s> {
        let mut start = 0;
        loop {
            let rest = &input[start..];
            let Some(zero) = rest.iter().position(|&b| b == 0) else {
                self.append(rest);
                return Feed::Consumed;
            };
            self.append(&rest[..zero]);
            let consumed = start + zero + 1;
            if self.overflowed {
                self.reset();
                return Feed::Error {
                    error: FeedError::OverFull,
                    consumed,
                };
            }
            if self.len == 0 {
                start = consumed;
                continue;
            }
            let len = self.len;
            self.len = 0;
            return match cobs::decode_in_place(&mut self.buf[..len]) {
                Ok(n) => Feed::Frame {
                    frame: &self.buf[..n],
                    consumed,
                },
                Err(_) => Feed::Error {
                    error: FeedError::Malformed,
                    consumed,
                },
            };
        }
    }

    fn append(&mut self, bytes: &[u8]) {
        if self.overflowed {
            return;
        }
        match self.buf.get_mut(self.len..self.len + bytes.len()) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.len += bytes.len();
            }
            None => self.overflowed = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode;
    use crate::frame::{Event, Payload, Ping};

    #[test]
    fn frames_split_across_reads_are_reassembled() {
        let frame = Frame::Event(Event {
            event: "telemetry/log-msg",
            payload: Payload::Bytes(&[0, 1, 0, 2]),
        });
        let mut wire = [0u8; 64];
        let n = encode_cobs(&frame, &mut wire).unwrap();
        let mut acc = CobsAccumulator::<64>::new();
        assert_eq!(acc.feed(&wire[..5]), Feed::Consumed);
        match acc.feed(&wire[5..n]) {
            Feed::Frame {
                frame: bytes,
                consumed,
            } => {
                assert_eq!(consumed, n - 5);
                assert_eq!(decode(bytes).unwrap(), frame);
            }
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    #[test]
    fn two_frames_in_one_read_report_consumed_bytes() {
        let mut wire = [0u8; 32];
        let a = encode_cobs(&Frame::Ping(Ping { nonce: 1 }), &mut wire).unwrap();
        let b = encode_cobs(&Frame::Pong(Ping { nonce: 2 }), &mut wire[a..]).unwrap();
        let mut acc = CobsAccumulator::<16>::new();
        let Feed::Frame { consumed, .. } = acc.feed(&wire[..a + b]) else {
            panic!("first frame missing")
        };
        assert_eq!(consumed, a);
        let Feed::Frame { frame, consumed } = acc.feed(&wire[a..a + b]) else {
            panic!("second frame missing")
        };
        assert_eq!(consumed, b);
        assert_eq!(decode(frame).unwrap(), Frame::Pong(Ping { nonce: 2 }));
    }

    #[test]
    fn oversize_packet_is_dropped_and_the_next_one_still_decodes() {
        let mut acc = CobsAccumulator::<4>::new();
        let garbage = [5u8; 10];
        assert_eq!(acc.feed(&garbage), Feed::Consumed);
        assert_eq!(
            acc.feed(&[0]),
            Feed::Error {
                error: FeedError::OverFull,
                consumed: 1
            }
        );
        let mut wire = [0u8; 8];
        let n = encode_cobs(&Frame::Ping(Ping { nonce: 3 }), &mut wire).unwrap();
        assert!(matches!(acc.feed(&wire[..n]), Feed::Frame { .. }));
    }
}
