//! What a runtime adapter provides. Three operations are all the driver needs from an async
//! runtime; everything else (WebSocket, session, calls) is runtime-neutral, so the tokio and
//! smol adapters stay a few lines of glue each.

use std::future::Future;
use std::io;
use std::time::Instant;

/// The `futures-io` traits [`Runtime::Stream`] implements, for adapters whose runtime has
/// its own IO traits.
pub use futures_lite::io::{AsyncRead, AsyncWrite};

/// An async runtime the driver can run on.
///
/// Cheap to clone: the driver keeps one copy and hands another to each connection attempt.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// A connected TCP stream in the `futures-io` traits (tokio streams go through
    /// `tokio_util::compat`). It should pass vectored writes on to the socket: TLS hands
    /// over several records at once, and on a failed handshake gets exactly one write call
    /// to send its alert.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Opens a TCP connection to `host:port` (`host` is a name or an IP literal).
    fn connect(
        &self,
        host: String,
        port: u16,
    ) -> impl Future<Output = io::Result<Self::Stream>> + Send;

    /// Completes at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send;

    /// Runs `task` in the background until it completes.
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static);
}
