//! Static memory of the core for a typical configuration.
//!
//! Everything the core needs lives inside these values (no heap), so their sizes are the whole
//! RAM cost of a connection. Run with `--nocapture` to see the numbers; the bounds are
//! generous on purpose, so only real growth trips them.

use core::mem::size_of;

use sentelite_core::cobs::CobsAccumulator;
use sentelite_core::correlate::Pending;
use sentelite_core::{ClientSession, Endpoint, ServerSession};

/// (name, measured size, upper bound in bytes)
fn sizes() -> [(&'static str, usize, usize); 5] {
    [
        (
            "ClientSession<16,8>",
            size_of::<ClientSession<16, 8>>(),
            2560,
        ),
        ("ServerSession<16>", size_of::<ServerSession<16>>(), 1536),
        ("Pending<16>", size_of::<Pending<16>>(), 768),
        (
            "CobsAccumulator<1024>",
            size_of::<CobsAccumulator<1024>>(),
            1024 + 64,
        ),
        ("Endpoint<16>", size_of::<Endpoint<16>>(), 1536),
    ]
}

#[test]
fn static_memory_stays_within_budget() {
    for (name, size, bound) in sizes() {
        println!("size_of {name} = {size} bytes (bound {bound})");
    }
    for (name, size, bound) in sizes() {
        assert!(size <= bound, "{name} grew to {size} bytes (bound {bound})");
    }
}

#[test]
fn sessions_grow_with_their_tables_not_beyond() {
    // The request table is the part that scales with P; a session must not carry a second
    // copy of it or anything else proportional to P.
    let per_request = size_of::<Pending<17>>() - size_of::<Pending<16>>();
    let client_step = size_of::<ClientSession<17, 8>>() - size_of::<ClientSession<16, 8>>();
    let server_step = size_of::<ServerSession<17>>() - size_of::<ServerSession<16>>();
    println!("size_of one more pending request = {per_request} bytes");
    assert!(client_step <= per_request + 8);
    assert!(server_step <= per_request + 8);
    assert!(
        per_request <= 40,
        "a request slot costs {per_request} bytes"
    );
}
