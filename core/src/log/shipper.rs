//! The client's whole logging state machine, sans-IO: filter → queue → batches → acks, with the
//! batch size and timeout, the circuit breaker, and the server's live control. Adapters (the
//! host driver, the embassy runner) only call it: [`LogShipper::log`] from the front end,
//! [`LogShipper::poll_batch`] when connected, [`LogShipper::on_ack`] /
//! [`LogShipper::on_failed`] with the server's answer, and arm a timer for
//! [`LogShipper::poll_timeout`].
//!
//! A batch travels as the payload of one `telemetry/log-batch` request; the server's `OK` end is the ack.
//! One batch is in flight at a time.

use super::breaker::{Breaker, BreakerConfig};
use super::filter::{FilterConfig, FilterStats, LogFilter, Rate, Verdict};
use super::level::{Level, LevelSet};
use super::queue::{BatchId, LogQueue, Pushed, QueueConfig, QueueStats};
use super::record::NewRecord;
use crate::codec::EncodeError;
use crate::time::{Duration, Instant};

/// The request event that carries a batch.
pub const BATCH_EVENT: &str = "telemetry/log-batch";
/// The server→client event that carries a [`LogControl`].
pub const CONTROL_EVENT: &str = "telemetry/log-control";

/// The namespace of the record that reports a filter this build could not fully apply.
pub const UNAPPLIED_TARGET: &str = "sentelite::log";
/// Its message.
pub const UNAPPLIED_MESSAGE: &str =
    "sampling and rate limits unsupported by this build: not applied";

/// Bytes a batch's header and gap may add to the stored size of its records.
const BATCH_OVERHEAD: usize = 96;

/// Everything a client's remote logging is configured with. The names follow sente-lite's
/// remote-log settings (`enabled`, `levels`, `batch-size`, `batch-timeout-ms`,
/// `max-queue-size`, `fallback-to-local`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LogConfig {
    /// Switch, levels, sampling and rate limits.
    pub filter: FilterConfig,
    /// Queue bounds and overflow policy.
    pub queue: QueueConfig,
    /// When to stop sending after failures.
    pub breaker: BreakerConfig,
    /// Records that make a batch due at once (default 20).
    pub batch_size: usize,
    /// Longest a queued record waits for a batch (default 5 s).
    pub batch_timeout: Duration,
    /// Also hand records to the local log function while they cannot be sent (default true).
    pub fallback_to_local: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: FilterConfig::default(),
            queue: QueueConfig::default(),
            breaker: BreakerConfig::default(),
            batch_size: 20,
            batch_timeout: Duration::from_secs(5),
            fallback_to_local: true,
        }
    }
}

/// What became of one logged record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Logged {
    /// Queued (possibly after evicting older ones, which the next gap reports).
    Queued(Pushed),
    /// Held back by the filter; never numbered.
    Filtered(Verdict),
    /// The queue is full and blocks ([`super::Overflow::Block`]): try again later.
    Full,
}

/// A batch encoded and ready to send as the payload of a [`BATCH_EVENT`] request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ReadyBatch {
    /// Pass it back to [`LogShipper::on_ack`] or [`LogShipper::on_failed`].
    pub id: BatchId,
    /// Bytes written to the buffer.
    pub len: usize,
    /// Records in it.
    pub records: usize,
}

/// A change the server asks for at run time, sent as the bytes payload of a
/// [`CONTROL_EVENT`] event (postcard, see [`LogControl::decode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LogControl {
    /// Replace the filter (levels, sampling, rates, switch).
    SetFilter(FilterConfig),
    /// Send what is queued now, without waiting for size or timeout.
    Flush,
}

impl LogControl {
    /// Encodes into `buf`, returning the length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        postcard::to_slice(self, buf)
            .map(|b| b.len())
            .map_err(|_| EncodeError::BufferTooSmall {
                required: postcard::serialize_with_flavor(
                    self,
                    postcard::ser_flavors::Size::default(),
                )
                .unwrap_or(usize::MAX),
            })
    }

    /// Decodes a control payload; `None` if it is not one (unknown kinds are ignored by
    /// clients, not fatal).
    ///
    /// Read by hand, byte for byte what postcard's serde path accepts (the tests compare the
    /// two): serde's visitors for the enum, the options and the fields cost a device about
    /// 140 B of flash more on a Cortex-M0+.
    pub fn decode(bytes: &[u8]) -> Option<LogControl> {
        let mut r = Wire(bytes);
        let control = match r.varint(5, 0x0f)? {
            0 => {
                let mut config = FilterConfig {
                    enabled: false,
                    levels: LevelSet::NONE,
                    sample_every: [0; 7],
                    rate: [None; 7],
                };
                r.filter(&mut config)?;
                LogControl::SetFilter(config)
            }
            1 => LogControl::Flush,
            _ => return None,
        };
        r.0.is_empty().then_some(control)
    }
}

