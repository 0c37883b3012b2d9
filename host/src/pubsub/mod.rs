//! Channel pub/sub: the channel table, and how failed deliveries are counted and reported.
//!
//! Delivery is best effort: a subscriber whose queue is full misses the message rather than
//! slowing the publisher or the other subscribers. Every miss is counted on both sides
//! ([`drops::DropCounters`]), and the publishing connection reports them to its client and
//! to the log at a bounded rate ([`drops::DropReports`]).

pub(crate) mod drops;
mod table;

use std::sync::Arc;

use crate::ConnectionId;
use crate::registry::ConnEntry;

pub(crate) use table::{ChannelTable, Limits, Member, Snapshot, valid_name};

/// The server's channel table; a snapshot hands publishers the subscribers' queues directly,
/// so publishing looks nothing up in the registry.
pub(crate) type Channels = ChannelTable<Arc<ConnEntry>>;

impl Member for Arc<ConnEntry> {
    fn connection_id(&self) -> ConnectionId {
        self.id
    }
}
