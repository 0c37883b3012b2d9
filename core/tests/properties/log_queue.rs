//! The log queue under arbitrary pushes, batches, acks, refusals and disconnects: whatever
//! happens, every sequence number handed out is delivered exactly once or counted in a gap
//! exactly once, delivered records keep their order, and the bounds hold at every step.

use proptest::prelude::*;
use sentelite_core::log::{Gap, Level, LogQueue, NewRecord, Overflow, Pushed, QueueConfig};

#[derive(Debug, Clone)]
enum Op {
    Push {
        level: u8,
        len: usize,
    },
    Batch {
        max_records: usize,
        max_bytes: usize,
    },
    Ack,
    /// The server stores the batch but its ack is lost with the connection.
    StoreThenDrop,
    StaleAck,
    Requeue,
    Disconnect,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..7, 0usize..48).prop_map(|(level, len)| Op::Push { level, len }),
        2 => (1usize..6, 16usize..200)
            .prop_map(|(max_records, max_bytes)| Op::Batch { max_records, max_bytes }),
        2 => Just(Op::Ack),
        1 => Just(Op::StoreThenDrop),
        1 => Just(Op::StaleAck),
        1 => Just(Op::Requeue),
        1 => Just(Op::Disconnect),
    ]
}

fn overflow() -> impl Strategy<Value = Overflow> {
    prop_oneof![
        Just(Overflow::DropOldest),
        Just(Overflow::DropNewest),
        Just(Overflow::Block)
    ]
}

/// What the server side has stored, deduplicated as the real server does: records by
/// sequence number, gaps by their first sequence number.
#[derive(Default)]
struct Server {
    delivered: Vec<u32>,
    seen: std::collections::BTreeSet<u32>,
    gaps: std::collections::BTreeMap<u32, Gap>,
    lost: u64,
}

impl Server {
    fn store(&mut self, seqs: Vec<u32>, gap: Option<Gap>) {
        for seq in seqs {
            if self.seen.insert(seq) {
                self.delivered.push(seq);
            }
        }
        if let Some(gap) = gap {
            assert_eq!(
                gap.by_level.iter().map(|&n| u64::from(n)).sum::<u64>(),
                u64::from(gap.count)
            );
            assert!(gap.first_seq <= gap.last_seq);
            match self.gaps.get(&gap.first_seq) {
                Some(old) => assert_eq!(*old, gap, "a repeated gap is identical"),
                None => {
                    self.lost += u64::from(gap.count);
                    self.gaps.insert(gap.first_seq, gap);
                }
            }
        }
    }
}