/// A postcard reader for [`LogControl::decode`].
struct Wire<'a>(&'a [u8]);

impl Wire<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    /// A bool or an option's tag: 0 or 1, anything else refused.
    fn flag(&mut self) -> Option<bool> {
        // A one-byte varint whose byte is 1 at most.
        Some(self.varint(1, 1)? != 0)
    }

    /// A varint of at most `max` bytes whose last may hold no more than `last` (what is
    /// left of the type's bits), as postcard reads a `u16` (3, 0x03) or a `u32` (5, 0x0f).
    fn varint(&mut self, max: u32, last: u8) -> Option<u32> {
        let mut n = 0u32;
        let mut shift = 0;
        for left in (0..max).rev() {
            let b = self.byte()?;
            n |= u32::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                return (left > 0 || b <= last).then_some(n);
            }
        }
        None
    }

    fn filter(&mut self, config: &mut FilterConfig) -> Option<()> {
        config.enabled = self.flag()?;
        config.levels = LevelSet::from_wire(self.byte()?);
        for every in &mut config.sample_every {
            // At most 0x7f | 0x7f << 7 | 0x03 << 14: every u16.
            *every = self.varint(3, 0x03)? as u16;
        }
        for rate in &mut config.rate {
            if self.flag()? {
                *rate = Some(Rate {
                    per_second: self.varint(5, 0x0f)?,
                    burst: self.varint(5, 0x0f)?,
                });
            }
        }
        Some(())
    }
}

