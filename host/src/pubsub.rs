//! Channel pub/sub: which connections joined which channel, under per-connection and
//! per-channel limits.

use std::collections::HashMap;
use std::sync::Arc;

use sentelite_core::frame::SubscribeError;

use crate::ConnectionId;

/// Limits applied to subscriptions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) per_conn: usize,
    pub(crate) per_channel: usize,
    pub(crate) name_bytes: usize,
}

#[derive(Debug)]
pub(crate) struct Channels {
    limits: Limits,
    by_channel: HashMap<Arc<str>, Vec<ConnectionId>>,
    by_conn: HashMap<ConnectionId, Vec<Arc<str>>>,
}

/// Checks a channel name against the limits.
pub(crate) fn valid_name(name: &str, max_bytes: usize) -> bool {
    !name.is_empty() && name.len() <= max_bytes
}

impl Channels {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            limits,
            by_channel: HashMap::new(),
            by_conn: HashMap::new(),
        }
    }

    /// Joins `conn` to `channel`. Joining a channel already joined succeeds again.
    pub(crate) fn subscribe(
        &mut self,
        conn: ConnectionId,
        channel: &str,
    ) -> Result<(), SubscribeError> {
        if !valid_name(channel, self.limits.name_bytes) {
            return Err(SubscribeError::INVALID_CHANNEL);
        }
        let joined = self.by_conn.get(&conn).map_or(&[][..], Vec::as_slice);
        if joined.iter().any(|c| &**c == channel) {
            return Ok(());
        }
        if joined.len() >= self.limits.per_conn {
            return Err(SubscribeError::MAX_SUBSCRIPTIONS_PER_CONN);
        }
        let members = self.by_channel.get(channel).map_or(0, Vec::len);
        if members >= self.limits.per_channel {
            return Err(SubscribeError::MAX_SUBSCRIBERS_REACHED);
        }
        let name: Arc<str> = match self.by_channel.get_key_value(channel) {
            Some((name, _)) => name.clone(),
            None => Arc::from(channel),
        };
        self.by_channel.entry(name.clone()).or_default().push(conn);
        self.by_conn.entry(conn).or_default().push(name);
        Ok(())
    }

    /// Leaves a channel; `CHANNEL_NOT_FOUND` if `conn` had not joined it.
    pub(crate) fn unsubscribe(
        &mut self,
        conn: ConnectionId,
        channel: &str,
    ) -> Result<(), SubscribeError> {
        let Some(joined) = self.by_conn.get_mut(&conn) else {
            return Err(SubscribeError::CHANNEL_NOT_FOUND);
        };
        let Some(pos) = joined.iter().position(|c| &**c == channel) else {
            return Err(SubscribeError::CHANNEL_NOT_FOUND);
        };
        joined.swap_remove(pos);
        if joined.is_empty() {
            self.by_conn.remove(&conn);
        }
        self.leave(conn, channel);
        Ok(())
    }

    /// Drops every subscription of a closed connection.
    pub(crate) fn remove_connection(&mut self, conn: ConnectionId) {
        for channel in self.by_conn.remove(&conn).unwrap_or_default() {
            self.leave(conn, &channel);
        }
    }

    /// The connections that joined `channel`.
    pub(crate) fn subscribers(&self, channel: &str) -> Vec<ConnectionId> {
        self.by_channel.get(channel).cloned().unwrap_or_default()
    }

    /// The channels `conn` joined.
    pub(crate) fn channels_of(&self, conn: ConnectionId) -> Vec<Arc<str>> {
        self.by_conn.get(&conn).cloned().unwrap_or_default()
    }

    fn leave(&mut self, conn: ConnectionId, channel: &str) {
        if let Some(members) = self.by_channel.get_mut(channel) {
            members.retain(|&c| c != conn);
            if members.is_empty() {
                self.by_channel.remove(channel);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channels() -> Channels {
        Channels::new(Limits {
            per_conn: 2,
            per_channel: 2,
            name_bytes: 8,
        })
    }

    #[test]
    fn limits_give_typed_errors() {
        let mut ch = channels();
        assert_eq!(ch.subscribe(1, ""), Err(SubscribeError::INVALID_CHANNEL));
        assert_eq!(
            ch.subscribe(1, "much-too-long"),
            Err(SubscribeError::INVALID_CHANNEL)
        );
        ch.subscribe(1, "a").unwrap();
        ch.subscribe(1, "a").unwrap();
        ch.subscribe(1, "b").unwrap();
        assert_eq!(
            ch.subscribe(1, "c"),
            Err(SubscribeError::MAX_SUBSCRIPTIONS_PER_CONN)
        );
        ch.subscribe(2, "a").unwrap();
        assert_eq!(
            ch.subscribe(3, "a"),
            Err(SubscribeError::MAX_SUBSCRIBERS_REACHED)
        );
        assert_eq!(ch.subscribers("a"), vec![1, 2]);
    }

    #[test]
    fn unsubscribe_and_close_forget_the_connection() {
        let mut ch = channels();
        ch.subscribe(1, "a").unwrap();
        ch.subscribe(2, "a").unwrap();
        assert_eq!(
            ch.unsubscribe(1, "b"),
            Err(SubscribeError::CHANNEL_NOT_FOUND)
        );
        ch.unsubscribe(1, "a").unwrap();
        assert_eq!(
            ch.unsubscribe(1, "a"),
            Err(SubscribeError::CHANNEL_NOT_FOUND)
        );
        assert_eq!(ch.subscribers("a"), vec![2]);
        ch.remove_connection(2);
        assert!(ch.subscribers("a").is_empty());
        assert!(ch.by_channel.is_empty() && ch.by_conn.is_empty());
    }
}