impl Server {
    fn take(&mut self, q: &mut LogQueue<&mut [u8]>, max_records: usize, max_bytes: usize) -> bool {
        let Some(batch) = q.begin_batch(max_records, max_bytes) else {
            return false;
        };
        assert!(batch.len() <= max_records);
        let id = batch.id;
        let seqs: Vec<u32> = batch.records().map(|r| r.seq).collect();
        assert_eq!(seqs.len(), batch.len(), "every stored record decodes");
        let gap = batch.gap;
        assert!(q.ack(id));
        self.store(seqs, gap);
        true
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_record_is_delivered_once_or_reported_lost(
        capacity in 40usize..400,
        max_records in 1usize..12,
        overflow in overflow(),
        evict_lower_levels_first in any::<bool>(),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let mut buf = vec![0u8; capacity];
        let config = QueueConfig { max_records, overflow, evict_lower_levels_first };
        let mut q = LogQueue::new(buf.as_mut_slice(), config, 0);
        let mut server = Server::default();
        let text = "m".repeat(48);
        let mut stale = None;
        for (time, op) in ops.into_iter().enumerate() {
            match op {
                Op::Push { level, len } => {
                    let record = NewRecord {
                        time_ms: time as u64,
                        level: Level::from_u8(level).unwrap(),
                        namespace: "ns",
                        id: (len % 2 == 0).then_some("ns/id"),
                        message: &text[..len],
                        data: &[],
                    };
                    let before = q.next_seq();
                    match q.push(&record) {
                        Ok(Pushed::Queued { seq, .. } | Pushed::Dropped { seq }) => {
                            prop_assert_eq!(seq, before);
                            prop_assert_eq!(q.next_seq(), before + 1);
                        }
                        Err(_) => {
                            prop_assert_eq!(overflow, Overflow::Block);
                            prop_assert_eq!(q.next_seq(), before);
                        }
                    }
                }
                Op::Batch { max_records, max_bytes } => {
                    if let Some(batch) = q.begin_batch(max_records, max_bytes) {
                        stale = Some(batch.id);
                    }
                }
                Op::Ack => {
                    if let Some(id) = q.in_flight() {
                        let batch = q.current_batch().unwrap();
                        let seqs: Vec<u32> = batch.records().map(|r| r.seq).collect();
                        let gap = batch.gap;
                        prop_assert!(q.ack(id));
                        server.store(seqs, gap);
                    }
                }
                Op::StoreThenDrop => {
                    if let Some(batch) = q.current_batch() {
                        let seqs: Vec<u32> = batch.records().map(|r| r.seq).collect();
                        server.store(seqs, batch.gap);
                        q.on_disconnect();
                    }
                }
                Op::StaleAck => {
                    if let Some(id) = stale
                        && q.in_flight() != Some(id)
                    {
                        let len = q.len();
                        prop_assert!(!q.ack(id));
                        prop_assert_eq!(q.len(), len);
                    }
                }
                Op::Requeue => {
                    if let Some(id) = q.in_flight() {
                        prop_assert!(q.requeue(id));
                    }
                }
                Op::Disconnect => q.on_disconnect(),
            }
            prop_assert!(q.bytes_used() <= capacity);
            prop_assert!(q.len() <= max_records);
            prop_assert!(q.unsent() <= q.len());
        }
        // Drain everything that is left, as a reconnect would.
        q.on_disconnect();
        let mut rounds = 0;
        while server.take(&mut q, usize::MAX, usize::MAX) {
            rounds += 1;
            prop_assert!(rounds < 1000);
        }
        prop_assert!(q.is_empty() && q.pending_gap().is_none());
        let handed_out = u64::from(q.next_seq());
        prop_assert!(server.delivered.windows(2).all(|w| w[0] < w[1]), "order kept");
        prop_assert_eq!(server.delivered.len() as u64 + server.lost, handed_out);
        prop_assert_eq!(q.stats().dropped, server.lost);
        // Every handed-out number is either stored or inside exactly one gap's range.
        for seq in 0..q.next_seq() {
            let in_gaps = server
                .gaps
                .values()
                .filter(|g| g.first_seq <= seq && seq <= g.last_seq)
                .count();
            prop_assert!(server.seen.contains(&seq) || in_gaps >= 1, "seq {} vanished", seq);
        }
    }

    #[test]
    fn nothing_is_dropped_while_there_is_room(
        pushes in prop::collection::vec((0u8..7, 0usize..32), 1..40),
        batch_every in 1usize..8,
    ) {
        let mut buf = vec![0u8; 4096];
        let config = QueueConfig { max_records: 64, ..QueueConfig::default() };
        let mut q = LogQueue::new(buf.as_mut_slice(), config, 7);
        let mut server = Server::default();
        let text = "m".repeat(32);
        for (i, (level, len)) in pushes.iter().enumerate() {
            let record = NewRecord {
                time_ms: i as u64,
                level: Level::from_u8(*level).unwrap(),
                namespace: "ns",
                id: None,
                message: &text[..*len],
                data: b"\xa0",
            };
            let pushed = q.push(&record);
            prop_assert!(matches!(pushed, Ok(Pushed::Queued { evicted: 0, .. })), "dropped with room: {:?}", pushed);
            if i % batch_every == 0 {
                server.take(&mut q, 3, usize::MAX);
            }
        }
        while server.take(&mut q, 3, usize::MAX) {}
        prop_assert_eq!(server.lost, 0);
        let expected: Vec<u32> = (7..7 + pushes.len() as u32).collect();
        prop_assert_eq!(server.delivered, expected);
    }
}
