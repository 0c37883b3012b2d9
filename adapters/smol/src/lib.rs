//! # sentelite-smol
//!
//! The sentelite client on smol. This crate is only runtime glue: async-net's TCP, smol's
//! timer and executor behind [`sentelite_driver::Runtime`]. The client itself — WebSocket,
//! TLS for `wss://`, session, reconnects — is [`sentelite_driver`], re-exported here.
//!
//! ```no_run
//! smol::block_on(async {
//!     let client = sentelite_smol::connect(sentelite_smol::ClientOptions::new(
//!         "ws://127.0.0.1:7070/sentelite",
//!         "my-program",
//!     ))
//!     .expect("valid options");
//!     let events = client.events();
//!     while let Some(event) = events.recv().await {
//!         println!("{event:?}");
//!     }
//! });
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

use std::future::Future;
use std::io;
use std::time::Instant;

use async_net::TcpStream;

pub use sentelite_driver::*;

/// smol as a [`Runtime`]: tasks go to smol's global executor.
#[derive(Debug, Clone, Copy, Default)]
pub struct SmolRuntime;

impl Runtime for SmolRuntime {
    type Stream = TcpStream;

    async fn connect(&self, host: String, port: u16) -> io::Result<Self::Stream> {
        let stream = TcpStream::connect((host.as_str(), port)).await?;
        // Frames are small and latency-sensitive (heartbeats, RTT).
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    async fn sleep_until(&self, deadline: Instant) {
        smol::Timer::at(deadline).await;
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        smol::spawn(task).detach();
    }
}

/// Starts a client on smol's global executor; it connects in the background.
pub fn connect(options: ClientOptions) -> Result<Client, ClientError> {
    sentelite_driver::start(SmolRuntime, options)
}
