//! Cutting text to a byte limit without splitting a character.

/// The longest prefix of `text` that is at most `max` bytes and ends on a character
/// boundary.
///
/// `get` rather than indexing: `text[..end]` would link the str-slicing panic and its
/// `core::fmt` into every firmware (1.9 KB on a Cortex-M0+), and pushing `char` by `char`
/// links UTF-8 decoding and encoding. `get(..0)` always succeeds, so the loop ends.
pub(crate) fn prefix_within(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    loop {
        match text.get(..end) {
            Some(head) => return head,
            None => end -= 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_within;

    #[test]
    fn cuts_on_a_character_boundary_at_or_below_the_limit() {
        assert_eq!(prefix_within("abc", 5), "abc");
        assert_eq!(prefix_within("abc", 2), "ab");
        assert_eq!(prefix_within("abc", 0), "");
        // 'é' is two bytes, '€' three: a limit inside one keeps the text before it.
        assert_eq!(prefix_within("aé", 2), "a");
        assert_eq!(prefix_within("aé", 3), "aé");
        assert_eq!(prefix_within("€€", 5), "€");
        assert_eq!(prefix_within("€", 2), "");
    }
}
