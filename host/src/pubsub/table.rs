//! The channel table: which connections joined which channel, under per-connection and
//! per-channel limits.
//!
//! Built for big channels and mass disconnects: every change is O(1) in the channel's size
//! (members sit in an index map and leave by swap-remove), and publishing reads an
//! `Arc<[M]>` snapshot of the members, so the caller holds the table's lock only long enough
//! to clone one `Arc` and does the per-subscriber work outside it. The snapshot is rebuilt on
//! the first publish after a change, so N joins or leaves in a row cost O(N) in total, not
//! O(N²). Freeing a snapshot is O(members) too, so a change does not free it: it is handed to
//! the next publish, which frees it after releasing the lock.
//!
//! The table only uses `std`, `indexmap` and the core's `SubscribeError`, so the fan-out
//! benchmark can compile it as it is.

use std::collections::HashMap;
use std::sync::Arc;

use indexmap::IndexMap;
use sentelite_core::frame::SubscribeError;

use crate::ConnectionId;

/// What the table keeps for each subscriber: anything cheap to clone that knows its
/// connection.
pub(crate) trait Member: Clone {
    /// The connection this member stands for.
    fn connection_id(&self) -> ConnectionId;
}

impl Member for ConnectionId {
    fn connection_id(&self) -> ConnectionId {
        *self
    }
}

/// Limits applied to subscriptions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) per_conn: usize,
    pub(crate) per_channel: usize,
    pub(crate) name_bytes: usize,
}

/// Checks a channel name against the limits.
pub(crate) fn valid_name(name: &str, max_bytes: usize) -> bool {
    !name.is_empty() && name.len() <= max_bytes
}

/// One channel's members, in an order that changes when members leave.
#[derive(Debug)]
struct Members<M> {
    by_conn: IndexMap<ConnectionId, M>,
    /// The members as publishing sees them; `None` after a change until the next publish.
    snapshot: Option<Arc<[M]>>,
    /// The snapshot a change replaced, for the next publish to free outside the lock.
    retired: Option<Arc<[M]>>,
}

impl<M> Members<M> {
    fn changed(&mut self) {
        if let Some(old) = self.snapshot.take() {
            self.retired = Some(old);
        }
    }
}

/// What a publish gets from the table: the members to send to, and a replaced snapshot that
/// the caller should drop once it released the table's lock.
pub(crate) struct Snapshot<M> {
    pub(crate) members: Arc<[M]>,
    pub(crate) retired: Option<Arc<[M]>>,
}

#[derive(Debug)]
pub(crate) struct ChannelTable<M> {
    limits: Limits,
    channels: HashMap<Arc<str>, Members<M>>,
    /// The channels each connection joined; at most `limits.per_conn` each, so scanning one
    /// list is cheap.
    joined: HashMap<ConnectionId, Vec<Arc<str>>>,
}

