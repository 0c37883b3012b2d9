//! The simulated network between the two sessions: two one-way lanes that delay, lose,
//! duplicate and (optionally) reorder what is put on them, and can be cut or blackholed.
//!
//! Besides frames the lanes carry the transport's own signals (connect, accept, refuse,
//! close), so a connection's setup and teardown take time and can be lost to a cut link
//! exactly like its frames. Only frames are subject to random loss and duplication: the
//! transport's signals stand for TCP's handshake and FIN, which the real stack retransmits.

use sentelite_core::{Duration, Instant};

use crate::rng::SimRng;

/// How the simulated network treats frames. All randomness comes from `seed`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkConfig {
    /// One-way delay every packet gets.
    pub latency: Duration,
    /// Extra one-way delay, uniform in `0..=jitter`, drawn per packet.
    pub jitter: Duration,
    /// Probability that a frame is lost.
    pub loss: f64,
    /// Probability that a frame is delivered twice (the copy with its own delay).
    pub duplicate: f64,
    /// When true, jitter may deliver frames out of order; otherwise each lane stays FIFO as
    /// a TCP connection would.
    pub reorder: bool,
    /// Seed for loss, jitter and duplication.
    pub seed: u64,
}

impl Default for LinkConfig {
    /// A clean 10 ms link.
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(10),
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            reorder: false,
            seed: 1,
        }
    }
}

impl LinkConfig {
    /// A clean link with this one-way latency and seed.
    pub fn clean(latency: Duration, seed: u64) -> Self {
        Self {
            latency,
            seed,
            ..Self::default()
        }
    }

    /// A link that loses `loss` of the frames and adds up to `jitter` of delay.
    pub fn lossy(latency: Duration, jitter: Duration, loss: f64, seed: u64) -> Self {
        Self {
            latency,
            jitter,
            loss,
            seed,
            ..Self::default()
        }
    }
}

/// One direction of the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to server.
    ClientToServer,
    /// Server to client.
    ServerToClient,
}

/// What travels on a lane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Wire {
    /// One encoded frame.
    Frame(Vec<u8>),
    /// Client asks to open a transport.
    Connect,
    /// Server accepted the transport.
    Accept,
    /// Server refused the transport.
    Refuse,
    /// The sender dropped the transport (after everything it sent before).
    Fin,
}

/// A packet in flight.
#[derive(Debug, Clone)]
pub(crate) struct Packet {
    pub due: Instant,
    /// Tie-breaker: packets due at the same instant leave in the order they were sent.
    pub order: u64,
    /// The transport connection the packet belongs to.
    pub conn: u64,
    pub wire: Wire,
}

/// Counters for one lane.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LaneStats {
    /// Frames put on the lane.
    pub frames_sent: u64,
    /// Frames lost at random.
    pub frames_lost: u64,
    /// Extra copies made.
    pub frames_duplicated: u64,
    /// Packets (frames or signals) swallowed because the lane was cut or blackholed.
    pub packets_blackholed: u64,
    /// Packets handed to the receiving side.
    pub packets_delivered: u64,
}

/// One direction: a delay queue plus its cut/blackhole switch.
#[derive(Debug, Default)]
pub(crate) struct Lane {
    queue: Vec<Packet>,
    /// The latest due time so far, to keep FIFO order.
    last_due: Instant,
    blackholed: bool,
    pub stats: LaneStats,
}

impl Lane {
    /// Puts a packet on the lane, applying loss, delay and duplication.
    pub fn send(
        &mut self,
        now: Instant,
        conn: u64,
        wire: Wire,
        config: &LinkConfig,
        rng: &mut SimRng,
        order: &mut u64,
    ) {
        let is_frame = matches!(wire, Wire::Frame(_));
        if is_frame {
            self.stats.frames_sent += 1;
        }
        if self.blackholed {
            self.stats.packets_blackholed += 1;
            return;
        }
        if is_frame && rng.chance(config.loss) {
            self.stats.frames_lost += 1;
            return;
        }
        let copies = if is_frame && rng.chance(config.duplicate) {
            self.stats.frames_duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let jitter = rng.below_or_equal(config.jitter.as_micros());
            let mut due = now + config.latency + Duration::from_micros(jitter);
            // Transport signals never overtake the frames sent before them.
            if !(config.reorder && is_frame) {
                due = due.max(self.last_due);
            }
            self.last_due = self.last_due.max(due);
            *order += 1;
            self.queue.push(Packet {
                due,
                order: *order,
                conn,
                wire: wire.clone(),
            });
        }
    }

    /// The earliest due time in the queue.
    pub fn next_due(&self) -> Option<(Instant, u64)> {
        self.queue.iter().map(|p| (p.due, p.order)).min()
    }

    /// Takes the earliest packet if it is due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Packet> {
        let (i, _) = self
            .queue
            .iter()
            .enumerate()
            .filter(|(_, p)| p.due <= now)
            .min_by_key(|(_, p)| (p.due, p.order))?;
        self.stats.packets_delivered += 1;
        Some(self.queue.swap_remove(i))
    }

    /// Swallows everything in flight and everything sent from now on, or stops doing so.
    pub fn set_blackholed(&mut self, on: bool) {
        if on {
            self.stats.packets_blackholed += self.queue.len() as u64;
            self.queue.clear();
        }
        self.blackholed = on;
    }

    pub fn is_blackholed(&self) -> bool {
        self.blackholed
    }

    /// Forgets the packets of one connection (its transport was torn down).
    pub fn purge(&mut self, conn: u64) {
        self.queue.retain(|p| p.conn != conn);
    }

    /// Packets in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_frames(lane: &mut Lane, config: &LinkConfig, n: u8) {
        let mut rng = SimRng::new(config.seed);
        let mut order = 0;
        for i in 0..n {
            lane.send(
                Instant::ZERO,
                1,
                Wire::Frame(vec![i]),
                config,
                &mut rng,
                &mut order,
            );
        }
    }

    fn drain(lane: &mut Lane) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(p) = lane.pop_due(Instant::from_millis(10_000)) {
            if let Wire::Frame(b) = p.wire {
                out.push(b[0]);
            }
        }
        out
    }

    #[test]
    fn fifo_unless_reordering_is_allowed() {
        let jittery = LinkConfig {
            jitter: Duration::from_millis(50),
            ..LinkConfig::default()
        };
        let mut lane = Lane::default();
        send_frames(&mut lane, &jittery, 50);
        assert_eq!(drain(&mut lane), (0..50).collect::<Vec<_>>());

        let mut lane = Lane::default();
        send_frames(
            &mut lane,
            &LinkConfig {
                reorder: true,
                ..jittery
            },
            50,
        );
        let got = drain(&mut lane);
        assert_eq!(got.len(), 50);
        assert_ne!(got, (0..50).collect::<Vec<_>>(), "jitter should reorder");
    }

    #[test]
    fn loss_and_blackhole_are_counted() {
        let mut lane = Lane::default();
        send_frames(
            &mut lane,
            &LinkConfig::lossy(Duration::ZERO, Duration::ZERO, 0.5, 3),
            200,
        );
        let lost = lane.stats.frames_lost;
        assert!((60..140).contains(&lost), "{lost} of 200 lost at p = 0.5");
        assert_eq!(lane.in_flight() as u64, 200 - lost);
        lane.set_blackholed(true);
        assert_eq!(lane.in_flight(), 0);
        assert_eq!(lane.stats.packets_blackholed, 200 - lost);
    }
}
