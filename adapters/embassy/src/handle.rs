//! The application's side: [`Handle`] puts what it wants sent into the runner's bounded
//! outbox and reads what arrived from its inbox. Request answers come back through one
//! single-place channel per request slot, so concurrent requests never take each other's
//! answers.

use core::cell::Cell;
use core::future::{Future, poll_fn};
use core::task::Poll;

use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::channel::Channel;
#[cfg(feature = "requests")]
use embassy_time::{Duration, with_timeout};
use sentelite_core::{Payload, RequestId, Status};

#[cfg(feature = "requests")]
use crate::message::{Answer, Ticketed};
use crate::message::{Incoming, Outgoing, OwnedPayload, TooLarge, checked_name, fits, name};

/// Messages the application may queue for sending before `send` waits.
pub const OUTBOX: usize = 2;
/// Messages from the server queued for the application before the runner drops them
/// (counted; a dropped server request is answered `BUSY`).
pub const INBOX: usize = 2;
/// Requests of the application's in flight at once (with feature `requests`).
pub const REQUEST_SLOTS: usize = 2;
/// Time a request's answer may take beyond its own timeout (the runner ends it first).
#[cfg(feature = "requests")]
const ANSWER_SLACK: Duration = Duration::from_secs(2);

type Raw = CriticalSectionRawMutex;

/// State shared by the handle and the runner.
pub(crate) struct Shared {
    pub outbox: Channel<Raw, Outgoing, OUTBOX>,
    pub inbox: Channel<Raw, Incoming, INBOX>,
    /// One answer place per request slot. A one-place `Channel` rather than a `Signal`:
    /// an empty channel is all zero bytes, so a `static` [`crate::Resources`] is placed in
    /// `.bss` instead of carrying a 12 KB initial image in flash (`Signal`'s empty state is a
    /// non-zero niche value). [`Shared::put_answer`] overwrites like a signal would.
    #[cfg(feature = "requests")]
    pub answers: [Channel<Raw, Ticketed, 1>; REQUEST_SLOTS],
    /// The id of the server request cancelled last, for the task answering it (a blob
    /// transfer waits on it while it fetches; the inbox is not read meanwhile). One place,
    /// overwritten: only the request being answered needs to hear, and it matches the id.
    /// With `blob` only: firmware that only logs answers nothing long enough to need it.
    #[cfg(feature = "blob")]
    pub cancels: Channel<Raw, RequestId, 1>,
    /// Bit `i` set: slot `i` is waiting for an answer.
    #[cfg(feature = "requests")]
    slots: Mutex<Raw, Cell<u8>>,
    /// Numbers each use of a slot, so a late answer for an earlier use is not taken.
    #[cfg(feature = "requests")]
    tickets: Mutex<Raw, Cell<u32>>,
    open: Mutex<Raw, Cell<bool>>,
    dropped: Mutex<Raw, Cell<u32>>,
}

impl Shared {
    pub const fn new() -> Self {
        Self {
            outbox: Channel::new(),
            inbox: Channel::new(),
            #[cfg(feature = "requests")]
            answers: [const { Channel::new() }; REQUEST_SLOTS],
            #[cfg(feature = "blob")]
            cancels: Channel::new(),
            #[cfg(feature = "requests")]
            slots: Mutex::new(Cell::new(0)),
            #[cfg(feature = "requests")]
            tickets: Mutex::new(Cell::new(0)),
            open: Mutex::new(Cell::new(false)),
            dropped: Mutex::new(Cell::new(0)),
        }
    }

    pub fn set_open(&self, open: bool) {
        self.open.lock(|o| o.set(open));
    }

    /// Counts a message the application was not there to take.
    pub fn count_dropped(&self) {
        self.dropped.lock(|d| d.set(d.get().saturating_add(1)));
    }

    #[cfg(feature = "requests")]
    fn take_slot(&self) -> Option<(usize, u32)> {
        let slot = self.slots.lock(|s| {
            let used = s.get();
            let free = (0..REQUEST_SLOTS).find(|i| used & (1 << i) == 0)?;
            s.set(used | (1 << free));
            Some(free)
        })?;
        let ticket = self.tickets.lock(|t| {
            let next = t.get().wrapping_add(1);
            t.set(next);
            next
        });
        self.answers[slot].clear();
        Some((slot, ticket))
    }

    /// Leaves `answer` for the request in `slot`, replacing one nobody took (a late answer
    /// for an earlier use of the slot).
    #[cfg(feature = "requests")]
    pub fn put_answer(&self, slot: usize, answer: Ticketed) {
        let place = &self.answers[slot];
        place.clear();
        let _ = place.try_send(answer);
    }

