//! Liveness: periodic pings, RTT from the matching pong, and a silence timeout that declares
//! the peer dead. Any received frame counts as a sign of life, so a busy link needs no pings
//! to stay up; pings are only what keeps a quiet link honest.
//!
//! An adapter may stop reading its transport on purpose (backpressure: the application is
//! not taking what was already read). The peer's frames then pile up unread, so silence says
//! nothing about the peer: while reading is paused the silence timeout is suspended, and a
//! side that normally only answers pings sends its own, so the peer keeps hearing from us.

use crate::time::{Duration, Instant, earliest};

/// What the heartbeat wants done at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HeartbeatAction {
    /// Nothing due.
    Idle,
    /// Send a ping carrying this nonce.
    SendPing(u32),
    /// The peer has been silent past the timeout.
    PeerDead,
}

/// Ping schedule and silence detector for one connection.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    interval: Duration,
    timeout: Duration,
    sends_pings: bool,
    last_rx: Instant,
    /// The next scheduled ping. On a side that does not send pings this is the earliest
    /// moment a ping may go out while reading is paused.
    next_ping: Instant,
    outstanding: Option<(u32, Instant)>,
    nonce: u32,
    #[cfg(feature = "session-stats")]
    rtt: Option<Duration>,
    #[cfg(feature = "session-stats")]
    srtt: Option<Duration>,
}

impl Heartbeat {
    /// Starts watching at `now`. A side with `sends_pings` false only answers and watches.
    pub fn new(now: Instant, interval: Duration, timeout: Duration, sends_pings: bool) -> Self {
        Self {
            interval,
            timeout,
            sends_pings,
            last_rx: now,
            next_ping: now + interval,
            outstanding: None,
            nonce: 0,
            #[cfg(feature = "session-stats")]
            rtt: None,
            #[cfg(feature = "session-stats")]
            srtt: None,
        }
    }

    /// Call for every frame received.
    pub fn on_receive(&mut self, now: Instant) {
        self.last_rx = now;
    }

    /// Call when the adapter resumes reading: the silence timeout counts from `now`, since
    /// nothing was read (or could be seen) while paused.
    pub fn on_read_resumed(&mut self, now: Instant) {
        self.last_rx = now;
    }

    /// Call for a received pong; returns the round-trip time if it answers our last ping.
    pub fn on_pong(&mut self, now: Instant, nonce: u32) -> Option<Duration> {
        match self.outstanding {
            Some((n, sent)) if n == nonce => {
                self.outstanding = None;
                let rtt = now - sent;
                #[cfg(feature = "session-stats")]
                {
                    self.rtt = Some(rtt);
                    // Smoothed as in RFC 6298: srtt = 7/8 srtt + 1/8 rtt.
                    self.srtt = Some(match self.srtt {
                        None => rtt,
                        Some(s) => Duration::from_micros((s.as_micros() * 7 + rtt.as_micros()) / 8),
                    });
                }
                Some(rtt)
            }
            _ => None,
        }
    }

    /// Checks timers; returns at most one action per call. `read_paused` says the adapter is
    /// not reading its transport on purpose: no silence timeout then, and pings go out at
    /// least once per interval whichever side normally sends them.
    pub fn poll(&mut self, now: Instant, read_paused: bool) -> HeartbeatAction {
        if !read_paused && now >= self.last_rx + self.timeout {
            return HeartbeatAction::PeerDead;
        }
        if (self.sends_pings || read_paused) && now >= self.next_ping {
            self.nonce = self.nonce.wrapping_add(1);
            self.outstanding = Some((self.nonce, now));
            self.next_ping = now + self.interval;
            return HeartbeatAction::SendPing(self.nonce);
        }
        HeartbeatAction::Idle
    }

    /// When `poll` next has something to do, given the same `read_paused`.
    pub fn next_deadline(&self, read_paused: bool) -> Instant {
        if read_paused {
            return self.next_ping;
        }
        let dead = self.last_rx + self.timeout;
        let ping = self.sends_pings.then_some(self.next_ping);
        earliest(Some(dead), ping).unwrap_or(dead)
    }

    /// Last measured round-trip time.
    #[cfg(feature = "session-stats")]
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// Smoothed round-trip time.
    #[cfg(feature = "session-stats")]
    pub fn smoothed_rtt(&self) -> Option<Duration> {
        self.srtt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_on_schedule_and_measures_rtt() {
        let t0 = Instant::ZERO;
        let mut hb = Heartbeat::new(t0, Duration::from_secs(1), Duration::from_secs(3), true);
        assert_eq!(hb.poll(t0, false), HeartbeatAction::Idle);
        let t1 = Instant::from_millis(1000);
        let HeartbeatAction::SendPing(n) = hb.poll(t1, false) else {
            panic!("ping due")
        };
        assert_eq!(hb.on_pong(Instant::from_millis(1040), n + 1), None);
        assert_eq!(
            hb.on_pong(Instant::from_millis(1040), n),
            Some(Duration::from_millis(40))
        );
        hb.on_receive(Instant::from_millis(1040));
        assert_eq!(hb.next_deadline(false), Instant::from_millis(2000));
    }

    #[test]
    fn silence_past_timeout_is_death() {
        let mut hb = Heartbeat::new(
            Instant::ZERO,
            Duration::from_secs(1),
            Duration::from_secs(3),
            false,
        );
        assert_eq!(hb.next_deadline(false), Instant::from_millis(3000));
        assert_eq!(
            hb.poll(Instant::from_millis(2999), false),
            HeartbeatAction::Idle
        );
        assert_eq!(
            hb.poll(Instant::from_millis(3000), false),
            HeartbeatAction::PeerDead
        );
    }

    #[test]
    fn paused_reading_suspends_the_timeout_and_the_answering_side_pings() {
        let mut hb = Heartbeat::new(
            Instant::ZERO,
            Duration::from_secs(1),
            Duration::from_secs(3),
            false,
        );
        // A ping is overdue from the start of the pause; then one per interval, and no death
        // however long the pause lasts.
        let t = Instant::from_millis(2500);
        assert_eq!(hb.next_deadline(true), Instant::from_millis(1000));
        assert!(matches!(hb.poll(t, true), HeartbeatAction::SendPing(_)));
        assert_eq!(hb.poll(t, true), HeartbeatAction::Idle);
        assert_eq!(hb.next_deadline(true), Instant::from_millis(3500));
        let mut pings = 1;
        for ms in (2600..=60_000).step_by(100) {
            match hb.poll(Instant::from_millis(ms), true) {
                HeartbeatAction::SendPing(_) => pings += 1,
                HeartbeatAction::Idle => {}
                HeartbeatAction::PeerDead => panic!("declared dead while paused at {ms} ms"),
            }
        }
        assert_eq!(pings, 58, "one ping per second from 2.5 s to 60 s");
        // Resumed: the silence counts from the resume, and pings stop again.
        let resumed = Instant::from_millis(60_000);
        hb.on_read_resumed(resumed);
        assert_eq!(hb.next_deadline(false), Instant::from_millis(63_000));
        assert_eq!(
            hb.poll(Instant::from_millis(62_999), false),
            HeartbeatAction::Idle
        );
        assert_eq!(
            hb.poll(Instant::from_millis(63_000), false),
            HeartbeatAction::PeerDead
        );
    }
}
