//! Any text as one of the short fields read from HTTP headers, URLs and log records: a
//! download's `Content-Range` (core, every adapter), an upload `PUT`'s `Content-Range`
//! (host), a SHA-256 in hex (core and the host's blob ids, which must agree), and a log level
//! name. None may panic, and each value read prints back to text that reads the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentelite_core::blob::{hex, io::parse_content_range};
use sentelite_core::log::Level;
use sentelite_host::blob::BlobId;
use sentelite_host::blob::upload::UploadRange;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    let (start, total) = parse_content_range(text);
    if let Some(start) = start {
        let total_text = total.map_or("*".to_owned(), |t| t.to_string());
        let printed = format!("bytes {start}-{start}/{total_text}");
        assert_eq!(
            parse_content_range(&printed),
            (Some(start), total),
            "{printed:?}"
        );
    }

    match UploadRange::parse(text) {
        Some(UploadRange::Chunk { start, end, total }) => {
            assert!(
                start <= end && end < total,
                "inconsistent range accepted: {text:?}"
            );
            let printed = format!("bytes {start}-{end}/{total}");
            assert_eq!(
                UploadRange::parse(&printed),
                Some(UploadRange::Chunk { start, end, total })
            );
        }
        Some(UploadRange::Query { total }) => {
            assert_eq!(
                UploadRange::parse(&format!("bytes */{total}")),
                Some(UploadRange::Query { total })
            );
        }
        None => {}
    }

    // The device's decoder and the host's blob ids take the same texts as hashes.
    let digest = hex::decode(text);
    let id = BlobId::parse(text);
    assert_eq!(
        digest.is_some(),
        id.is_ok(),
        "core and host disagree on {text:?}"
    );
    if let (Some(digest), Ok(id)) = (digest, id) {
        assert_eq!(id.digest(), digest);
        assert_eq!(hex::encode(&digest).as_str(), id.as_str());
        assert_eq!(id.as_str(), text.to_ascii_lowercase());
    }

    if let Some(level) = Level::from_name(text) {
        assert!(level.name().eq_ignore_ascii_case(text));
    }
});
