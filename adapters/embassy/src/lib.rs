//! # sentelite-embassy
//!
//! The sentelite client on embassy: [`new`] takes an `embassy_net::Stack`, a [`Config`] and
//! the [`Resources`] it runs in, and returns a [`Handle`] for the application and a
//! [`Runner`] to spawn, the shape of embassy-net's own drivers.
//!
//! ```ignore
//! static RESOURCES: ConstStaticCell<Resources> = ConstStaticCell::new(Resources::new());
//! static LOG_QUEUE: ConstStaticCell<[u8; 4096]> = ConstStaticCell::new([0; 4096]);
//!
//! sentelite_embassy::logging::install(&LOGGER, LOG_QUEUE.take(), LogConfig::default(), 0)?;
//! let config = Config::new("ws://192.168.1.10:7700/ws", ClientConfig::new("pico-1")?, Some(&LOGGER))?;
//! let (handle, runner) = sentelite_embassy::new(stack, config, RESOURCES.take());
//! spawner.spawn(sentelite_task(runner))?;        // async fn sentelite_task(mut r: Runner<'static>) -> ! { r.run().await }
//! log::info!("booted");                          // queued, shipped as telemetry/log-batch
//! handle.send("app/hello", Payload::Empty).await?;
//! ```
//!
//! The [`Runner`] owns the TCP socket: DNS, the WebSocket upgrade and framing (the crate's
//! own RFC 6455 client side over `embedded-io-async`), and the core's
//! [`ClientSession`](sentelite_core::ClientSession) with embassy-time: heartbeats, reconnects
//! with backoff, request deadlines. Log shipping and the server's level changes go through
//! the core's [`ShippingLink`](sentelite_core::log::ShippingLink), the same code the host
//! driver's loop would need. Blob directives are fetched with HTTP Range requests by
//! [`blob`] into a [`BlobSink`](sentelite_core::blob::BlobSink) ([`sinks`]).
//!
//! Plain `ws://` and `http://` only: the device build carries no TLS stack.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "blob")]
pub mod blob;
mod config;
#[cfg(feature = "defmt-logger")]
pub mod defmt_logger;
mod handle;
pub mod logging;
mod message;
mod outline;
mod resources;
mod rng;
mod runner;
pub mod sinks;
mod upgrade;
mod url;
mod ws;

pub use config::Config;
pub use handle::{Handle, HandleError, INBOX, OUTBOX, REQUEST_SLOTS};
pub use message::{Answer, Incoming, MAX_NAME, MAX_PAYLOAD, Name, OwnedPayload, PayloadKind};
pub use resources::Resources;
pub use runner::Runner;
pub use sentelite_core as core_protocol;
pub use url::{UrlError, WsUrl};
pub use ws::WsError;

/// The server-facing decoders, reachable for the fuzz targets in `tests/fuzz`; not an API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::upgrade::{Answer, Key, answer, key};
    pub use crate::ws::{Framing, Kind, Received, SendKind};
}

/// Builds a client over `stack`: the [`Handle`] for the application and the [`Runner`] to
/// spawn. Nothing happens on the network until the runner runs.
pub fn new<'a, const TCP: usize, const FRAME: usize>(
    stack: embassy_net::Stack<'a>,
    config: Config<'a>,
    resources: &'a mut Resources<TCP, FRAME>,
) -> (Handle<'a>, Runner<'a>) {
    let Resources {
        shared,
        tcp_rx,
        tcp_tx,
        ws_in,
        message,
        frame,
        ws_out,
        batch,
    } = resources;
    let shared: &'a handle::Shared = shared;
    let runner = Runner::new(
        stack,
        config.url,
        config.client,
        config.logger,
        shared,
        (tcp_rx, tcp_tx),
        ws_in,
        message,
        frame,
        ws_out,
        batch,
    );
    (Handle { shared }, runner)
}
#[cfg(test)]
mod tests {
    use core::mem::size_of;

    /// The part of the issue's fixed-RAM budget (6 KiB beyond the buffers the caller
    /// sizes) that a type's size shows: the handle↔runner queues in `Resources` and the
    /// runner's own state. Not counted here, because only a firmware image shows them: the
    /// futures of the runner and the application in the task that runs them, and the
    /// logger; `.ci/firmware-sizes` measures the whole on the boards. Host pointers are 64
    /// bits, so these sizes are at least those on the 32-bit boards.
    #[test]
    fn the_queues_and_the_runner_fit_the_fixed_ram_budget() {
        let fixed = size_of::<crate::Resources<0, 0>>();
        // `Resources<TCP, FRAME>` grows by exactly its caller-sized buffers: two TCP
        // buffers and five frame buffers, nothing else hidden in the "fixed" part.
        let sized = size_of::<crate::Resources<2048, 1024>>();
        assert_eq!(
            sized - fixed,
            2 * 2048 + 5 * 1024,
            "caller-sized part of Resources"
        );
        let runner = size_of::<crate::Runner<'static>>();
        assert!(
            fixed + runner <= 6 * 1024,
            "queues {fixed} B + runner {runner} B of fixed RAM"
        );
    }
}
