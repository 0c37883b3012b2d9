//! Remote logging over the lossy link: a device logs through the core's `LogShipper` while
//! the link loses, duplicates and reorders frames, connections are cut and reset, and the
//! server restarts (losing every batch it had not committed yet, keeping its store). The
//! server stores batches like the host: dedup on `(boot_id, seq)`, ack once stored.
//!
//! Whatever happens, once the trouble stops and the device has settled, every record it
//! logged is in the store exactly once or counted in a gap the server received, the store
//! holds each boot's records in sequence order, and the device's own counters agree.

use std::collections::{BTreeMap, HashSet};

use sentelite_core::log::{
    BATCH_EVENT, BatchId, BreakerConfig, FilterConfig, Level, LevelSet, LogConfig, LogShipper,
    Logged, NewRecord, Overflow, Pushed, QueueConfig,
};
use sentelite_core::{
    Duration, Frame, Instant, Payload, RequestEnd, RequestId, SessionEvent, Status,
};
use sentelite_sim::rng::SimRng;
use sentelite_sim::{LinkConfig, Observed, Pair, ReplyMode, Side};

use crate::common::*;

/// The client's boot id in every scenario here (the sim's default client config).
const BOOT: u32 = 0;
/// How long the server takes to commit a batch: long enough for restarts and cuts to fall
/// between storing and acking.
const COMMIT: Duration = Duration::from_millis(30);
/// Simulation step between the device's looks at the session.
const TICK: Duration = Duration::from_millis(10);

/// The device: a `LogShipper` driven the way the host driver drives it (one batch request in
/// flight, its `End(OK)` the ack, any other end a failure, a closed connection a resend).
struct Device {
    shipper: LogShipper<Vec<u8>>,
    /// The batch request in flight and the batch it carries.
    batch: Option<(RequestId, BatchId)>,
    /// Observations of the pair already looked at.
    seen: usize,
    /// Every sequence number used, with the record's level and message.
    logged: BTreeMap<u32, (Level, String)>,
    buf: Vec<u8>,
    counter: u64,
}

impl Device {
    fn new(queue_bytes: usize, queue: QueueConfig) -> Self {
        let config = LogConfig {
            filter: FilterConfig {
                levels: LevelSet::ALL,
                ..FilterConfig::default()
            },
            queue,
            breaker: BreakerConfig {
                failures_to_open: 3,
                cool_down: Duration::from_millis(500),
            },
            batch_size: 16,
            batch_timeout: Duration::from_millis(200),
            fallback_to_local: false,
        };
        Self {
            shipper: LogShipper::new(vec![0; queue_bytes], config, 0),
            batch: None,
            seen: 0,
            logged: BTreeMap::new(),
            buf: vec![0; 4096],
            counter: 0,
        }
    }

    fn log(&mut self, now: Instant, level: Level, seed: u64) {
        self.counter += 1;
        let message = format!("reading {} out of range", self.counter);
        let logged = self.shipper.log(
            now,
            &NewRecord {
                time_ms: now.as_millis(),
                level,
                namespace: "sim.sensor",
                id: Some("sim.sensor/range"),
                message: &message,
                data: &[],
            },
        );
        let seq = match logged {
            Logged::Queued(Pushed::Queued { seq, .. } | Pushed::Dropped { seq }) => seq,
            other => panic!("seed {seed}: no filter and no blocking, yet {other:?}"),
        };
        assert!(
            self.logged.insert(seq, (level, message)).is_none(),
            "seed {seed}: sequence number {seq} used twice"
        );
    }

    /// Feeds the session's news to the shipper, then sends a batch if one is due.
    fn sync(&mut self, p: &mut Pair) {
        let records = p.records();
        for r in &records[self.seen..] {
            if r.side != Side::Client {
                continue;
            }
            match &r.what {
                Observed::Event(SessionEvent::Opened { .. }) => {
                    self.batch = None;
                    self.shipper.on_connected(r.at);
                }
                Observed::Event(SessionEvent::Closed { .. }) => {
                    self.batch = None;
                    self.shipper.on_disconnected();
                }
                Observed::Event(SessionEvent::RequestEnded { id, end }) => {
                    self.ended(r.at, *id, *end == RequestEnd::Completed(Status::OK));
                }
                Observed::Frame(f) => {
                    if let Frame::End(end) = f.frame() {
                        self.ended(r.at, end.id, end.status == Status::OK);
                    }
                }
                _ => {}
            }
        }
        self.seen = records.len();
        if self.batch.is_some() || !p.client.is_open() {
            return;
        }
        let now = p.now();
        let Some(ready) = self.shipper.poll_batch(now, &mut self.buf) else {
            return;
        };
        let payload = self.buf[..ready.len].to_vec();
        match p.client_request(
            BATCH_EVENT,
            Payload::Bytes(&payload),
            Some(Duration::from_secs(2)),
        ) {
            Ok(id) => self.batch = Some((id, ready.id)),
            Err(_) => {
                self.shipper.on_failed(now, ready.id);
            }
        }
    }

