//! Sente callbacks: an event sent with a callback id and answered by a request handler. The
//! handler's [`crate::Responder`] talks in request ids like a native request; this table
//! turns its parts and end back into the one reply the callback gets.
//!
//! A callback takes its answer from the End's payload, or from the last part when the End
//! carries none; an End with a status other than OK is `:chsk/error`. A callback not answered
//! within `callback-timeout-ms` gets `:chsk/timeout` and its handler is told to stop.

use std::collections::HashMap;
use std::time::Duration;

use sentelite_core::frame::PayloadBuf;
use sentelite_core::{RequestId, Status};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::dialect::CallbackError;

struct Pending {
    cb: String,
    last_part: Option<PayloadBuf>,
    deadline: Instant,
    cancel: CancellationToken,
}

/// How a callback ends: its callback id and the reply or the error.
pub(super) type Answer = (String, Result<PayloadBuf, CallbackError>);

#[derive(Default)]
pub(super) struct Callbacks {
    next_id: RequestId,
    pending: HashMap<RequestId, Pending>,
}

impl Callbacks {
    /// Callbacks waiting for their handler.
    pub(super) fn len(&self) -> usize {
        self.pending.len()
    }

    /// A handler starts answering `cb`: the request id its responder uses and the token it
    /// watches.
    pub(super) fn start(
        &mut self,
        cb: String,
        now: Instant,
        timeout: Duration,
    ) -> (RequestId, CancellationToken) {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let cancel = CancellationToken::new();
        self.pending.insert(
            id,
            Pending {
                cb,
                last_part: None,
                deadline: now + timeout,
                cancel: cancel.clone(),
            },
        );
        (id, cancel)
    }

    /// A streamed part: kept in case the End carries nothing.
    pub(super) fn part(&mut self, id: RequestId, payload: PayloadBuf) {
        if let Some(p) = self.pending.get_mut(&id) {
            p.last_part = Some(payload);
        }
    }

    /// The handler's End; `None` when the callback already timed out.
    pub(super) fn end(
        &mut self,
        id: RequestId,
        status: Status,
        payload: PayloadBuf,
    ) -> Option<Answer> {
        let p = self.pending.remove(&id)?;
        let answer = if status != Status::OK {
            Err(CallbackError::Error)
        } else if matches!(payload, PayloadBuf::Empty) {
            Ok(p.last_part.unwrap_or(PayloadBuf::Empty))
        } else {
            Ok(payload)
        };
        Some((p.cb, answer))
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }

    /// Callbacks whose time ran out at `now`: their handlers are told to stop.
    pub(super) fn expired(&mut self, now: Instant) -> Vec<String> {
        let due: Vec<RequestId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        due.into_iter()
            .filter_map(|id| self.pending.remove(&id))
            .map(|p| {
                p.cancel.cancel();
                p.cb
            })
            .collect()
    }

    /// The connection ends: every handler still running is told to stop; nothing can reach
    /// the client any more.
    pub(super) fn cancel_all(&mut self) {
        for (_, p) in self.pending.drain() {
            p.cancel.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(b: u8) -> PayloadBuf {
        PayloadBuf::Value(vec![b])
    }

    #[test]
    fn the_end_payload_or_else_the_last_part_answers() {
        let now = Instant::now();
        let t = Duration::from_secs(1);
        let mut c = Callbacks::default();
        let (a, _) = c.start("A".into(), now, t);
        let (b, _) = c.start("B".into(), now, t);
        let (e, _) = c.start("E".into(), now, t);
        c.part(a, value(1));
        c.part(b, value(1));
        c.part(b, value(2));
        assert_eq!(
            c.end(a, Status::OK, value(9)),
            Some(("A".into(), Ok(value(9))))
        );
        assert_eq!(
            c.end(b, Status::OK, PayloadBuf::Empty),
            Some(("B".into(), Ok(value(2))))
        );
        assert_eq!(
            c.end(e, Status::ERROR, value(3)),
            Some(("E".into(), Err(CallbackError::Error)))
        );
        assert_eq!(c.end(a, Status::OK, value(9)), None);
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn expired_callbacks_cancel_their_handlers_and_ignore_a_late_end() {
        let now = Instant::now();
        let mut c = Callbacks::default();
        let (slow, token) = c.start("S".into(), now, Duration::from_millis(10));
        let (_, other) = c.start("O".into(), now, Duration::from_secs(10));
        assert_eq!(c.next_deadline(), Some(now + Duration::from_millis(10)));
        assert!(c.expired(now).is_empty());
        assert_eq!(c.expired(now + Duration::from_millis(10)), ["S"]);
        assert!(token.is_cancelled() && !other.is_cancelled());
        assert_eq!(c.end(slow, Status::OK, value(1)), None);
        c.cancel_all();
        assert!(other.is_cancelled());
    }
}
