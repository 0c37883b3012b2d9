//! The heartbeat of a text connection: the server pings every interval, and a client that
//! sends nothing at all within the timeout is dead. Any message counts as a sign of life, so a
//! busy client never needs to pong.

use std::time::Duration;

use tokio::time::Instant;

/// What the heartbeat wants done when its deadline comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Beat {
    /// Not yet time for anything.
    Idle,
    /// Send the server's ping.
    Ping,
    /// Nothing was heard within the timeout: close.
    Silent,
}

#[derive(Debug)]
pub(super) struct Heartbeat {
    interval: Duration,
    timeout: Duration,
    heard: Instant,
    next_ping: Instant,
}

impl Heartbeat {
    pub(super) fn new(now: Instant, interval: Duration, timeout: Duration) -> Self {
        Self {
            interval,
            timeout,
            heard: now,
            next_ping: now + interval,
        }
    }

    /// Something arrived from the client.
    pub(super) fn heard(&mut self, now: Instant) {
        self.heard = now;
    }

    /// When [`Heartbeat::tick`] has something to do next.
    pub(super) fn deadline(&self) -> Instant {
        self.next_ping.min(self.heard + self.timeout)
    }

    pub(super) fn tick(&mut self, now: Instant) -> Beat {
        if now >= self.heard + self.timeout {
            Beat::Silent
        } else if now >= self.next_ping {
            self.next_ping = now + self.interval;
            Beat::Ping
        } else {
            Beat::Idle
        }
    }

    /// The timeout, for the close reason.
    pub(super) fn timeout(&self) -> Duration {
        self.timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_each_interval_and_gives_up_after_the_timeout_of_silence() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut beat = Heartbeat::new(t0, ms(100), ms(250));
        assert_eq!(beat.deadline(), t0 + ms(100));
        assert_eq!(beat.tick(t0 + ms(50)), Beat::Idle);
        assert_eq!(beat.tick(t0 + ms(100)), Beat::Ping);
        assert_eq!(beat.deadline(), t0 + ms(200));
        beat.heard(t0 + ms(150));
        assert_eq!(beat.tick(t0 + ms(200)), Beat::Ping);
        assert_eq!(beat.deadline(), t0 + ms(300));
        assert_eq!(beat.tick(t0 + ms(300)), Beat::Ping);
        assert_eq!(beat.deadline(), t0 + ms(400));
        assert_eq!(beat.tick(t0 + ms(399)), Beat::Idle);
        assert_eq!(beat.tick(t0 + ms(400)), Beat::Silent);
    }
}