    fn ended(&mut self, now: Instant, id: RequestId, ok: bool) {
        let Some((_, batch)) = self.batch.filter(|(request, _)| *request == id) else {
            return;
        };
        self.batch = None;
        if ok {
            self.shipper.on_ack(batch);
        } else {
            self.shipper.on_failed(now, batch);
        }
    }

    fn settled(&self) -> bool {
        self.shipper.queue().is_empty() && self.shipper.queue().pending_gap().is_none()
    }
}

/// One tick of device life: maybe log a few records, then let `TICK` pass.
fn live(p: &mut Pair, dev: &mut Device, rng: &mut SimRng, seed: u64, per_tick: f64) {
    if rng.chance(per_tick) {
        for _ in 0..=rng.below_or_equal(2) {
            let level = Level::ALL[rng.below_or_equal(6) as usize];
            dev.log(p.now(), level, seed);
        }
    }
    p.run_for(TICK);
    dev.sync(p);
}

/// Random trouble, now and then: a cut for a while, a reset, a server restart with an outage.
fn trouble(p: &mut Pair, dev: &mut Device, rng: &mut SimRng, seed: u64, per_tick: f64) {
    match rng.below_or_equal(3) {
        0 => {
            p.cut_link();
            let outage = rng.below_or_equal(300) as usize;
            for _ in 0..outage {
                live(p, dev, rng, seed, per_tick);
            }
            p.restore_link();
        }
        1 => p.disconnect_transport(),
        _ => restart(p, dev, rng, seed, per_tick),
    }
}

/// The server restarts and stays away for up to three seconds.
fn restart(p: &mut Pair, dev: &mut Device, rng: &mut SimRng, seed: u64, per_tick: f64) {
    p.restart_server();
    p.behaviour.refuse_connections = true;
    for _ in 0..rng.below_or_equal(300) {
        live(p, dev, rng, seed, per_tick);
    }
    p.behaviour.refuse_connections = false;
}

/// Ends the trouble and waits (bounded) until every record was acked or reported dropped.
fn settle(p: &mut Pair, dev: &mut Device, seed: u64) {
    p.set_link(LinkConfig::clean(ms(10), seed));
    p.restore_link();
    p.behaviour.refuse_connections = false;
    let limit = p.now() + Duration::from_secs(120);
    while !dev.settled() && p.now() < limit {
        p.run_for(TICK);
        dev.sync(p);
    }
    assert!(
        dev.settled(),
        "seed {seed}: still {} records queued (gap pending: {:?}) after the trouble ended; client {:?}",
        dev.shipper.queue().len(),
        dev.shipper.queue().pending_gap(),
        p.client.state()
    );
}

