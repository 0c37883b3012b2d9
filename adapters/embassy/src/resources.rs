//! The memory a client runs in, owned by the application (usually a `static`), sized by two
//! constants: `TCP` bytes for each direction of the socket, `FRAME` bytes for the largest
//! frame either way.

use crate::handle::Shared;

/// Socket and frame buffers plus the handle↔runner queues. `new` is `const`, so a
/// `static` (`static_cell::ConstStaticCell`) holds it without a copy on the stack.
pub struct Resources<const TCP: usize = 2048, const FRAME: usize = 1024> {
    pub(crate) shared: Shared,
    pub(crate) tcp_rx: [u8; TCP],
    pub(crate) tcp_tx: [u8; TCP],
    /// Bytes read from the socket, not yet taken apart into WebSocket frames.
    pub(crate) ws_in: [u8; FRAME],
    /// One received message, reassembled.
    pub(crate) message: [u8; FRAME],
    /// One frame encoded by the session.
    pub(crate) frame: [u8; FRAME],
    /// The same frame with its WebSocket header, masked.
    pub(crate) ws_out: [u8; FRAME],
    /// A log batch before it becomes a request payload.
    pub(crate) batch: [u8; FRAME],
}

impl<const TCP: usize, const FRAME: usize> Resources<TCP, FRAME> {
    /// Zeroed buffers and empty queues.
    pub const fn new() -> Self {
        Self {
            shared: Shared::new(),
            tcp_rx: [0; TCP],
            tcp_tx: [0; TCP],
            ws_in: [0; FRAME],
            message: [0; FRAME],
            frame: [0; FRAME],
            ws_out: [0; FRAME],
            batch: [0; FRAME],
        }
    }
}

impl<const TCP: usize, const FRAME: usize> Default for Resources<TCP, FRAME> {
    fn default() -> Self {
        Self::new()
    }
}
