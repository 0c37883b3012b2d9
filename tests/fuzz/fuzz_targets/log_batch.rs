//! Any bytes into the log batch decoder: it must never panic, and a batch that validates must
//! survive a re-encode → decode round trip with the same gap and records.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentelite_core::log::{Record, decode_batch, encode_batch};

fuzz_target!(|data: &[u8]| {
    let Ok(batch) = decode_batch(data) else {
        return;
    };
    if batch.validate().is_err() {
        // Walking a bad batch must stop at the error, not run on.
        assert!(batch.records().count() <= batch.count);
        return;
    }
    let records: Vec<Record<'_>> = batch.records().map(|r| r.expect("validated")).collect();
    let mut buf = vec![0u8; data.len() * 2 + 64];
    let n = encode_batch(batch.gap.as_ref(), records.iter().copied(), &mut buf)
        .expect("a valid batch re-encodes");
    let again = decode_batch(&buf[..n]).expect("re-encoded batch decodes");
    assert_eq!(again.gap, batch.gap);
    let back: Vec<Record<'_>> = again.records().map(|r| r.expect("re-encoded")).collect();
    assert_eq!(back, records, "round trip changed the records");
});
