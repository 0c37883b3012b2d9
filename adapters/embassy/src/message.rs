//! The owned messages that travel between the application's [`crate::Handle`] and the
//! [`crate::Runner`] through bounded channels: fixed-size, so nothing is allocated.

use heapless::{String, Vec};
use sentelite_core::log::LevelSet;
use sentelite_core::{Payload, RequestId, Status};

/// Largest payload a message between handle and runner carries.
pub const MAX_PAYLOAD: usize = 512;
/// Longest event or channel name.
pub const MAX_NAME: usize = 48;

/// An event or channel name.
pub type Name = String<MAX_NAME>;

/// Which payload form the bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PayloadKind {
    /// No payload.
    #[default]
    Empty,
    /// Application bytes.
    Bytes,
    /// One CBOR item.
    Value,
    /// JSON text.
    Json,
}

/// A payload copied out of (or into) a frame.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OwnedPayload {
    /// The form.
    pub kind: PayloadKind,
    /// The bytes (UTF-8 for [`PayloadKind::Json`]).
    pub bytes: Vec<u8, MAX_PAYLOAD>,
}

/// The payload does not fit [`MAX_PAYLOAD`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TooLarge;

impl OwnedPayload {
    /// Copies `payload`.
    pub fn copy(payload: Payload<'_>) -> Result<Self, TooLarge> {
        let kind = match payload {
            Payload::Empty => PayloadKind::Empty,
            Payload::Bytes(_) => PayloadKind::Bytes,
            Payload::Value(_) => PayloadKind::Value,
            Payload::Json(_) => PayloadKind::Json,
        };
        Ok(Self {
            kind,
            bytes: Vec::from_slice(payload_bytes(payload)).map_err(|_| TooLarge)?,
        })
    }

    /// A CBOR value that `encode` writes straight into the payload's own buffer (all
    /// [`MAX_PAYLOAD`] bytes of it) and whose length it returns; `None` when it does not fit.
    /// A report encoded this way needs no buffer of its own before it is copied.
    /// Not generic: one copy for every encoder.
    #[inline(never)]
    pub(crate) fn encoded(encode: &mut dyn FnMut(&mut [u8]) -> Option<usize>) -> Option<Self> {
        let mut bytes = Vec::new();
        bytes.resize_default(MAX_PAYLOAD).ok()?;
        let n = encode(&mut bytes)?;
        (n <= MAX_PAYLOAD).then(|| {
            bytes.truncate(n);
            Self {
                kind: PayloadKind::Value,
                bytes,
            }
        })
    }

    /// Borrows it as a frame payload (JSON that is not UTF-8 becomes bytes).
    pub fn as_payload(&self) -> Payload<'_> {
        match self.kind {
            PayloadKind::Empty => Payload::Empty,
            PayloadKind::Bytes => Payload::Bytes(&self.bytes),
            PayloadKind::Value => Payload::Value(&self.bytes),
            PayloadKind::Json => match core::str::from_utf8(&self.bytes) {
                Ok(s) => Payload::Json(s),
                Err(_) => Payload::Bytes(&self.bytes),
            },
        }
    }
}

/// The payload's bytes, for checking its size before it is copied.
fn payload_bytes(payload: Payload<'_>) -> &[u8] {
    match payload {
        Payload::Empty => &[],
        Payload::Bytes(b) | Payload::Value(b) => b,
        Payload::Json(s) => s.as_bytes(),
    }
}

/// `Ok` when `payload` fits [`MAX_PAYLOAD`], so a later [`OwnedPayload::copy`] succeeds.
pub(crate) fn fits(payload: Payload<'_>) -> Result<(), TooLarge> {
    if payload_bytes(payload).len() <= MAX_PAYLOAD {
        Ok(())
    } else {
        Err(TooLarge)
    }
}

/// `name` when it fits [`MAX_NAME`], so a later [`name`] succeeds.
pub(crate) fn checked_name(text: &str) -> Result<&str, crate::HandleError> {
    if text.len() <= MAX_NAME {
        Ok(text)
    } else {
        Err(crate::HandleError::NameTooLong)
    }
}

