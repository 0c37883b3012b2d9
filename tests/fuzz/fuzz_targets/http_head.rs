//! Any bytes as the answer to a device's range request, read by the core's response-head
//! reader (`blob::http`). It must never panic, a head it reads must end within the bytes,
//! every shorter cut of it must ask for more, and `httparse` must take the same bytes as a
//! complete head of the same length and status.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentelite_core::blob::http::{HeadError, parse_response};

fuzz_target!(|data: &[u8]| {
    let Ok(response) = parse_response(data) else {
        return;
    };
    assert!(response.head_len <= data.len());
    for cut in [0, response.head_len / 2, response.head_len - 1] {
        assert_eq!(
            parse_response(&data[..cut]).err(),
            Some(HeadError::Incomplete),
            "cut at {cut}"
        );
    }
    // The reader keeps no header slots; httparse gets one for every line there can be.
    let mut slots = vec![httparse::EMPTY_HEADER; data.len() / 2 + 1];
    let mut theirs = httparse::Response::new(&mut slots);
    let status = theirs.parse(data);
    assert_eq!(
        status.ok(),
        Some(httparse::Status::Complete(response.head_len)),
        "httparse disagrees on {:?}",
        String::from_utf8_lossy(data)
    );
    assert_eq!(theirs.code, Some(response.head.status));
});