/// What the store and the device's counters must say once everything settled. Returns the
/// number of records reported dropped.
fn assert_accounted(p: &Pair, dev: &Device, seed: u64) -> u64 {
    let store = &p.log_store;
    let next_seq = dev.shipper.queue().next_seq();
    assert_eq!(
        dev.logged.keys().copied().collect::<Vec<_>>(),
        (0..next_seq).collect::<Vec<_>>(),
        "seed {seed}: the device numbered its records without holes"
    );

    // Stored once, as logged, in order.
    let mut stored = HashSet::new();
    let mut last = None;
    for r in store.records() {
        assert_eq!(r.boot_id, BOOT, "seed {seed}");
        assert!(
            stored.insert(r.seq),
            "seed {seed}: record {} stored twice",
            r.seq
        );
        assert!(
            last.is_none_or(|l| l < r.seq),
            "seed {seed}: record {} stored after {last:?}",
            r.seq
        );
        last = Some(r.seq);
        let (level, message) = dev
            .logged
            .get(&r.seq)
            .unwrap_or_else(|| panic!("seed {seed}: record {} was never logged", r.seq));
        assert_eq!((r.level, &r.message), (*level, message), "seed {seed}");
    }

    // Everything else is in a gap, and the gaps count exactly the missing records.
    let missing: Vec<u32> = (0..next_seq).filter(|s| !stored.contains(s)).collect();
    let gaps = store.gaps();
    let mut by_level = [0u64; 7];
    for &seq in &missing {
        assert!(
            gaps.iter()
                .any(|(_, g)| g.first_seq <= seq && seq <= g.last_seq),
            "seed {seed}: record {seq} neither stored nor in a gap"
        );
        by_level[dev.logged[&seq].0.index()] += 1;
    }
    let mut reported = [0u64; 7];
    for (boot, g) in gaps {
        assert_eq!(*boot, BOOT, "seed {seed}");
        assert_eq!(
            g.count,
            g.by_level.iter().sum::<u32>(),
            "seed {seed}: gap {g:?}"
        );
        for (sum, n) in reported.iter_mut().zip(g.by_level) {
            *sum += u64::from(n);
        }
    }
    assert_eq!(
        reported, by_level,
        "seed {seed}: gaps count the missing records per level"
    );

    let stats = dev.shipper.queue_stats();
    assert_eq!(stats.dropped, missing.len() as u64, "seed {seed}");
    assert_eq!(stats.acked, stored.len() as u64, "seed {seed}");
    missing.len() as u64
}

/// A lossy, duplicating link that reorders on every other seed.
fn rough_link(seed: u64) -> LinkConfig {
    LinkConfig {
        duplicate: [0.0, 0.03, 0.1][(seed / 3 % 3) as usize],
        reorder: seed % 2 == 1,
        ..LinkConfig::lossy(
            ms(5 + seed % 20),
            ms(seed % 10),
            [0.0, 0.02, 0.05][(seed % 3) as usize],
            seed,
        )
    }
}

/// Runs one seed: a minute of logging through trouble, a server restart at 20 s whatever
/// else happens, then settling.
fn run_seed(seed: u64, queue_bytes: usize, queue: QueueConfig, per_tick: f64) -> (Pair, Device) {
    let mut rng = SimRng::new(seed ^ 0x10_6e55);
    let mut p = pair(seed, rough_link(seed));
    p.behaviour.replies = ReplyMode::StoreLogs { delay: COMMIT };
    let mut dev = Device::new(queue_bytes, queue);
    let mut restarted = false;
    let end = Instant::ZERO + Duration::from_secs(60);
    while p.now() < end {
        live(&mut p, &mut dev, &mut rng, seed, per_tick);
        if !restarted && p.now() >= Instant::ZERO + Duration::from_secs(20) {
            restarted = true;
            restart(&mut p, &mut dev, &mut rng, seed, per_tick);
        } else if rng.chance(0.004) {
            trouble(&mut p, &mut dev, &mut rng, seed, per_tick);
        }
    }
    settle(&mut p, &mut dev, seed);
    (p, dev)
}

#[test]
fn with_room_for_every_outage_each_record_is_stored_exactly_once() {
    let (mut records, mut duplicates) = (0usize, 0u64);
    for seed in 0..24u64 {
        let (p, dev) = run_seed(seed, 256 * 1024, QueueConfig::default(), 0.1);
        let dropped = assert_accounted(&p, &dev, seed);
        assert_eq!(dropped, 0, "seed {seed}: the queue had room, nothing drops");
        records += p.log_store.records().len();
        duplicates += p.log_store.duplicates;
    }
    assert!(records > 24 * 500, "only {records} records stored");
    assert!(
        duplicates > 0,
        "no batch was ever resent after being stored: the scenario missed the lost-ack case"
    );
}

#[test]
fn a_queue_too_small_for_the_outage_reports_every_drop_in_a_gap() {
    let mut dropped = 0;
    for seed in 0..24u64 {
        let queue = QueueConfig {
            max_records: 64,
            overflow: if seed % 3 == 2 {
                Overflow::DropNewest
            } else {
                Overflow::DropOldest
            },
            evict_lower_levels_first: seed % 3 == 1,
        };
        let (p, dev) = run_seed(seed, 2048, queue, 0.15);
        let n = assert_accounted(&p, &dev, seed);
        assert!(n > 0, "seed {seed}: the outage overflowed nothing");
        assert!(!p.log_store.gaps().is_empty(), "seed {seed}");
        dropped += n;
    }
    assert!(dropped > 24 * 20, "only {dropped} records dropped");
}
