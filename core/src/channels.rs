//! The client side of channel pub/sub: which channels this client wants to be subscribed to.
//!
//! The table outlives connections. After every handshake each wanted channel is subscribed
//! again, so a reconnect never silently drops a subscription.

use heapless::{String, Vec};

/// Why a channel could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ChannelError {
    /// The name is empty or longer than the table's `L` bytes.
    InvalidName,
    /// The table holds `N` channels already.
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sync {
    /// A Subscribe frame must still be sent on the current connection.
    Unsent,
    /// Sent, waiting for the server's answer.
    Requested,
    /// The server confirmed.
    Active,
    /// The server refused; kept so the application can see it, not retried.
    Refused,
}

/// Up to `N` wanted channels with names of at most `L` bytes.
pub struct Subscriptions<const N: usize, const L: usize = 32> {
    entries: Vec<(String<L>, Sync), N>,
}

impl<const N: usize, const L: usize> Default for Subscriptions<N, L> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const L: usize> Subscriptions<N, L> {
    /// An empty table.
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Number of wanted channels.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no channel is wanted.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True when `channel` is wanted and the server confirmed it on this connection.
    pub fn is_active(&self, channel: &str) -> bool {
        self.slots()
            .iter()
            .any(|e| e.0.as_str() == channel && e.1 == Sync::Active)
    }

    /// Adds a wanted channel (marked unsent). Returns false if it was already there.
    pub fn add(&mut self, channel: &str) -> Result<bool, ChannelError> {
        if channel.is_empty() {
            return Err(ChannelError::InvalidName);
        }
        if let Some(i) = self.position(channel) {
            if self.entries[i].1 == Sync::Refused {
                self.entries[i].1 = Sync::Unsent;
            }
            return Ok(false);
        }
        let name = String::try_from(channel).map_err(|_| ChannelError::InvalidName)?;
        self.entries
            .push((name, Sync::Unsent))
            .map_err(|_| ChannelError::Full)?;
        Ok(true)
    }

    /// Removes a channel; returns whether it was wanted.
    pub fn remove(&mut self, channel: &str) -> bool {
        match self.position(channel) {
            Some(i) => {
                self.entries.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Records the server's answer for a channel.
    pub fn on_ack(&mut self, channel: &str, subscribed: bool) {
        if let Some(entry) = self.entry_mut(channel) {
            entry.1 = if subscribed {
                Sync::Active
            } else {
                Sync::Refused
            };
        }
    }

    /// The connection dropped: every wanted channel must be subscribed again on the next one.
    pub fn on_disconnect(&mut self) {
        for entry in self.slots_mut() {
            entry.1 = Sync::Unsent;
        }
    }

    /// The next channel whose Subscribe frame is due; marks it requested.
    pub fn take_unsent(&mut self) -> Option<&str> {
        let entry = self.slots_mut().iter_mut().find(|e| e.1 == Sync::Unsent)?;
        entry.1 = Sync::Requested;
        Some(entry.0.as_str())
    }

    /// Marks a channel unsent again (its Subscribe frame could not be transmitted).
    pub fn mark_unsent(&mut self, channel: &str) {
        if let Some(entry) = self.entry_mut(channel) {
            entry.1 = Sync::Unsent;
        }
    }

    fn position(&self, channel: &str) -> Option<usize> {
        self.slots().iter().position(|e| e.0.as_str() == channel)
    }

    fn entry_mut(&mut self, channel: &str) -> Option<&mut (String<L>, Sync)> {
        self.slots_mut()
            .iter_mut()
            .find(|e| e.0.as_str() == channel)
    }

    /// The wanted channels. A table without room (a client that uses no channels) is empty
    /// by its type, so the compiler drops every lookup and the re-subscription from it.
    fn slots(&self) -> &[(String<L>, Sync)] {
        if N == 0 { &[] } else { &self.entries }
    }

    /// [`Self::slots`], to change.
    fn slots_mut(&mut self) -> &mut [(String<L>, Sync)] {
        if N == 0 { &mut [] } else { &mut self.entries }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resubscribes_everything_after_a_disconnect() {
        let mut subs = Subscriptions::<2, 8>::new();
        assert_eq!(subs.add("a"), Ok(true));
        assert_eq!(subs.add("a"), Ok(false));
        assert_eq!(subs.add("b"), Ok(true));
        assert_eq!(subs.add("c"), Err(ChannelError::Full));
        assert_eq!(subs.add("much-too-long"), Err(ChannelError::InvalidName));
        assert_eq!(subs.take_unsent(), Some("a"));
        assert_eq!(subs.take_unsent(), Some("b"));
        assert_eq!(subs.take_unsent(), None);
        subs.on_ack("a", true);
        assert!(subs.is_active("a"));
        subs.on_disconnect();
        assert!(!subs.is_active("a"));
        assert_eq!(subs.take_unsent(), Some("a"));
        assert!(subs.remove("b"));
        assert_eq!(subs.take_unsent(), None);
    }
}
