//! Any bytes as the payload of a blob directive from the server (fetch kinds and upload):
//! decoding answers with a directive or a typed error, never a panic, and whatever decodes
//! re-encodes to a payload that decodes to the same directive.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentelite_core::blob::directive::{
    Directive, FETCH_AND_DISPLAY, FETCH_AND_EVAL, FETCH_AND_PROCESS, FETCH_AND_RENDER,
    UploadDirective,
};

/// The event ids a directive may arrive under, plus one no handler has.
const EVENTS: [&str; 5] = [
    FETCH_AND_PROCESS,
    FETCH_AND_EVAL,
    FETCH_AND_DISPLAY,
    FETCH_AND_RENDER,
    "blob/fetch-and-juggle",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, payload)) = data.split_first() else {
        return;
    };
    let event = EVENTS[usize::from(pick) % EVENTS.len()];
    // Room for every borrowed string twice over plus the keys: a re-encode never lacks it.
    let mut buf = vec![0u8; payload.len() * 2 + 512];
    if let Ok(directive) = Directive::decode(event, payload) {
        assert_ne!(
            event, EVENTS[4],
            "a directive decoded under an unknown event id"
        );
        let n = directive
            .encode(&mut buf)
            .expect("a decoded directive re-encodes");
        let again = Directive::decode(event, &buf[..n]).expect("a re-encoded directive decodes");
        assert_eq!(
            again, directive,
            "fetch directive changed on the round trip"
        );
    }
    if let Ok(upload) = UploadDirective::decode(payload) {
        let n = upload
            .encode(&mut buf)
            .expect("a decoded upload directive re-encodes");
        let again = UploadDirective::decode(&buf[..n]).expect("a re-encoded upload decodes");
        assert_eq!(again, upload, "upload directive changed on the round trip");
    }
});