    /// Notes that the server cancelled its request `id`.
    #[cfg(feature = "blob")]
    pub fn put_cancel(&self, id: RequestId) {
        self.cancels.clear();
        let _ = self.cancels.try_send(id);
    }

    /// Waits for room in the outbox, then queues the message `build` makes. The message is
    /// built only once there is room: a call waiting on a full outbox holds what it
    /// borrows, not a 584-byte message, in its future (every handle call's future is part
    /// of the application's task). `build` runs again if another task took the room first.
    /// A `poll_fn` rather than an `async fn`: no future of its own nested in the caller's.
    /// `checked` is the caller's check of its arguments: an error ends the call at once,
    /// posting nothing.
    fn post(
        &self,
        checked: Result<(), HandleError>,
        build: impl Fn() -> Outgoing,
    ) -> impl Future<Output = Result<(), HandleError>> {
        poll_fn(move |cx| {
            if checked.is_err() {
                return Poll::Ready(checked);
            }
            while self.outbox.poll_ready_to_send(cx).is_ready() {
                if self.outbox.try_send(build()).is_ok() {
                    return Poll::Ready(Ok(()));
                }
            }
            Poll::Pending
        })
    }

    #[cfg(feature = "requests")]
    fn free_slot(&self, slot: usize) {
        self.slots.lock(|s| s.set(s.get() & !(1 << slot)));
    }
}

/// Why a handle call did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HandleError {
    /// The payload is larger than [`crate::MAX_PAYLOAD`].
    PayloadTooLarge,
    /// The event or channel name is longer than [`crate::MAX_NAME`].
    NameTooLong,
    /// Every request slot is in use.
    Busy,
    /// The outbox is full (only from the `try_` calls).
    Full,
}

impl From<TooLarge> for HandleError {
    fn from(_: TooLarge) -> Self {
        HandleError::PayloadTooLarge
    }
}

impl core::fmt::Display for HandleError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            HandleError::PayloadTooLarge => "payload too large",
            HandleError::NameTooLong => "name too long",
            HandleError::Busy => "every request slot is in use",
            HandleError::Full => "outbox full",
        })
    }
}

/// The application's side of the client. Copy it freely; every copy talks to the same
/// runner.
#[derive(Clone, Copy)]
pub struct Handle<'a> {
    pub(crate) shared: &'a Shared,
}

impl<'a> Handle<'a> {
    /// True while the handshake is done and the connection up.
    pub fn is_open(&self) -> bool {
        self.shared.open.lock(Cell::get)
    }

    /// Messages from the server the application was too slow to take (dropped).
    pub fn dropped(&self) -> u32 {
        self.shared.dropped.lock(Cell::get)
    }

    /// The next message from the server or the runner.
    pub fn next_event(&self) -> impl Future<Output = Incoming> {
        self.shared.inbox.receive()
    }

    /// A message from the server if one is waiting.
    pub fn try_next_event(&self) -> Option<Incoming> {
        self.shared.inbox.try_receive().ok()
    }

    /// Resolves once the server cancels its request `id` (a Cancel frame). For a task that
    /// answers a long request without reading [`Handle::next_event`] meanwhile: select its
    /// work against this and stop when it resolves. The cancel is still delivered as
    /// [`Incoming::Cancelled`] too. With feature `blob`.
    #[cfg(feature = "blob")]
    pub fn cancelled(&self, id: RequestId) -> impl Future<Output = ()> {
        poll_fn(move |cx| {
            while let Poll::Ready(cancelled) = self.shared.cancels.poll_receive(cx) {
                if cancelled == id {
                    return Poll::Ready(());
                }
            }
            Poll::Pending
        })
    }

    /// Sends a one-way event. It waits in the outbox while the connection is down and goes
    /// out once it is up (at most once: an event in a write that fails is not repeated).
    pub fn send(
        &self,
        event: &str,
        payload: Payload<'_>,
    ) -> impl Future<Output = Result<(), HandleError>> {
        let checked = checked_name(event).and_then(|_| fits(payload).map_err(HandleError::from));
        self.shared.post(checked, move || Outgoing::Event {
            event: name(event).unwrap_or_default(),
            payload: OwnedPayload::copy(payload).unwrap_or_default(),
        })
    }

