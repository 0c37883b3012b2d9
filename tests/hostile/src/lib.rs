//! Support for attacking the real `sentelite serve` from outside, as a hostile peer would:
//! raw TCP and HTTP probes, a hand-driven WebSocket peer that sends what a well-behaved
//! client never would, the server's memory use read from `/proc`, and a well-behaved
//! client that must keep working beside every attack.
//!
//! The tests themselves are in `tests/attacks/`, one module per kind of attack.
#![deny(unsafe_code)]

pub mod bystander;
pub mod device;
pub mod http;
pub mod memory;
pub mod ws;

use std::future::Future;
use std::time::Duration;

/// Runs `fut`, panicking with `what` if it takes longer than `limit`, so a server that
/// misbehaves fails the test instead of hanging it.
pub async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {limit:?} waiting for {what}"),
    }
}
