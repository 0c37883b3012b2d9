//! Frames encoded by the session, waiting as WebSocket messages to be written.

use async_tungstenite::tungstenite::Message;
use sentelite_core::SendError;
use sentelite_core::codec::EncodeError;

use super::Session;
use crate::ClientError;

/// First size of the encode buffer; it grows to the largest frame actually sent.
const INITIAL_BUFFER: usize = 4096;

/// The encode buffer and the messages not written yet.
pub(super) struct Outbox {
    buf: Vec<u8>,
    messages: Vec<Message>,
}

impl Outbox {
    pub(super) fn new() -> Self {
        Self {
            buf: vec![0; INITIAL_BUFFER],
            messages: Vec::new(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Everything queued so far, in order.
    pub(super) fn take(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.messages)
    }

    /// Moves the session's own frames (Hello, pings, pongs, subscriptions, Close) here.
    pub(super) fn collect_transmit(&mut self, session: &mut Session) {
        loop {
            match session.poll_transmit(&mut self.buf) {
                Ok(Some(n)) => self.messages.push(Message::binary(self.buf[..n].to_vec())),
                Ok(None) => break,
                Err(EncodeError::BufferTooSmall { required }) if required > self.buf.len() => {
                    self.buf.resize(required, 0);
                }
                Err(_) => break,
            }
        }
    }

    /// Runs an encoding send call, growing the buffer if the frame needs more room, and
    /// queues the frame it produced.
    pub(super) fn encode<T>(
        &mut self,
        session: &mut Session,
        mut call: impl FnMut(&mut Session, &mut [u8]) -> Result<(T, usize), SendError>,
    ) -> Result<T, ClientError> {
        loop {
            match call(session, &mut self.buf) {
                Ok((value, n)) => {
                    if n > 0 {
                        self.messages.push(Message::binary(self.buf[..n].to_vec()));
                    }
                    return Ok(value);
                }
                Err(SendError::Encode(EncodeError::BufferTooSmall { required }))
                    if required > self.buf.len() =>
                {
                    self.buf.resize(required, 0);
                }
                Err(error) => return Err(error.into()),
            }
        }
    }
}
