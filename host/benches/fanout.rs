//! Channel fan-out with 10,000 subscribers: the channel table of this build against the one
//! it replaced (kept below as the baseline), both driven the way the server drives them.
//!
//! - **publish**: one message to every subscriber. "Locks held" is the time spent inside
//!   the server-wide locks (channel table, registry), which every other publish, subscribe
//!   and disconnect on the server waits for; "total" adds the per-subscriber queueing, done
//!   behind one per-connection lock each (here a counter behind a mutex).
//! - **first publish after a change**: the new table rebuilds its snapshot once.
//! - **leave**: one subscriber leaves the big channel, right after a publish (which built a
//!   snapshot) and with no publish in between.
//! - **mass disconnect**: all 10,000 connections close one after the other.
//!
//! `cargo bench -p sentelite-host --bench fanout`
//! (`SENTELITE_BENCH_SUBSCRIBERS` sets N, 100..=100000, default 10000.)

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The table's own `crate::ConnectionId`.
type ConnectionId = u64;

#[allow(dead_code)]
#[path = "../src/pubsub/table.rs"]
mod table;

use table::{ChannelTable, Limits, Member};

/// Stands in for a connection's registry entry: its id and its queue.
struct Subscriber {
    id: ConnectionId,
    queue: Mutex<u64>,
}

impl Subscriber {
    fn send(&self) {
        *self.queue.lock().unwrap() += 1;
    }
}

#[derive(Clone)]
struct Entry(Arc<Subscriber>);

impl Member for Entry {
    fn connection_id(&self) -> ConnectionId {
        self.0.id
    }
}

/// The channel table as it was: vectors of ids, leave by `retain`, publish copies the id
/// list and looks every id up in the registry.
#[derive(Default)]
struct Baseline {
    by_channel: HashMap<Arc<str>, Vec<ConnectionId>>,
    by_conn: HashMap<ConnectionId, Vec<Arc<str>>>,
}

impl Baseline {
    fn subscribe(&mut self, conn: ConnectionId, channel: &str) {
        let name: Arc<str> = match self.by_channel.get_key_value(channel) {
            Some((name, _)) => name.clone(),
            None => Arc::from(channel),
        };
        self.by_channel.entry(name.clone()).or_default().push(conn);
        self.by_conn.entry(conn).or_default().push(name);
    }

    fn unsubscribe(&mut self, conn: ConnectionId, channel: &str) {
        if let Some(joined) = self.by_conn.get_mut(&conn) {
            joined.retain(|c| &**c != channel);
        }
        self.leave(conn, channel);
    }

    fn remove_connection(&mut self, conn: ConnectionId) {
        for channel in self.by_conn.remove(&conn).unwrap_or_default() {
            self.leave(conn, &channel);
        }
    }

