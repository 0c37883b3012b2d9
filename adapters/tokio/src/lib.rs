//! # sentelite-tokio
//!
//! The sentelite client on tokio. This crate is only runtime glue: tokio's TCP, timer and
//! spawn behind [`sentelite_driver::Runtime`]. The client itself — WebSocket, TLS for
//! `wss://`, session, reconnects — is [`sentelite_driver`], re-exported here.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sentelite_tokio::ClientError> {
//! let client = sentelite_tokio::connect(sentelite_tokio::ClientOptions::new(
//!     "ws://127.0.0.1:7070/sentelite",
//!     "my-program",
//! ))?;
//! let events = client.events();
//! while let Some(event) = events.recv().await {
//!     println!("{event:?}");
//! }
//! # Ok(())
//! # }
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use sentelite_driver::runtime::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

pub use sentelite_driver::*;

/// tokio as a [`Runtime`]: tasks go to the runtime whose handle this holds.
#[derive(Debug, Clone)]
pub struct TokioRuntime {
    handle: Handle,
}

impl TokioRuntime {
    /// The runtime this thread is running in, if any.
    pub fn current() -> Option<Self> {
        Handle::try_current().ok().map(|handle| Self { handle })
    }

    /// A specific runtime.
    pub fn new(handle: Handle) -> Self {
        Self { handle }
    }
}

/// tokio's TCP stream in the `futures-io` traits the driver uses.
///
/// `tokio_util`'s `Compat` alone drops vectored writes (each buffer becomes its own write
/// call). Under TLS that costs a syscall per record, and when the client refuses a server's
/// certificate only the first of its queued records would leave, so the server would see a
/// bare EOF instead of the alert saying why.
#[derive(Debug)]
pub struct TokioStream(Compat<TcpStream>);

impl AsyncRead for TokioStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TokioStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        tokio::io::AsyncWrite::poll_write_vectored(Pin::new(self.0.get_mut()), cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

impl Runtime for TokioRuntime {
    type Stream = TokioStream;

    async fn connect(&self, host: String, port: u16) -> io::Result<Self::Stream> {
        let stream = TcpStream::connect((host.as_str(), port)).await?;
        // Frames are small and latency-sensitive (heartbeats, RTT).
        stream.set_nodelay(true)?;
        Ok(TokioStream(stream.compat()))
    }

    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send {
        tokio::time::sleep_until(deadline.into())
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.handle.spawn(task);
    }
}

/// Starts a client on the current tokio runtime; it connects in the background.
pub fn connect(options: ClientOptions) -> Result<Client, ClientError> {
    let runtime = TokioRuntime::current().ok_or(ClientError::NoRuntime)?;
    sentelite_driver::start(runtime, options)
}