impl<M: Member> ChannelTable<M> {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            limits,
            channels: HashMap::new(),
            joined: HashMap::new(),
        }
    }

    /// Joins `member` to `channel`. Joining a channel already joined succeeds again.
    pub(crate) fn subscribe(&mut self, member: &M, channel: &str) -> Result<(), SubscribeError> {
        if !valid_name(channel, self.limits.name_bytes) {
            return Err(SubscribeError::INVALID_CHANNEL);
        }
        let conn = member.connection_id();
        let joined = self.joined.get(&conn).map_or(&[][..], Vec::as_slice);
        if joined.iter().any(|c| &**c == channel) {
            return Ok(());
        }
        if joined.len() >= self.limits.per_conn {
            return Err(SubscribeError::MAX_SUBSCRIPTIONS_PER_CONN);
        }
        let size = self.channels.get(channel).map_or(0, |m| m.by_conn.len());
        if size >= self.limits.per_channel {
            return Err(SubscribeError::MAX_SUBSCRIBERS_REACHED);
        }
        let name: Arc<str> = match self.channels.get_key_value(channel) {
            Some((name, _)) => name.clone(),
            None => Arc::from(channel),
        };
        let members = self
            .channels
            .entry(name.clone())
            .or_insert_with(|| Members {
                by_conn: IndexMap::new(),
                snapshot: None,
                retired: None,
            });
        members.by_conn.insert(conn, member.clone());
        members.changed();
        self.joined.entry(conn).or_default().push(name);
        Ok(())
    }

    /// Leaves a channel; `CHANNEL_NOT_FOUND` if `conn` had not joined it.
    pub(crate) fn unsubscribe(
        &mut self,
        conn: ConnectionId,
        channel: &str,
    ) -> Result<(), SubscribeError> {
        let Some(joined) = self.joined.get_mut(&conn) else {
            return Err(SubscribeError::CHANNEL_NOT_FOUND);
        };
        let Some(pos) = joined.iter().position(|c| &**c == channel) else {
            return Err(SubscribeError::CHANNEL_NOT_FOUND);
        };
        joined.swap_remove(pos);
        if joined.is_empty() {
            self.joined.remove(&conn);
        }
        self.leave(conn, channel);
        Ok(())
    }

    /// Drops every subscription of a closed connection: O(its subscriptions).
    pub(crate) fn remove_connection(&mut self, conn: ConnectionId) {
        for channel in self.joined.remove(&conn).unwrap_or_default() {
            self.leave(conn, &channel);
        }
    }

    /// The members of `channel` for a publish, `None` when nobody joined it. Cheap unless
    /// the membership changed since the last call (then O(members), once).
    pub(crate) fn snapshot(&mut self, channel: &str) -> Option<Snapshot<M>> {
        let members = self.channels.get_mut(channel)?;
        let snapshot = members
            .snapshot
            .get_or_insert_with(|| members.by_conn.values().cloned().collect());
        Some(Snapshot {
            members: snapshot.clone(),
            retired: members.retired.take(),
        })
    }

    /// The connections that joined `channel`, in no particular order.
    pub(crate) fn subscribers(&self, channel: &str) -> Vec<ConnectionId> {
        self.channels
            .get(channel)
            .map(|m| m.by_conn.keys().copied().collect())
            .unwrap_or_default()
    }

    /// The channels `conn` joined.
    pub(crate) fn channels_of(&self, conn: ConnectionId) -> Vec<Arc<str>> {
        self.joined.get(&conn).cloned().unwrap_or_default()
    }

    /// O(1): the index map moves its last member into the hole.
    fn leave(&mut self, conn: ConnectionId, channel: &str) {
        if let Some(members) = self.channels.get_mut(channel) {
            if members.by_conn.swap_remove(&conn).is_some() {
                members.changed();
            }
            if members.by_conn.is_empty() {
                self.channels.remove(channel);
            }
        }
    }

    /// True when no channel has members and no connection has subscriptions.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.joined.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn channels() -> ChannelTable<ConnectionId> {
        ChannelTable::new(Limits {
            per_conn: 2,
            per_channel: 2,
            name_bytes: 8,
        })
    }

    fn sorted(mut ids: Vec<ConnectionId>) -> Vec<ConnectionId> {
        ids.sort_unstable();
        ids
    }

    fn snapshot_ids(ch: &mut ChannelTable<ConnectionId>, channel: &str) -> Vec<ConnectionId> {
        sorted(
            ch.snapshot(channel)
                .map(|s| s.members.to_vec())
                .unwrap_or_default(),
        )
    }

    #[test]
    fn limits_give_typed_errors() {
        let mut ch = channels();
        assert_eq!(ch.subscribe(&1, ""), Err(SubscribeError::INVALID_CHANNEL));
        assert_eq!(
            ch.subscribe(&1, "much-too-long"),
            Err(SubscribeError::INVALID_CHANNEL)
        );
        ch.subscribe(&1, "a").unwrap();
        ch.subscribe(&1, "a").unwrap();
        ch.subscribe(&1, "b").unwrap();
        assert_eq!(
            ch.subscribe(&1, "c"),
            Err(SubscribeError::MAX_SUBSCRIPTIONS_PER_CONN)
        );
        ch.subscribe(&2, "a").unwrap();
        assert_eq!(
            ch.subscribe(&3, "a"),
            Err(SubscribeError::MAX_SUBSCRIBERS_REACHED)
        );
        assert_eq!(sorted(ch.subscribers("a")), vec![1, 2]);
    }

    #[test]
    fn unsubscribe_and_close_forget_the_connection() {
        let mut ch = channels();
        ch.subscribe(&1, "a").unwrap();
        ch.subscribe(&2, "a").unwrap();
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
        assert!(ch.is_empty());
    }

    #[test]
    fn snapshots_are_shared_until_the_membership_changes() {
        let mut ch = channels();
        assert!(ch.snapshot("a").is_none());
        ch.subscribe(&1, "a").unwrap();
        let first = ch.snapshot("a").unwrap();
        assert!(first.retired.is_none(), "nothing to free yet");
        let again = ch.snapshot("a").unwrap();
        assert!(
            Arc::ptr_eq(&first.members, &again.members),
            "no change, no rebuild"
        );
        ch.subscribe(&2, "a").unwrap();
        ch.subscribe(&2, "b").unwrap();
        let after_join = ch.snapshot("a").unwrap();
        assert_eq!(&*first.members, &[1], "a taken snapshot never changes");
        // The replaced snapshot goes to the publish, once.
        let retired = after_join.retired.expect("the join replaced a snapshot");
        assert!(Arc::ptr_eq(&retired, &first.members));
        assert!(ch.snapshot("a").unwrap().retired.is_none());
        assert_eq!(snapshot_ids(&mut ch, "a"), vec![1, 2]);
        ch.remove_connection(1);
        assert_eq!(snapshot_ids(&mut ch, "a"), vec![2]);
        assert_eq!(after_join.members.len(), 2);
        // Leaving a channel one never joined changes nothing.
        let before = ch.snapshot("a").unwrap();
        ch.remove_connection(7);
        let after = ch.snapshot("a").unwrap();
        assert!(Arc::ptr_eq(&before.members, &after.members));
        assert!(after.retired.is_none());
    }

    #[test]
    fn swap_remove_keeps_every_other_member() {
        let mut ch = ChannelTable::new(Limits {
            per_conn: 4,
            per_channel: 1000,
            name_bytes: 8,
        });
        for id in 0..100 {
            ch.subscribe(&id, "big").unwrap();
        }
        for id in (0..100).step_by(3) {
            ch.remove_connection(id);
        }
        let left: Vec<_> = (0..100).filter(|id| id % 3 != 0).collect();
        assert_eq!(snapshot_ids(&mut ch, "big"), left);
        assert_eq!(sorted(ch.subscribers("big")), left);
    }

    /// The simplest correct table: sets, no limits on size beyond the checks.
    #[derive(Default)]
    struct Model {
        by_channel: BTreeMap<String, BTreeSet<ConnectionId>>,
    }

    impl Model {
        fn joined(&self, conn: ConnectionId) -> usize {
            self.by_channel
                .values()
                .filter(|m| m.contains(&conn))
                .count()
        }

        fn subscribe(
            &mut self,
            l: Limits,
            conn: ConnectionId,
            ch: &str,
        ) -> Result<(), SubscribeError> {
            if !valid_name(ch, l.name_bytes) {
                return Err(SubscribeError::INVALID_CHANNEL);
            }
            if self.by_channel.get(ch).is_some_and(|m| m.contains(&conn)) {
                return Ok(());
            }
            if self.joined(conn) >= l.per_conn {
                return Err(SubscribeError::MAX_SUBSCRIPTIONS_PER_CONN);
            }
            if self.by_channel.get(ch).map_or(0, BTreeSet::len) >= l.per_channel {
                return Err(SubscribeError::MAX_SUBSCRIBERS_REACHED);
            }
            self.by_channel
                .entry(ch.to_owned())
                .or_default()
                .insert(conn);
            Ok(())
        }

        fn unsubscribe(&mut self, conn: ConnectionId, ch: &str) -> Result<(), SubscribeError> {
            let removed = self.by_channel.get_mut(ch).is_some_and(|m| m.remove(&conn));
            self.by_channel.retain(|_, m| !m.is_empty());
            if removed {
                Ok(())
            } else {
                Err(SubscribeError::CHANNEL_NOT_FOUND)
            }
        }

        fn remove_connection(&mut self, conn: ConnectionId) {
            for members in self.by_channel.values_mut() {
                members.remove(&conn);
            }
            self.by_channel.retain(|_, m| !m.is_empty());
        }
    }

    /// A small deterministic generator, so the model test needs no extra crate.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    #[test]
    fn behaves_like_the_reference_model() {
        let limits = Limits {
            per_conn: 3,
            per_channel: 5,
            name_bytes: 2,
        };
        let names = ["a", "b", "c", "d", "toolong", ""];
        for seed in 1..=200u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut table = ChannelTable::new(limits);
            let mut model = Model::default();
            for step in 0..300 {
                let conn = rng.below(8);
                let ch = names[rng.below(names.len() as u64) as usize];
                match rng.below(10) {
                    0..=4 => assert_eq!(
                        table.subscribe(&conn, ch),
                        model.subscribe(limits, conn, ch),
                        "seed {seed} step {step}: subscribe {conn} {ch}"
                    ),
                    5..=7 => assert_eq!(
                        table.unsubscribe(conn, ch),
                        model.unsubscribe(conn, ch),
                        "seed {seed} step {step}: unsubscribe {conn} {ch}"
                    ),
                    8 => {
                        table.remove_connection(conn);
                        model.remove_connection(conn);
                    }
                    _ => {}
                }
                for name in &names[..4] {
                    let expected: Vec<_> = model
                        .by_channel
                        .get(*name)
                        .map(|m| m.iter().copied().collect())
                        .unwrap_or_default();
                    assert_eq!(sorted(table.subscribers(name)), expected, "seed {seed}");
                    assert_eq!(snapshot_ids(&mut table, name), expected, "seed {seed}");
                }
                for c in 0..8 {
                    assert_eq!(table.channels_of(c).len(), model.joined(c), "seed {seed}");
                }
            }
            for c in 0..8 {
                table.remove_connection(c);
            }
            assert!(table.is_empty(), "seed {seed}: nothing left behind");
        }
    }
}
