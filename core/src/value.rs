//! The self-describing payload form: one CBOR data item (RFC 8949), written with `minicbor`
//! into a caller buffer without allocating.
//!
//! Conventions, so the host can translate to EDN and JSON faithfully:
//! - a keyword (`:level`, `:my.ns/id`) is a text string under tag [`KEYWORD_TAG`] (39,
//!   "identifier" in the IANA CBOR tag registry), without the leading colon;
//! - maps, arrays, text, integers, floats, booleans and null map one-to-one;
//! - byte strings become base64 text in JSON and `#sentelite/bytes "…"` in EDN.

pub use minicbor;

use minicbor::Encoder;
use minicbor::encode::write::Cursor;

/// CBOR tag that marks a text string as a keyword.
pub const KEYWORD_TAG: u64 = 39;

/// A CBOR encoder writing into a fixed buffer.
pub type ValueEncoder<'b> = Encoder<Cursor<&'b mut [u8]>>;

/// Starts encoding a value into `buf`; finish with [`finish`] to get the length.
pub fn encoder(buf: &mut [u8]) -> ValueEncoder<'_> {
    Encoder::new(Cursor::new(buf))
}

/// Writes a keyword (`name` without the colon, e.g. `"level"` or `"my.ns/event"`).
pub fn keyword<'e, 'b>(
    e: &'e mut ValueEncoder<'b>,
    name: &str,
) -> Result<&'e mut ValueEncoder<'b>, minicbor::encode::Error<minicbor::encode::write::EndOfSlice>>
{
    e.tag(minicbor::data::Tag::new(KEYWORD_TAG))?.str(name)
}

/// Number of bytes written so far.
pub fn finish(e: ValueEncoder<'_>) -> usize {
    e.into_writer().position()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_map_encodes_without_allocation() {
        let mut buf = [0u8; 32];
        let mut e = encoder(&mut buf);
        e.map(1).unwrap();
        keyword(&mut e, "level").unwrap();
        keyword(&mut e, "info").unwrap();
        let n = finish(e);
        // a1 (map of 1) d8 27 (tag 39) 65 "level" d8 27 64 "info"
        assert_eq!(
            &buf[..n],
            &[
                0xa1, 0xd8, 0x27, 0x65, b'l', b'e', b'v', b'e', b'l', 0xd8, 0x27, 0x64, b'i', b'n',
                b'f', b'o'
            ]
        );
    }
}
