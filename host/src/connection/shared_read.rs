//! A socket whose reads go through one scratch buffer per worker thread, so a connection
//! holds no read buffer of its own while it is idle.
//!
//! The WebSocket layer reads in chunks of at most its own buffer's size
//! (`read-buffer-bytes`), and that buffer lives as long as the connection: most connections
//! are idle devices, so it is kept small. Reading a socket in small chunks would cost a system
//! call per chunk under load; instead each read fills the thread's scratch buffer from the
//! socket in one call, hands the reader what it asked for, and keeps the rest in an
//! allocation of exactly its size until the reader takes it. An idle connection has taken
//! everything it was sent, so it holds nothing.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Most bytes one read takes from the socket. A reader asking for at least this much reads
/// straight into its own buffer.
pub(crate) const SCRATCH_BYTES: usize = 16 * 1024;

thread_local! {
    /// Written by one read at a time and copied out before that read returns.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_BYTES].into_boxed_slice());
}

/// `S` with its reads going through the thread's scratch buffer.
#[derive(Debug)]
pub(crate) struct SharedRead<S> {
    inner: S,
    /// Read from the socket, not yet taken by the reader; empty (no allocation) otherwise.
    ahead: Bytes,
}

impl<S> SharedRead<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            ahead: Bytes::new(),
        }
    }

    /// Bytes read from the socket and not yet taken (0 on an idle connection).
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.ahead.len()
    }

    /// Moves what fits of `ahead` into `buf`; frees it once all is taken.
    fn take_ahead(&mut self, buf: &mut ReadBuf<'_>) {
        let n = buf.remaining().min(self.ahead.len());
        buf.put_slice(&self.ahead[..n]);
        drop(self.ahead.split_to(n));
        if self.ahead.is_empty() {
            // An emptied `Bytes` still owns its allocation.
            self.ahead = Bytes::new();
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SharedRead<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.ahead.is_empty() {
            this.take_ahead(buf);
            return Poll::Ready(Ok(()));
        }
        if buf.remaining() >= SCRATCH_BYTES {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        SCRATCH.with_borrow_mut(|scratch| {
            let mut read = ReadBuf::new(&mut scratch[..]);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            let got = read.filled();
            let n = buf.remaining().min(got.len());
            buf.put_slice(&got[..n]);
            if got.len() > n {
                this.ahead = Bytes::copy_from_slice(&got[n..]);
            }
            Poll::Ready(Ok(()))
        })
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SharedRead<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Small reads of a large write get every byte in order, and once the reader has taken
    /// them all the connection holds nothing.
    #[tokio::test]
    async fn small_reads_get_every_byte_and_leave_nothing_held() {
        let (client, server) = tokio::io::duplex(1 << 20);
        let mut reader = SharedRead::new(server);
        let sent: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut writer = client;
        writer.write_all(&sent).await.unwrap();
        drop(writer);
        let mut got = Vec::new();
        let mut chunk = [0u8; 100];
        let mut held_between_reads = false;
        loop {
            let n = reader.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            held_between_reads |= reader.held() > 0;
            got.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(got, sent);
        assert!(held_between_reads, "one read from the pipe serves several");
        assert_eq!(reader.held(), 0);
    }
}
