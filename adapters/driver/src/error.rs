//! Typed errors of the client API. Every refused operation says why; nothing is dropped
//! silently.

use sentelite_core::SendError;
use sentelite_core::channels::ChannelError;
use sentelite_core::codec::EncodeError;

/// Why a client operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The connection is not open (connecting, handshaking, closing or waiting to
    /// reconnect). Nothing was queued.
    #[error("not connected")]
    NotConnected,
    /// The client was closed; it will not connect again.
    #[error("client is closed")]
    Closed,
    /// The URL could not be parsed or has no host.
    #[error("invalid url: {0}")]
    InvalidUrl(String),
    /// The URL's scheme is neither `ws` nor `wss`.
    #[error("unsupported url scheme {0:?} (use ws:// or wss://)")]
    UnsupportedScheme(String),
    /// `wss://` URLs need TLS, which this build does not include (the driver's `tls`
    /// feature, on by default, was turned off).
    #[error("wss:// is not supported: this build has no TLS")]
    TlsUnsupported,
    /// A [`crate::ClientOptions`] field is out of range.
    #[error("invalid options: {0}")]
    InvalidOptions(&'static str),
    /// No async runtime is running on this thread.
    #[error("no async runtime is running")]
    NoRuntime,
    /// Too many of our requests are in flight; wait for one to end.
    #[error("too many requests in flight")]
    PendingFull,
    /// The frame is larger than the peer accepts.
    #[error("frame of {len} bytes exceeds the peer's limit of {max}")]
    TooLarge {
        /// Encoded frame length.
        len: usize,
        /// The peer's limit.
        max: usize,
    },
    /// The channel name is empty or too long.
    #[error("invalid channel name")]
    InvalidChannel,
    /// The client already wants as many channels as it can hold.
    #[error("too many channels")]
    TooManyChannels,
    /// The request is no longer open: it ended, or its connection is gone.
    #[error("request is no longer open")]
    UnknownRequest,
}

impl From<SendError> for ClientError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::NotOpen => ClientError::NotConnected,
            SendError::PendingFull => ClientError::PendingFull,
            SendError::UnknownRequest => ClientError::UnknownRequest,
            SendError::Channel(ChannelError::InvalidName) => ClientError::InvalidChannel,
            SendError::Channel(ChannelError::Full) => ClientError::TooManyChannels,
            SendError::Encode(EncodeError::TooLarge { len, max }) => {
                ClientError::TooLarge { len, max }
            }
            // The driver grows its buffer on `BufferTooSmall`; reaching here means the frame
            // could not be encoded at any size the peer accepts.
            SendError::Encode(EncodeError::BufferTooSmall { required }) => ClientError::TooLarge {
                len: required,
                max: required.saturating_sub(1),
            },
            _ => ClientError::NotConnected,
        }
    }
}