    fn subscribers(&self, channel: &str) -> Vec<ConnectionId> {
        self.by_channel.get(channel).cloned().unwrap_or_default()
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

const CHANNEL: &str = "big";

struct World {
    registry: Mutex<HashMap<ConnectionId, Arc<Subscriber>>>,
    baseline: Mutex<Baseline>,
    table: Mutex<ChannelTable<Entry>>,
}

fn world(n: u64) -> World {
    let limits = Limits {
        per_conn: 32,
        per_channel: usize::MAX,
        name_bytes: 128,
    };
    let mut registry = HashMap::new();
    let mut baseline = Baseline::default();
    let mut table = ChannelTable::new(limits);
    for id in 0..n {
        let sub = Arc::new(Subscriber {
            id,
            queue: Mutex::new(0),
        });
        baseline.subscribe(id, CHANNEL);
        // Each connection also holds a channel of its own, as devices usually do.
        baseline.subscribe(id, &format!("own-{id}"));
        table.subscribe(&Entry(sub.clone()), CHANNEL).unwrap();
        table
            .subscribe(&Entry(sub.clone()), &format!("own-{id}"))
            .unwrap();
        registry.insert(id, sub);
    }
    World {
        registry: Mutex::new(registry),
        baseline: Mutex::new(baseline),
        table: Mutex::new(table),
    }
}

/// The old publish path: returns (time inside global locks, total time).
fn publish_baseline(w: &World) -> (Duration, Duration) {
    let start = Instant::now();
    let ids = w.baseline.lock().unwrap().subscribers(CHANNEL);
    let entries: Vec<_> = {
        let registry = w.registry.lock().unwrap();
        ids.into_iter()
            .filter_map(|id| registry.get(&id).cloned())
            .collect()
    };
    let locked = start.elapsed();
    for entry in &entries {
        entry.send();
    }
    (locked, start.elapsed())
}

/// The new publish path: returns (time inside global locks, total time).
fn publish_new(w: &World) -> (Duration, Duration) {
    let start = Instant::now();
    let snapshot = w.table.lock().unwrap().snapshot(CHANNEL).unwrap();
    let locked = start.elapsed();
    drop(snapshot.retired);
    let members = snapshot.members;
    for member in members.iter() {
        member.0.send();
    }
    (locked, start.elapsed())
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn fmt(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 10_000 {
        format!("{ns} ns")
    } else if ns < 10_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else {
        format!("{:.1} ms", ns as f64 / 1e6)
    }
}

fn row(what: &str, baseline: Duration, new: Duration) {
    let ratio = baseline.as_secs_f64() / new.as_secs_f64().max(1e-12);
    println!(
        "| {what} | {} | {} | {ratio:.0}x |",
        fmt(baseline),
        fmt(new)
    );
}

fn main() {
    let n = std::env::var("SENTELITE_BENCH_SUBSCRIBERS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(10_000)
        .clamp(100, 100_000);
    const PUBLISHES: usize = 200;
    const LEAVES: u64 = 1000;

    let w = world(n);
    // Warm up, and build the first snapshot.
    publish_baseline(&w);
    publish_new(&w);
    let (mut old_locked, mut old_total, mut new_locked, mut new_total) =
        (vec![], vec![], vec![], vec![]);
    for _ in 0..PUBLISHES {
        let (l, t) = publish_baseline(&w);
        old_locked.push(l);
        old_total.push(t);
        let (l, t) = publish_new(&w);
        new_locked.push(l);
        new_total.push(t);
    }

    // First publish after a membership change: the new table rebuilds its snapshot.
    let mut old_after_change = vec![];
    let mut new_after_change = vec![];
    for i in 0..PUBLISHES as u64 {
        let id = i % n;
        {
            let mut b = w.baseline.lock().unwrap();
            b.unsubscribe(id, CHANNEL);
            b.subscribe(id, CHANNEL);
        }
        old_after_change.push(publish_baseline(&w).0);
        {
            let mut t = w.table.lock().unwrap();
            t.unsubscribe(id, CHANNEL).unwrap();
            let sub = w.registry.lock().unwrap()[&id].clone();
            t.subscribe(&Entry(sub), CHANNEL).unwrap();
        }
        new_after_change.push(publish_new(&w).0);
    }

    // The first leave after a publish replaces the snapshot that publish built; timed on its
    // own, on the median of a few.
    let mut old_first_leave = vec![];
    let mut new_first_leave = vec![];
    for id in 0..20 {
        publish_baseline(&w);
        let mut b = w.baseline.lock().unwrap();
        let start = Instant::now();
        b.unsubscribe(id, CHANNEL);
        old_first_leave.push(start.elapsed());
        b.subscribe(id, CHANNEL);
        drop(b);
        publish_new(&w);
        let mut t = w.table.lock().unwrap();
        let start = Instant::now();
        t.unsubscribe(id, CHANNEL).unwrap();
        new_first_leave.push(start.elapsed());
        let sub = w.registry.lock().unwrap()[&id].clone();
        t.subscribe(&Entry(sub), CHANNEL).unwrap();
    }

    // Further leaves from the full channel (each re-joins outside the timing).
    let leaves = LEAVES.min(n);
    let mut old_leave = Duration::ZERO;
    let mut new_leave = Duration::ZERO;
    for id in 0..leaves {
        let mut b = w.baseline.lock().unwrap();
        let start = Instant::now();
        b.unsubscribe(id, CHANNEL);
        old_leave += start.elapsed();
        b.subscribe(id, CHANNEL);
        drop(b);
        let mut t = w.table.lock().unwrap();
        let start = Instant::now();
        t.unsubscribe(id, CHANNEL).unwrap();
        new_leave += start.elapsed();
        let sub = w.registry.lock().unwrap()[&id].clone();
        t.subscribe(&Entry(sub), CHANNEL).unwrap();
    }

    // Mass disconnect, in connection order (the old table's worst case is any order).
    let start = Instant::now();
    {
        let mut b = w.baseline.lock().unwrap();
        for id in 0..n {
            b.remove_connection(id);
        }
        assert!(b.by_channel.is_empty());
    }
    let old_mass = start.elapsed();
    let start = Instant::now();
    {
        let mut t = w.table.lock().unwrap();
        for id in 0..n {
            t.remove_connection(id);
        }
        assert!(black_box(t.subscribers(CHANNEL)).is_empty());
    }
    let new_mass = start.elapsed();

    println!("channel fan-out, {n} subscribers (medians of {PUBLISHES} publishes)\n");
    println!("| operation | baseline (old table) | this build | speedup |");
    println!("|---|---|---|---|");
    row(
        "publish: time in global locks",
        median(old_locked),
        median(new_locked),
    );
    row(
        "publish: total incl. queueing",
        median(old_total),
        median(new_total),
    );
    row(
        "first publish after a join/leave: time in global locks",
        median(old_after_change),
        median(new_after_change),
    );
    row(
        "first leave after a publish (replaces the snapshot)",
        median(old_first_leave),
        median(new_first_leave),
    );
    row(
        "one leave from the full channel, no publish in between",
        old_leave / leaves as u32,
        new_leave / leaves as u32,
    );
    row(
        &format!("mass disconnect of {n} (one global lock)"),
        old_mass,
        new_mass,
    );
}
