//! Publishing on the client's behalf, and telling it which of its channel messages did not
//! arrive (see [`crate::pubsub::drops`]).

use sentelite_core::frame;

use super::Connection;
use crate::pubsub::drops::Report;

impl Connection {
    pub(super) fn on_publish(&mut self, publish: frame::Publish<'_>) {
        let Some(entry) = self.entry.clone() else {
            return;
        };
        let exclude = publish.exclude_sender.then_some(self.id);
        let (mut failed, mut missed_by) = (0u64, 0);
        let result = self.handle().publish_from(
            publish.channel,
            entry.uid.clone(),
            publish.payload.into(),
            exclude,
            |subscriber, _| {
                failed += 1;
                missed_by = subscriber;
            },
        );
        if let Err(e) = result {
            tracing::debug!(connection = self.id, error = %e, "publish refused");
            return;
        }
        if failed == 0 {
            return;
        }
        entry.channel_drops.count_undelivered(failed);
        let now = tokio::time::Instant::now();
        let interval = self.shared.settings.drop_report_interval();
        let reports =
            self.drop_reports
                .record(self.id, now, interval, publish.channel, failed, missed_by);
        self.send_drop_reports(reports);
    }

    /// Sends the drop reports whose window has closed.
    pub(super) fn send_due_drop_reports(&mut self) {
        let now = tokio::time::Instant::now();
        let interval = self.shared.settings.drop_report_interval();
        let reports = self.drop_reports.take_due(self.id, now, interval);
        self.send_drop_reports(reports);
    }

    fn send_drop_reports(&mut self, reports: Vec<Report>) {
        for (channel, dropped) in reports {
            self.encode_or_log("drop report", |s, buf| {
                s.publish_dropped(&channel, dropped, buf).map(|n| ((), n))
            });
        }
    }
}

/// The earlier of two optional deadlines.
pub(super) fn earliest(
    a: Option<tokio::time::Instant>,
    b: Option<tokio::time::Instant>,
) -> Option<tokio::time::Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
