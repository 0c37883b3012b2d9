//! Channel messages that did not reach a subscriber: counted on both sides, reported to the
//! publishing client and to the log at a bounded rate.
//!
//! A subscriber that stops reading fills its queue, and from then on every message published
//! to its channels fails for it. Logging each failure let one stuck client turn a burst of
//! publishes into megabytes of log; here each publishing connection logs at most one summary
//! line and sends at most one `PublishDropped` frame per channel per report interval, and
//! only while failures happen.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::ConnectionId;
use crate::handle::ChannelDrops;

/// One connection's drop counters, kept in its registry entry so publishers on other
/// connections can count what their subscribers missed.
#[derive(Debug, Default)]
pub(crate) struct DropCounters {
    missed: AtomicU64,
    undelivered: AtomicU64,
}

impl DropCounters {
    /// This connection, as a subscriber, missed one channel message.
    pub(crate) fn count_missed(&self) {
        self.missed.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` deliveries of one of this connection's publishes failed.
    pub(crate) fn count_undelivered(&self, n: u64) {
        self.undelivered.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> ChannelDrops {
        ChannelDrops {
            missed: self.missed.load(Ordering::Relaxed),
            undelivered: self.undelivered.load(Ordering::Relaxed),
        }
    }
}

/// A drop report to send: the channel and the failed deliveries since its last report.
pub(crate) type Report = (Arc<str>, u32);

/// The drop reports of one publishing connection.
///
/// The first failure is reported at once and opens a window of one report interval; failures
/// inside the window are summed per channel and reported, with one log line, when it closes,
/// which opens the next window. A window that closes with nothing to report ends the cycle,
/// so the next failure is again reported at once. A connection whose publishes all arrive
/// holds one empty pointer here.
#[derive(Debug, Default)]
pub(crate) struct DropReports(Option<Box<Window>>);

#[derive(Debug)]
struct Window {
    closes_at: Instant,
    /// Failed deliveries per channel since the channel's last report.
    pending: Vec<Report>,
    /// Failed deliveries since the last log line.
    unlogged: u64,
    /// The last subscriber that missed a message, named in the log to find the stuck one.
    last_missed_by: ConnectionId,
}

impl DropReports {
    /// Records that `failed` deliveries of one publish on `channel` failed, the last of them
    /// for `missed_by`. Returns the reports to send now (only when no window is open).
    pub(crate) fn record(
        &mut self,
        connection: ConnectionId,
        now: Instant,
        interval: Duration,
        channel: &str,
        failed: u64,
        missed_by: ConnectionId,
    ) -> Vec<Report> {
        if let Some(window) = &mut self.0 {
            window.unlogged = window.unlogged.saturating_add(failed);
            window.last_missed_by = missed_by;
            match window.pending.iter_mut().find(|(c, _)| &**c == channel) {
                Some((_, n)) => *n = n.saturating_add(saturate(failed)),
                None => window.pending.push((channel.into(), saturate(failed))),
            }
            return Vec::new();
        }
        tracing::warn!(
            connection,
            channel,
            undelivered = failed,
            slow_subscriber = missed_by,
            "channel message not delivered: a subscriber's queue is full; further drops are \
             summarised once per {interval:?}"
        );
        self.0 = Some(Box::new(Window {
            closes_at: now + interval,
            pending: Vec::new(),
            unlogged: 0,
            last_missed_by: missed_by,
        }));
        vec![(channel.into(), saturate(failed))]
    }

    /// When the open window closes, if one is open.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.0.as_ref().map(|w| w.closes_at)
    }

    /// Closes the window if its time has come: logs one summary line and returns the reports
    /// to send, or ends the cycle when nothing failed during the window.
    pub(crate) fn take_due(
        &mut self,
        connection: ConnectionId,
        now: Instant,
        interval: Duration,
    ) -> Vec<Report> {
        let Some(window) = &mut self.0 else {
            return Vec::new();
        };
        if now < window.closes_at {
            return Vec::new();
        }
        if window.pending.is_empty() {
            self.0 = None;
            return Vec::new();
        }
        tracing::warn!(
            connection,
            undelivered = window.unlogged,
            channels = window.pending.len(),
            slow_subscriber = window.last_missed_by,
            "channel messages not delivered in the last {interval:?}: subscriber queues full"
        );
        window.unlogged = 0;
        window.closes_at = now + interval;
        std::mem::take(&mut window.pending)
    }
}

fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn total(reports: &[Report], channel: &str) -> u32 {
        reports
            .iter()
            .filter(|(c, _)| &**c == channel)
            .map(|(_, n)| n)
            .sum()
    }

    #[test]
    fn first_drop_goes_out_at_once_then_once_per_window() {
        let t0 = Instant::now();
        let mut reports = DropReports::default();
        assert_eq!(reports.next_due(), None);
        let now = reports.record(1, t0, SECOND, "a", 1, 9);
        assert_eq!(total(&now, "a"), 1);
        assert_eq!(reports.next_due(), Some(t0 + SECOND));
        // Inside the window: summed, nothing sent.
        for i in 1..=100u64 {
            let at = t0 + Duration::from_millis(i);
            assert!(reports.record(1, at, SECOND, "a", 2, 9).is_empty());
            assert!(reports.record(1, at, SECOND, "b", 1, 9).is_empty());
        }
        assert!(reports.take_due(1, t0 + SECOND / 2, SECOND).is_empty());
        let due = reports.take_due(1, t0 + SECOND, SECOND);
        assert_eq!(
            (total(&due, "a"), total(&due, "b"), due.len()),
            (200, 100, 2)
        );
        // The next window is open; nothing failed in it, so it ends the cycle.
        assert_eq!(reports.next_due(), Some(t0 + 2 * SECOND));
        assert!(reports.take_due(1, t0 + 2 * SECOND, SECOND).is_empty());
        assert_eq!(reports.next_due(), None);
        let again = reports.record(1, t0 + 3 * SECOND, SECOND, "b", 5, 9);
        assert_eq!(total(&again, "b"), 5, "a new cycle reports at once");
    }

    #[test]
    fn counts_saturate_instead_of_wrapping() {
        let t0 = Instant::now();
        let mut reports = DropReports::default();
        let first = reports.record(1, t0, SECOND, "a", u64::MAX, 2);
        assert_eq!(total(&first, "a"), u32::MAX);
        reports.record(1, t0, SECOND, "a", u64::from(u32::MAX), 2);
        reports.record(1, t0, SECOND, "a", 7, 2);
        assert_eq!(
            total(&reports.take_due(1, t0 + SECOND, SECOND), "a"),
            u32::MAX
        );
    }

    #[test]
    fn counters_add_up() {
        let counters = DropCounters::default();
        counters.count_missed();
        counters.count_missed();
        counters.count_undelivered(5);
        assert_eq!(
            counters.snapshot(),
            ChannelDrops {
                missed: 2,
                undelivered: 5
            }
        );
    }
}
