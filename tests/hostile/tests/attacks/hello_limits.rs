//! Hello strings are bounded. A 100 KB `client_id` or `firmware` is closed with
//! `LIMIT_EXCEEDED` instead of getting a registry entry, while strings within
//! `max-client-id-bytes` and `max-firmware-bytes` (default 128) still get in.

use sentelite_core::frame::CloseCode;
use sentelite_hostile_tests::ws::{HelloAnswer, HelloFields, Peer};

use crate::target::Target;

/// Frames large enough that only the Hello string limits can refuse these Hellos.
const CONFIG: &str = "max-frame-bytes = 262144\n";

async fn assert_hello_refused(addr: &str, hello: &HelloFields, what: &str) {
    let (_, answer) = Peer::handshake(addr, hello).await;
    let HelloAnswer::Refused(ending) = answer else {
        panic!("hello with {what} welcomed");
    };
    assert_eq!(
        ending.frame_code,
        Some(CloseCode::LIMIT_EXCEEDED),
        "hello with {what}: {ending:?}"
    );
    assert_eq!(
        ending.websocket_code,
        Some(CloseCode::LIMIT_EXCEEDED.websocket_code()),
        "hello with {what}: {ending:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_hello_strings_get_a_typed_close() {
    let target = Target::start(CONFIG).await;
    let addr = target.addr().to_owned();

    let mut long_id = HelloFields::new(&"i".repeat(100_000));
    long_id.max_frame = 262_144;
    assert_hello_refused(&addr, &long_id, "a 100 KB client_id").await;

    let mut long_firmware = HelloFields::new("firmware-bomb");
    long_firmware.firmware = Some("f".repeat(100_000));
    assert_hello_refused(&addr, &long_firmware, "a 100 KB firmware").await;

    let mut just_fits = HelloFields::new(&"i".repeat(128));
    just_fits.firmware = Some("f".repeat(128));
    let (_peer, answer) = Peer::handshake(&addr, &just_fits).await;
    assert!(
        matches!(answer, HelloAnswer::Welcome { .. }),
        "128-byte strings refused: {answer:?}"
    );
    target.assert_survived("oversize hello strings").await;
}