/// Copies `name`, or `None` when it is longer than [`MAX_NAME`].
pub(crate) fn name(text: &str) -> Option<Name> {
    String::try_from(text).ok()
}

/// What the application asks the runner to send.
#[derive(Debug, Clone)]
pub(crate) enum Outgoing {
    Event {
        event: Name,
        payload: OwnedPayload,
    },
    #[cfg(feature = "requests")]
    Request {
        slot: usize,
        ticket: u32,
        event: Name,
        payload: OwnedPayload,
        timeout_ms: u32,
    },
    Reply {
        id: RequestId,
        seq: u32,
        payload: OwnedPayload,
    },
    End {
        id: RequestId,
        status: Status,
        payload: OwnedPayload,
    },
    #[cfg(feature = "channels")]
    Subscribe {
        channel: Name,
    },
    #[cfg(feature = "channels")]
    Publish {
        channel: Name,
        payload: OwnedPayload,
    },
}

/// What the runner tells the application, read with [`crate::Handle::next_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// The handshake completed.
    Opened {
        /// The server's id for this connection.
        connection_id: u64,
    },
    /// The connection ended; a reconnect follows on its own.
    Closed {
        /// The close code (sentelite's, see `CloseCode`).
        code: u16,
    },
    /// A one-way event from the server.
    Message {
        /// Its name.
        event: Name,
        /// Its payload.
        payload: OwnedPayload,
    },
    /// A request from the server (a blob directive, a command): answer it with
    /// [`crate::Handle::reply`] parts and one [`crate::Handle::end`].
    Request {
        /// Its id, for the answer.
        id: RequestId,
        /// Its name.
        event: Name,
        /// Its payload.
        payload: OwnedPayload,
        /// The server's deadline in milliseconds (0: none).
        timeout_ms: u32,
    },
    /// The server gave up on its request `id`. A blob transfer running for it hears this
    /// directly (`Handle::cancelled`) and stops; this event still follows.
    Cancelled {
        /// The request.
        id: RequestId,
    },
    /// A message published on a subscribed channel (with feature `channels`).
    ChannelMessage {
        /// The channel.
        channel: Name,
        /// Its payload.
        payload: OwnedPayload,
    },
    /// The server changed the remote log filter; these levels are now shipped.
    LogLevels {
        /// The levels kept from now on.
        levels: LevelSet,
        /// False when the server switched remote logging off.
        enabled: bool,
    },
}

/// How one of the application's requests ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The server's final status; `None` when the request ended without one (timed out,
    /// the connection closed, or it could not be sent).
    pub status: Option<Status>,
    /// The End frame's payload (empty without one, or when it did not fit).
    pub payload: OwnedPayload,
    /// Streamed reply parts that arrived before the end (their payloads are not kept).
    pub parts: u32,
}

/// An answer addressed to one use of a request slot.
#[cfg(feature = "requests")]
#[derive(Debug, Clone)]
pub(crate) struct Ticketed {
    pub ticket: u32,
    pub answer: Answer,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encoded_payload_is_the_value_its_encoder_wrote() {
        let payload = OwnedPayload::encoded(&mut |buf| {
            buf.get_mut(..3)?.copy_from_slice(&[0xa1, 0x01, 0x02]);
            Some(3)
        })
        .unwrap();
        assert_eq!(payload.as_payload(), Payload::Value(&[0xa1, 0x01, 0x02]));
        // The encoder is given the whole payload room, no more.
        let mut room = 0;
        let _ = OwnedPayload::encoded(&mut |buf| {
            room = buf.len();
            None
        });
        assert_eq!(room, MAX_PAYLOAD);
        // An encoder that fails, or claims more than the room, gives no payload.
        assert_eq!(OwnedPayload::encoded(&mut |_| None), None);
        assert_eq!(OwnedPayload::encoded(&mut |_| Some(MAX_PAYLOAD + 1)), None);
    }
}
