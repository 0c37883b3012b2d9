//! Frames encoded by the session, waiting as WebSocket messages to be written.

use async_tungstenite::tungstenite::Message;
use sentelite_core::SendError;
use sentelite_core::codec::encode_to_vec;

use super::Session;
use crate::ClientError;

/// Frames up to this size are encoded in the scratch buffer; larger ones are encoded again
/// into a buffer of their exact size.
const SCRATCH: usize = 4096;

/// The encode scratch buffer and the messages not written yet.
pub(super) struct Outbox {
    scratch: Box<[u8; SCRATCH]>,
    messages: Vec<Message>,
}

impl Outbox {
    pub(super) fn new() -> Self {
        Self {
            scratch: Box::new([0; SCRATCH]),
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
        while let Ok((true, frame)) = encode_to_vec(&mut self.scratch[..], |buf| {
            session
                .poll_transmit(buf)
                .map(|n| (n.is_some(), n.unwrap_or(0)))
        }) {
            self.messages.push(Message::binary(frame));
        }
    }

    /// Queues a frame encoded elsewhere (a log batch request, which needs a buffer of its
    /// own size).
    pub(super) fn push_frame(&mut self, frame: Vec<u8>) {
        self.messages.push(Message::binary(frame));
    }

    /// Runs an encoding send call and queues the frame it produced (none when it wrote
    /// nothing, e.g. an unsubscribe while disconnected).
    pub(super) fn encode<T>(
        &mut self,
        session: &mut Session,
        mut call: impl FnMut(&mut Session, &mut [u8]) -> Result<(T, usize), SendError>,
    ) -> Result<T, ClientError> {
        let (value, frame) = encode_to_vec(&mut self.scratch[..], |buf| call(session, buf))?;
        if !frame.is_empty() {
            self.messages.push(Message::binary(frame));
        }
        Ok(value)
    }
}