    /// Sends a request and waits for its end, at most `timeout` (plus a little slack for
    /// the answer to travel). With feature `requests`.
    #[cfg(feature = "requests")]
    pub async fn request(
        &self,
        event: &str,
        payload: Payload<'_>,
        timeout: Duration,
    ) -> Result<Answer, HandleError> {
        let event = checked_name(event)?;
        fits(payload)?;
        let (slot, ticket) = self.shared.take_slot().ok_or(HandleError::Busy)?;
        let timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        let asked = async {
            // Checked above.
            let _ = self
                .shared
                .post(Ok(()), || Outgoing::Request {
                    slot,
                    ticket,
                    event: name(event).unwrap_or_default(),
                    payload: OwnedPayload::copy(payload).unwrap_or_default(),
                    timeout_ms,
                })
                .await;
            loop {
                let answer = self.shared.answers[slot].receive().await;
                if answer.ticket == ticket {
                    return answer.answer;
                }
            }
        };
        let answer = with_timeout(timeout + ANSWER_SLACK, asked)
            .await
            .unwrap_or(Answer {
                status: None,
                payload: OwnedPayload::default(),
                parts: 0,
            });
        self.shared.free_slot(slot);
        Ok(answer)
    }

    /// Sends one streamed part of the answer to the server's request `id`.
    pub fn reply(
        &self,
        id: RequestId,
        seq: u32,
        payload: Payload<'_>,
    ) -> impl Future<Output = Result<(), HandleError>> {
        self.shared
            .post(fits(payload).map_err(HandleError::from), move || {
                Outgoing::Reply {
                    id,
                    seq,
                    payload: OwnedPayload::copy(payload).unwrap_or_default(),
                }
            })
    }

    /// The same, without waiting: `Full` when the outbox is (progress parts can be skipped).
    pub fn try_reply(
        &self,
        id: RequestId,
        seq: u32,
        payload: Payload<'_>,
    ) -> Result<(), HandleError> {
        let payload = OwnedPayload::copy(payload)?;
        self.shared
            .outbox
            .try_send(Outgoing::Reply { id, seq, payload })
            .map_err(|_| HandleError::Full)
    }

    /// [`Handle::try_reply`] with a CBOR value that `encode` writes straight into the
    /// message (up to [`crate::MAX_PAYLOAD`] bytes) and whose length it returns: no buffer
    /// of the caller's holds the part first. `PayloadTooLarge` when `encode` fails.
    pub fn try_reply_encoded<E>(
        &self,
        id: RequestId,
        seq: u32,
        encode: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<(), HandleError> {
        let mut encode = Some(encode);
        let payload = OwnedPayload::encoded(&mut |buf| encode.take()?(buf).ok())
            .ok_or(HandleError::PayloadTooLarge)?;
        self.shared
            .outbox
            .try_send(Outgoing::Reply { id, seq, payload })
            .map_err(|_| HandleError::Full)
    }

    /// [`Handle::end`] with a CBOR value that `encode` writes straight into the message
    /// once the outbox has room (it may be called again if another task takes the room
    /// first); an `encode` that fails ends the request without a payload.
    pub fn end_encoded<E>(
        &self,
        id: RequestId,
        status: Status,
        encode: impl Fn(&mut [u8]) -> Result<usize, E>,
    ) -> impl Future<Output = Result<(), HandleError>> {
        self.shared.post(Ok(()), move || Outgoing::End {
            id,
            status,
            payload: OwnedPayload::encoded(&mut |buf| encode(buf).ok()).unwrap_or_default(),
        })
    }

    /// Ends the answer to the server's request `id` with `status`.
    pub fn end(
        &self,
        id: RequestId,
        status: Status,
        payload: Payload<'_>,
    ) -> impl Future<Output = Result<(), HandleError>> {
        // The end must still go out: without its report rather than not at all.
        self.shared.post(Ok(()), move || Outgoing::End {
            id,
            status,
            payload: OwnedPayload::copy(payload).unwrap_or_default(),
        })
    }

    /// Wants `channel`, now and after every reconnect. With feature `channels`.
    #[cfg(feature = "channels")]
    pub fn subscribe(&self, channel: &str) -> impl Future<Output = Result<(), HandleError>> {
        self.shared.post(checked_name(channel).map(drop), move || {
            Outgoing::Subscribe {
                channel: name(channel).unwrap_or_default(),
            }
        })
    }

    /// Publishes to `channel` through the server. With feature `channels`.
    #[cfg(feature = "channels")]
    pub fn publish(
        &self,
        channel: &str,
        payload: Payload<'_>,
    ) -> impl Future<Output = Result<(), HandleError>> {
        let checked = checked_name(channel).and_then(|_| fits(payload).map_err(HandleError::from));
        self.shared.post(checked, move || Outgoing::Publish {
            channel: name(channel).unwrap_or_default(),
            payload: OwnedPayload::copy(payload).unwrap_or_default(),
        })
    }
}
