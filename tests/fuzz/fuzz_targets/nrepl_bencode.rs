//! Any bytes as an editor's nREPL stream, split at an arbitrary point: the framer hands out
//! whole messages or a typed error, never panics or overflows the stack (nesting is checked
//! before the recursive decoder runs), and every message it decodes survives re-encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentelite_host::nrepl::bencode::{Framer, encode};

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut framer = Framer::new(2048);
    for chunk in [&data[..split], &data[split..]] {
        framer.push(chunk);
        loop {
            match framer.next_message() {
                Ok(Some(message)) => {
                    let mut again = Framer::new(usize::MAX);
                    again.push(&encode(&message));
                    let round = again.next_message().expect("re-encoded message decodes");
                    assert_eq!(round.as_ref(), Some(&message), "round trip changed the message");
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
