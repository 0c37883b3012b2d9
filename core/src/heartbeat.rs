//! Liveness: periodic pings, RTT from the matching pong, and a silence timeout that declares
//! the peer dead. Any received frame counts as a sign of life, so a busy link needs no pings
//! to stay up; pings are only what keeps a quiet link honest.

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
    next_ping: Instant,
    outstanding: Option<(u32, Instant)>,
    nonce: u32,
    rtt: Option<Duration>,
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
            rtt: None,
            srtt: None,
        }
    }

    /// Call for every frame received.
    pub fn on_receive(&mut self, now: Instant) {
        self.last_rx = now;
    }

    /// Call for a received pong; returns the round-trip time if it answers our last ping.
    pub fn on_pong(&mut self, now: Instant, nonce: u32) -> Option<Duration> {
        match self.outstanding {
            Some((n, sent)) if n == nonce => {
                self.outstanding = None;
                let rtt = now - sent;
                self.rtt = Some(rtt);
                // Smoothed as in RFC 6298: srtt = 7/8 srtt + 1/8 rtt.
                self.srtt = Some(match self.srtt {
                    None => rtt,
                    Some(s) => Duration::from_micros((s.as_micros() * 7 + rtt.as_micros()) / 8),
                });
                Some(rtt)
            }
            _ => None,
        }
    }

    /// Checks timers; returns at most one action per call.
    pub fn poll(&mut self, now: Instant) -> HeartbeatAction {
        if now >= self.last_rx + self.timeout {
            return HeartbeatAction::PeerDead;
        }
        if self.sends_pings && now >= self.next_ping {
            self.nonce = self.nonce.wrapping_add(1);
            self.outstanding = Some((self.nonce, now));
            self.next_ping = now + self.interval;
            return HeartbeatAction::SendPing(self.nonce);
        }
        HeartbeatAction::Idle
    }

    /// When `poll` next has something to do.
    pub fn next_deadline(&self) -> Instant {
        let dead = self.last_rx + self.timeout;
        let ping = self.sends_pings.then_some(self.next_ping);
        earliest(Some(dead), ping).unwrap_or(dead)
    }

    /// Last measured round-trip time.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// Smoothed round-trip time.
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
        assert_eq!(hb.poll(t0), HeartbeatAction::Idle);
        let t1 = Instant::from_millis(1000);
        let HeartbeatAction::SendPing(n) = hb.poll(t1) else {
            panic!("ping due")
        };
        assert_eq!(hb.on_pong(Instant::from_millis(1040), n + 1), None);
        assert_eq!(
            hb.on_pong(Instant::from_millis(1040), n),
            Some(Duration::from_millis(40))
        );
        hb.on_receive(Instant::from_millis(1040));
        assert_eq!(hb.next_deadline(), Instant::from_millis(2000));
    }

    #[test]
    fn silence_past_timeout_is_death() {
        let mut hb = Heartbeat::new(
            Instant::ZERO,
            Duration::from_secs(1),
            Duration::from_secs(3),
            false,
        );
        assert_eq!(hb.next_deadline(), Instant::from_millis(3000));
        assert_eq!(hb.poll(Instant::from_millis(2999)), HeartbeatAction::Idle);
        assert_eq!(
            hb.poll(Instant::from_millis(3000)),
            HeartbeatAction::PeerDead
        );
    }
}
