//! Waiting: every wait of the driver races its IO against the session's next deadline, the
//! application's shutdown (or, once shutting down, the close deadline) and, where the driver
//! can take them, the application's calls.

use std::future::{Future, pending};

use futures_lite::future;
use sentelite_core::Instant;

use super::Driver;
use crate::Runtime;
use crate::call::Call;

/// What ended a wait.
pub(super) enum Wake<T> {
    Io(T),
    Timer,
    Call(Call),
    /// The application closed the client.
    Stop,
    /// A shutdown ran out of time: drop the transport as it is.
    CloseDeadline,
}

impl<T> Wake<T> {
    pub(super) fn map<U>(self, f: impl FnOnce(T) -> U) -> Wake<U> {
        match self {
            Wake::Io(io) => Wake::Io(f(io)),
            Wake::Timer => Wake::Timer,
            Wake::Call(call) => Wake::Call(call),
            Wake::Stop => Wake::Stop,
            Wake::CloseDeadline => Wake::CloseDeadline,
        }
    }
}

impl<R: Runtime> Driver<R> {
    /// Waits for `io`, the session's next deadline, a call or the shutdown, whichever comes
    /// first.
    pub(super) async fn wait<T>(&self, io: impl Future<Output = T>) -> Wake<T> {
        let call = async {
            match self.calls.recv().await {
                Ok(call) => Wake::Call(call),
                // Cannot happen while the driver holds a sender; never wake for it.
                Err(_) => pending().await,
            }
        };
        // `race` picks the first poll at random, so a flood on one input cannot starve
        // the others; overdue timers are also handled at the top of every loop turn.
        future::race(call, self.wait_io_or_timer(io)).await
    }

    /// Waits for `io`, the session's next deadline or the shutdown, leaving calls queued.
    pub(super) async fn wait_io_or_timer<T>(&self, io: impl Future<Output = T>) -> Wake<T> {
        let next = sentelite_core::time::earliest(
            self.session.poll_timeout(),
            self.shipping.as_ref().and_then(|s| s.next_timer()),
        );
        let timer = async {
            match next {
                Some(at) => self.runtime.sleep_until(self.clock.to_std(at)).await,
                None => pending::<()>().await,
            }
            Wake::Timer
        };
        let io = async { Wake::Io(io.await) };
        future::race(io, future::race(timer, self.stop_or_close_deadline())).await
    }

    /// Before a shutdown: completes when the application asks for one. After: completes at
    /// the close deadline.
    async fn stop_or_close_deadline<T>(&self) -> Wake<T> {
        match self.close_by {
            None => {
                // Closing the channel is the signal; nothing is ever sent on it.
                let _ = self.stop.recv().await;
                Wake::Stop
            }
            Some(at) => {
                self.runtime.sleep_until(at).await;
                Wake::CloseDeadline
            }
        }
    }

    /// Hands the session's timers their turn if one is due.
    pub(super) fn expire(&mut self, now: Instant) {
        if self.session.poll_timeout().is_some_and(|at| at <= now) {
            self.session.handle_timeout(now);
        }
    }
}
