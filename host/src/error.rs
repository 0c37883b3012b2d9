//! Error types, one per kind of operation.

use std::path::PathBuf;

use crate::ConnectionId;

/// A configuration file or value could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML, an unknown key, or a value of the wrong type.
    #[error("{0}")]
    Parse(toml::de::Error),
    /// Values that do not make sense (zero limits, timeout below interval).
    #[error("{0}")]
    Invalid(String),
    /// The `[lsp]` table.
    #[error(transparent)]
    Lsp(#[from] crate::lsp::LspConfigError),
    /// An error found in a named file.
    #[error("{path}: {source}")]
    InFile {
        /// The file.
        path: PathBuf,
        /// What was wrong in it.
        source: Box<ConfigError>,
    },
}

impl ConfigError {
    pub(crate) fn in_file(self, path: &std::path::Path) -> Self {
        match self {
            e @ (ConfigError::Io { .. } | ConfigError::InFile { .. }) => e,
            other => ConfigError::InFile {
                path: path.to_owned(),
                source: Box::new(other),
            },
        }
    }
}

/// The server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The settings are inconsistent.
    #[error("invalid settings: {0}")]
    Config(#[from] ConfigError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A push, publish or request could not be handed to a connection. Nothing was queued for
/// that connection; the caller decides whether to retry, drop or disconnect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// No handshaken connection has this id.
    #[error("no open connection {0}")]
    UnknownConnection(ConnectionId),
    /// No handshaken connection has this client id.
    #[error("no open connection for client {0:?}")]
    UnknownClient(String),
    /// The connection's command queue is full: the client is not keeping up.
    #[error("connection {0}: queue full")]
    QueueFull(ConnectionId),
    /// The connection ended while the item was being handed over.
    #[error("connection {0}: closed")]
    Closed(ConnectionId),
    /// The encoded frame exceeds the largest frame the client accepts.
    #[error("connection {connection_id}: frame of {len} bytes exceeds the client's limit of {max}")]
    TooLarge {
        /// The connection.
        connection_id: ConnectionId,
        /// Encoded frame length.
        len: usize,
        /// The client's limit.
        max: usize,
    },
    /// The channel name is empty or too long.
    #[error("invalid channel name")]
    InvalidChannel,
    /// The connection's session refused the request (request table full, closing).
    #[error("connection {connection_id}: request refused: {reason}")]
    Refused {
        /// The connection.
        connection_id: ConnectionId,
        /// The session's reason.
        reason: String,
    },
}

/// A [`crate::Responder`] could not send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponderError {
    /// The requester cancelled the request; stop working on it.
    #[error("request cancelled by the requester")]
    Cancelled,
    /// The connection is gone.
    #[error("connection closed")]
    Closed,
    /// The part does not fit the client's maximum frame; nothing was sent.
    #[error("reply of {len} bytes exceeds the client's limit of {max}")]
    TooLarge {
        /// Encoded frame length.
        len: usize,
        /// The client's limit.
        max: usize,
    },
}
