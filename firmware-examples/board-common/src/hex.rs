//! Lowercase hex for the ids a board announces (its build id, its client id made of a chip's
//! unique bytes), written digit by digit: `write!` with `{:02x}` into a `heapless::String`
//! linked the string's `fmt::Write` and padding for ids written once at start-up (0.25 KB of
//! the Pico W image).

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Writes `bytes` as lowercase hex, two digits each, into the start of `out`, as many whole
/// bytes as fit; returns the number of digits written.
pub fn write(bytes: &[u8], out: &mut [u8]) -> usize {
    let mut written = 0;
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        if let [high, low] = pair {
            *high = DIGITS[usize::from(byte >> 4)];
            *low = DIGITS[usize::from(byte & 0xf)];
            written += 2;
        }
    }
    written
}

/// `prefix` followed by the hex of `bytes`, in `out`: an id such as `pico-w-e6614103e7452d2f`.
/// Cut to what `out` holds (a prefix longer than `out` leaves it empty).
pub fn prefixed<'a>(prefix: &str, bytes: &[u8], out: &'a mut [u8]) -> &'a str {
    let Some((head, tail)) = out.split_at_mut_checked(prefix.len()) else {
        return "";
    };
    head.copy_from_slice(prefix.as_bytes());
    let len = prefix.len() + write(bytes, tail);
    out.get(..len)
        .and_then(|id| core::str::from_utf8(id).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_become_two_lowercase_digits_each() {
        let mut out = [0u8; 8];
        assert_eq!(write(&[0x00, 0x9f, 0xa0, 0xff], &mut out), 8);
        assert_eq!(&out, b"009fa0ff");
        assert_eq!(
            write(&[0x12, 0x34, 0x56], &mut out[..5]),
            4,
            "whole bytes only"
        );
        assert_eq!(&out[..4], b"1234");
    }

    #[test]
    fn an_id_is_its_prefix_and_the_hex_of_its_bytes() {
        let mut out = [0u8; 23];
        let uid = [0xe6, 0x61, 0x41, 0x03, 0xe7, 0x45, 0x2d, 0x2f];
        assert_eq!(
            prefixed("pico-w-", &uid, &mut out),
            "pico-w-e6614103e7452d2f"
        );
        let mut short = [0u8; 10];
        assert_eq!(prefixed("pico-w-", &uid, &mut short), "pico-w-e6");
        assert_eq!(prefixed("pico-w-", &uid, &mut [0u8; 3]), "");
    }
}
