//! Channel observers: server-side code that sees every message published on a channel, from
//! any connection, without being a subscriber.
//!
//! A module registers one with [`crate::ServerBuilder::observe_channel`] when messages on a
//! channel mean something to the server itself (the log pipeline reads `log-routing` this
//! way). Observers are called synchronously from the publish, after the channel name is
//! checked and before delivery, whether or not the channel has subscribers: publishing
//! itself is unchanged, and an observer that has slow work to do must hand it to a task.

use std::collections::HashMap;
use std::sync::Arc;

use sentelite_core::frame::PayloadBuf;

use crate::ConnectionId;
use crate::handle::ServerHandle;

/// The connection that published a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publisher {
    /// Its connection.
    pub connection_id: ConnectionId,
    /// The uid the server gave it.
    pub uid: Arc<str>,
    /// The client's stable identity.
    pub client_id: Arc<str>,
    /// Its boot id (0 for clients that send none).
    pub boot_id: u32,
}

/// One message as an observer sees it.
#[derive(Debug)]
pub struct ChannelPublish<'a> {
    /// The channel.
    pub channel: &'a str,
    /// Who published it; `None` for messages the server published itself
    /// ([`ServerHandle::publish`]) or a publisher that is already gone.
    pub publisher: Option<Publisher>,
    /// The message as published.
    pub payload: &'a PayloadBuf,
    /// The server.
    pub server: &'a ServerHandle,
}

/// A channel observer; see the module documentation.
pub type ChannelObserver = Arc<dyn Fn(&ChannelPublish<'_>) + Send + Sync>;

/// The observers of each channel.
#[derive(Default, Clone)]
pub(crate) struct Observers(HashMap<Arc<str>, Vec<ChannelObserver>>);

impl Observers {
    pub(crate) fn add(&mut self, channel: &str, observer: ChannelObserver) {
        self.0.entry(channel.into()).or_default().push(observer);
    }

    /// The observers of `channel`; empty for most channels, so a publish pays one lookup.
    pub(crate) fn of(&self, channel: &str) -> &[ChannelObserver] {
        self.0.get(channel).map_or(&[], Vec::as_slice)
    }
}

impl std::fmt::Debug for Observers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}