/// The client's logging: a filter, a queue over a caller-owned buffer, and the shipping rules.
/// The parts of its [`LogConfig`] that the filter, queue and breaker hold are kept there only,
/// not a second time here.
// `repr(C)`, the shipper's own few fields first and the queue after them: each then sits at
// a small offset, which a Cortex-M0+ load or store reaches in one instruction (68 B less than
// the compiler's own order, which put the queue's gaps and counters ahead of them).
#[repr(C)]
pub struct LogShipper<B> {
    breaker: Breaker,
    /// See [`LogConfig::batch_timeout`].
    batch_timeout: Duration,
    /// When the oldest unsent record (or unreported gap) started waiting.
    waiting_since: Option<Instant>,
    /// See [`LogConfig::batch_size`].
    batch_size: usize,
    filter: LogFilter,
    /// See [`LogConfig::fallback_to_local`].
    fallback_to_local: bool,
    connected: bool,
    flush: bool,
    /// The last `SetFilter` asked for sampling or rate limits this build does not apply;
    /// [`Self::log_unapplied`] says so in a record.
    #[cfg(not(feature = "log-limits"))]
    unapplied: bool,
    queue: LogQueue<B>,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> LogShipper<B> {
    /// Shipping over `buf` (its length is the queue's byte capacity); the first record of
    /// this boot gets sequence number `first_seq`.
    pub fn new(buf: B, config: LogConfig, first_seq: u32) -> Self {
        Self {
            filter: LogFilter::new(config.filter),
            queue: LogQueue::new(buf, config.queue, first_seq),
            breaker: Breaker::new(config.breaker),
            batch_size: config.batch_size,
            batch_timeout: config.batch_timeout,
            fallback_to_local: config.fallback_to_local,
            connected: false,
            waiting_since: None,
            flush: false,
            #[cfg(not(feature = "log-limits"))]
            unapplied: false,
        }
    }

    /// The configuration in force (the filter part may have been changed by the server).
    pub fn config(&self) -> LogConfig {
        LogConfig {
            filter: self.filter.config(),
            queue: self.queue.config(),
            breaker: self.breaker.config(),
            batch_size: self.batch_size,
            batch_timeout: self.batch_timeout,
            fallback_to_local: self.fallback_to_local,
        }
    }

    /// The queue, for its counters and state.
    pub fn queue(&self) -> &LogQueue<B> {
        &self.queue
    }

    /// Queue counters.
    pub fn queue_stats(&self) -> QueueStats {
        self.queue.stats()
    }

    /// Filter counters.
    pub fn filter_stats(&self) -> FilterStats {
        self.filter.stats()
    }

    /// True when a record of `level` could be kept: check before formatting a message.
    pub fn wants(&self, level: Level) -> bool {
        self.filter.wants(level)
    }

    /// True when the front end should also log `level` locally: fallback is on and records
    /// cannot be sent right now (no connection, or the breaker is open).
    pub fn should_log_locally(&mut self, now: Instant) -> bool {
        self.fallback_to_local && (!self.connected || !self.breaker.allows(now))
    }

    /// Logs one record at `now`.
    pub fn log(&mut self, now: Instant, record: &NewRecord<'_>) -> Logged {
        match self.filter.admit(now, record.level) {
            Verdict::Keep => {}
            other => return Logged::Filtered(other),
        }
        self.push(now, record)
    }

    /// Queues a record the filter has let through (or that bypasses it).
    pub(super) fn push(&mut self, now: Instant, record: &NewRecord<'_>) -> Logged {
        match self.queue.push(record) {
            Ok(pushed) => {
                self.waiting_since.get_or_insert(now);
                Logged::Queued(pushed)
            }
            Err(_) => Logged::Full,
        }
    }

    /// Applies a control message from the server. Without the `log-limits` feature a
    /// `SetFilter` applies its switch and levels only; if it also asks for sampling or rate
    /// limits (and keeps logging on), [`Self::log_unapplied`] queues one warning saying so.
    pub fn apply(&mut self, control: LogControl) {
        match control {
            LogControl::SetFilter(filter) => {
                #[cfg(not(feature = "log-limits"))]
                {
                    self.unapplied = filter.enabled && filter.limits();
                }
                self.filter.set_config(filter)
            }
            LogControl::Flush => self.flush = true,
        }
    }

    /// After [`Self::apply`]: if the last `SetFilter` asked for sampling or rate limits this
    /// build cannot apply (no `log-limits` feature), queues one warn record from
    /// [`UNAPPLIED_TARGET`] saying so, stamped `time_ms` (the control message has no answer
    /// of its own; the record is how the server's user learns it). At most one per such
    /// message: the request is forgotten once reported. Bypasses the level set, so it is
    /// seen whatever levels were asked for. [`super::RemoteLogger`] calls it as it logs the
    /// next record (which the missing limits would have applied to), so the warning goes
    /// just ahead of it; a front end of its own calls it likewise, or right after `apply`
    /// with its clock. With `log-limits` there is never one.
    pub fn log_unapplied(&mut self, now: Instant, time_ms: u64) -> Option<Logged> {
        #[cfg(not(feature = "log-limits"))]
        if core::mem::take(&mut self.unapplied) {
            return Some(self.push(
                now,
                &NewRecord {
                    time_ms,
                    level: Level::Warn,
                    namespace: UNAPPLIED_TARGET,
                    id: None,
                    message: UNAPPLIED_MESSAGE,
                    data: &[],
                },
            ));
        }
        let _ = (now, time_ms);
        None
    }

    /// The connection is up: anything queued (including a batch that was in flight when the
    /// last one dropped) is due at once.
    pub fn on_connected(&mut self, now: Instant) {
        self.connected = true;
        if self.queue.has_batch() {
            self.waiting_since = Some(now);
            self.flush = true;
        }
    }

    /// The connection dropped: the batch in flight will be sent again.
    pub fn on_disconnected(&mut self) {
        self.connected = false;
        self.queue.on_disconnect();
    }

    /// True when a batch should be sent at `now`.
    pub fn batch_due(&mut self, now: Instant) -> bool {
        if !self.connected || !self.queue.has_batch() || !self.breaker.allows(now) {
            return false;
        }
        self.flush
            || self.queue.unsent() >= self.batch_size.max(1)
            || self
                .waiting_since
                .is_some_and(|since| now >= since + self.batch_timeout)
    }

    /// When the next batch falls due by time alone (or the breaker lets a probe through).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.connected || self.queue.in_flight().is_some() {
            return None;
        }
        if let Some(at) = self.breaker.reopens_at() {
            return Some(at);
        }
        if !self.queue.has_batch() {
            return None;
        }
        self.waiting_since.map(|s| s + self.batch_timeout)
    }

    /// If a batch is due, takes it and encodes it into `buf` (at most `buf.len()` bytes, which
    /// should leave room for the request frame around it). A batch that would not fit is
    /// taken again with fewer records; a single record that cannot fit any batch is dropped
    /// and reported in the gap.
    pub fn poll_batch(&mut self, now: Instant, buf: &mut [u8]) -> Option<ReadyBatch> {
        if !self.batch_due(now) {
            return None;
        }
        let mut max_records = self.batch_size.max(1);
        let max_bytes = buf.len().saturating_sub(BATCH_OVERHEAD).max(1);
        loop {
            let (id, records) = self.queue.take_batch(max_records, max_bytes)?;
            match self.queue.encode_in_flight(buf)? {
                Ok(len) => {
                    self.flush = false;
                    self.waiting_since = self.queue.has_batch_after_flight().then_some(now);
                    return Some(ReadyBatch { id, len, records });
                }
                Err(EncodeError::BufferTooSmall { .. } | EncodeError::TooLarge { .. }) => {
                    self.queue.requeue(id);
                    if max_records <= 1 {
                        // Nothing smaller to try; the buffer is too small for any batch.
                        return None;
                    }
                    max_records = (records / 2).max(1);
                }
            }
        }
    }

    /// The server stored batch `id`. False for a stale or unknown id.
    pub fn on_ack(&mut self, id: BatchId) -> bool {
        let acked = self.queue.ack(id);
        if acked {
            self.breaker.on_success();
        }
        acked
    }

    /// Batch `id` was refused or timed out at `now`: it goes back in line, and the breaker
    /// counts the failure.
    pub fn on_failed(&mut self, now: Instant, id: BatchId) -> bool {
        let requeued = self.queue.requeue(id);
        if requeued {
            self.breaker.on_failure(now);
            self.waiting_since = Some(now);
        }
        requeued
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{LevelSet, decode_batch};

    fn warn(time_ms: u64) -> NewRecord<'static> {
        NewRecord {
            time_ms,
            level: Level::Warn,
            namespace: "app",
            id: Some("app/tick"),
            message: "tick",
            data: &[],
        }
    }

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    fn seqs_of(buf: &[u8]) -> ([u32; 8], usize) {
        let batch = decode_batch(buf).unwrap();
        let mut out = [u32::MAX; 8];
        let mut n = 0;
        for (slot, r) in out.iter_mut().zip(batch.records()) {
            *slot = r.unwrap().seq;
            n += 1;
        }
        (out, n)
    }

    #[test]
    fn a_full_batch_goes_at_once_and_a_partial_one_at_its_timeout() {
        let mut store = [0u8; 1024];
        let config = LogConfig {
            batch_size: 3,
            batch_timeout: Duration::from_millis(500),
            ..LogConfig::default()
        };
        let mut s = LogShipper::new(&mut store, config, 0);
        let mut out = [0u8; 256];
        s.on_connected(ms(0));
        for t in 0..2 {
            assert!(matches!(s.log(ms(t), &warn(t)), Logged::Queued(_)));
        }
        assert_eq!(s.poll_batch(ms(2), &mut out), None, "not full, not late");
        assert_eq!(s.poll_timeout(), Some(ms(500)));
        assert_eq!(s.poll_batch(ms(499), &mut out), None);
        let ready = s.poll_batch(ms(500), &mut out).unwrap();
        assert_eq!(ready.records, 2);
        assert_eq!(s.poll_timeout(), None, "nothing more until the ack");
        assert!(s.on_ack(ready.id));
        for t in 600..603 {
            s.log(ms(t), &warn(t));
        }
        let ready = s.poll_batch(ms(603), &mut out).unwrap();
        assert_eq!(ready.records, 3, "size reached: no waiting");
        assert_eq!(seqs_of(&out[..ready.len]).0[..3], [2, 3, 4]);
    }

    #[test]
    fn records_wait_through_a_disconnect_and_the_same_batch_goes_again() {
        let mut store = [0u8; 1024];
        let mut s = LogShipper::new(&mut store, LogConfig::default(), 100);
        let mut out = [0u8; 256];
        s.log(ms(0), &warn(0));
        assert!(
            s.should_log_locally(ms(0)),
            "offline: fall back to the local log"
        );
        s.on_connected(ms(10));
        assert!(!s.should_log_locally(ms(10)));
        let first = s.poll_batch(ms(10), &mut out).unwrap();
        s.on_disconnected();
        assert!(
            !s.on_ack(first.id),
            "an ack from the dropped connection is stale"
        );
        assert_eq!(s.poll_batch(ms(20), &mut out), None, "offline");
        s.on_connected(ms(30));
        let again = s.poll_batch(ms(30), &mut out).unwrap();
        assert_eq!(
            seqs_of(&out[..again.len]),
            (
                [
                    100,
                    u32::MAX,
                    u32::MAX,
                    u32::MAX,
                    u32::MAX,
                    u32::MAX,
                    u32::MAX,
                    u32::MAX
                ],
                1
            )
        );
        assert!(s.on_ack(again.id));
        assert!(s.queue().is_empty());
    }

    #[test]
    fn repeated_failures_open_the_breaker_until_its_cool_down() {
        let mut store = [0u8; 1024];
        let config = LogConfig {
            breaker: BreakerConfig {
                failures_to_open: 2,
                cool_down: Duration::from_secs(10),
            },
            ..LogConfig::default()
        };
        let mut s = LogShipper::new(&mut store, config, 0);
        let mut out = [0u8; 256];
        s.on_connected(ms(0));
        s.log(ms(0), &warn(0));
        s.apply(LogControl::Flush);
        for t in [0, 5_000] {
            let b = s.poll_batch(ms(t + 5_000), &mut out).unwrap();
            assert!(s.on_failed(ms(t + 5_000), b.id));
        }
        assert_eq!(s.poll_batch(ms(19_999), &mut out), None, "breaker open");
        assert!(s.should_log_locally(ms(19_999)));
        assert_eq!(s.poll_timeout(), Some(ms(20_000)));
        let probe = s.poll_batch(ms(20_000), &mut out).unwrap();
        assert!(s.on_ack(probe.id));
        assert!(s.queue().is_empty());
    }

    /// What postcard's serde path makes of `bytes`, the reference for the hand decoder.
    fn serde_decode(bytes: &[u8]) -> Option<LogControl> {
        match postcard::take_from_bytes::<LogControl>(bytes) {
            Ok((control, [])) => Some(control),
            _ => None,
        }
    }

    #[test]
    fn control_decoder_accepts_and_refuses_what_postcard_does() {
        let mut filter = FilterConfig {
            enabled: false,
            levels: LevelSet::from_bits(0x55),
            sample_every: [0, 1, 127, 128, 16_383, 16_384, u16::MAX],
            rate: [None; 7],
        };
        filter.rate[0] = Some(Rate {
            per_second: u32::MAX,
            burst: 0,
        });
        filter.rate[6] = Some(Rate {
            per_second: 1 << 28,
            burst: 300,
        });
        let mut tried = 0;
        let mut accepted = 0;
        for control in [
            LogControl::Flush,
            LogControl::SetFilter(FilterConfig::default()),
            LogControl::SetFilter(filter),
        ] {
            let mut buf = [0u8; 128];
            let n = control.encode(&mut buf).unwrap();
            assert_eq!(LogControl::decode(&buf[..n]), Some(control));
            // Every cut, every byte replaced by values at the edges of each check
            // (bool and option tags, the last byte of a u16 and a u32 varint, the
            // continuation bit), and a byte more.
            for len in 0..=n + 1 {
                for at in 0..len.max(1) {
                    for value in [0u8, 1, 2, 3, 4, 0x0f, 0x10, 0x7f, 0x80, 0x83, 0x84, 0xff] {
                        let mut bytes = buf;
                        bytes[at] = value;
                        let bytes = &bytes[..len];
                        assert_eq!(
                            LogControl::decode(bytes),
                            serde_decode(bytes),
                            "{bytes:02x?}"
                        );
                        tried += 1;
                        accepted += usize::from(serde_decode(bytes).is_some());
                    }
                }
            }
        }
        assert!(
            accepted > 100 && tried - accepted > 100,
            "{accepted} of {tried}"
        );
        // Overlong varints: a u16 of three bytes whose last is 3 at most, a u32 of five
        // whose last is 0x0f at most, and non-minimal forms, as postcard has them.
        let head = [0u8, 1, 0x7f].to_vec();
        for tail in [
            &[0x83, 0x80, 0x03][..],
            &[0xff, 0xff, 0x04],
            &[0x80, 0x80, 0x80, 0x00],
        ] {
            let mut bytes = head.clone();
            bytes.extend_from_slice(tail);
            bytes.extend([0; 6 + 7]);
            assert_eq!(
                LogControl::decode(&bytes),
                serde_decode(&bytes),
                "{bytes:02x?}"
            );
        }
        for last in [0x0f, 0x10] {
            let mut bytes = head.clone();
            bytes.extend([0; 7]);
            bytes.push(1);
            bytes.extend([0x80, 0x80, 0x80, 0x80, last, 0]);
            bytes.extend([0; 6]);
            assert_eq!(
                LogControl::decode(&bytes),
                serde_decode(&bytes),
                "{bytes:02x?}"
            );
            assert_eq!(LogControl::decode(&bytes).is_some(), last == 0x0f);
        }
    }

    #[test]
    fn control_messages_round_trip_and_garbage_is_ignored() {
        let mut filter = FilterConfig::default();
        filter.rate[Level::Info.index()] = Some(crate::log::Rate {
            per_second: 5,
            burst: 10,
        });
        filter.sample_every[0] = 100;
        for control in [LogControl::Flush, LogControl::SetFilter(filter)] {
            let mut buf = [0u8; 128];
            let n = control.encode(&mut buf).unwrap();
            assert_eq!(LogControl::decode(&buf[..n]), Some(control));
            assert_eq!(LogControl::decode(&buf[..n - 1]), None, "truncated");
        }
        assert_eq!(LogControl::decode(&[9, 9, 9]), None);
        // The layout of docs/PROTOCOL.md section 13.2.
        let mut buf = [0u8; 128];
        assert_eq!(LogControl::Flush.encode(&mut buf), Ok(1));
        assert_eq!(buf[0], 1);
        let n = LogControl::SetFilter(filter).encode(&mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            &[
                0, 1, 0x18, 100, 1, 1, 1, 1, 1, 1, 0, 0, 1, 5, 10, 0, 0, 0, 0
            ]
        );
        assert!(matches!(
            LogControl::SetFilter(filter).encode(&mut [0u8; 2]),
            Err(EncodeError::BufferTooSmall { .. })
        ));
    }

    #[test]
    fn the_server_can_change_levels_and_ask_for_a_flush() {
        let mut store = [0u8; 1024];
        let mut s = LogShipper::new(&mut store, LogConfig::default(), 0);
        let mut out = [0u8; 256];
        s.on_connected(ms(0));
        let debug = NewRecord {
            level: Level::Debug,
            ..warn(0)
        };
        assert_eq!(s.log(ms(0), &debug), Logged::Filtered(Verdict::LevelOff));
        s.apply(LogControl::SetFilter(FilterConfig {
            levels: LevelSet::ALL,
            ..FilterConfig::default()
        }));
        assert!(s.wants(Level::Debug));
        assert!(matches!(s.log(ms(1), &debug), Logged::Queued(_)));
        assert_eq!(s.poll_batch(ms(1), &mut out), None);
        s.apply(LogControl::Flush);
        assert_eq!(s.poll_batch(ms(1), &mut out).map(|b| b.records), Some(1));
    }

    #[test]
    fn a_small_buffer_gets_a_smaller_batch() {
        let mut store = [0u8; 4096];
        let config = LogConfig {
            batch_size: 40,
            ..LogConfig::default()
        };
        let mut s = LogShipper::new(&mut store, config, 0);
        s.on_connected(ms(0));
        for t in 0..40 {
            s.log(ms(t), &warn(t));
        }
        let mut out = [0u8; 160];
        let ready = s.poll_batch(ms(40), &mut out).unwrap();
        assert!(ready.records >= 1 && ready.records < 40);
        assert!(ready.len <= 160);
        assert_eq!(seqs_of(&out[..ready.len]).1, ready.records);
    }
}
