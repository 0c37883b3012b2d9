//! Waiting: every wait of the driver races its IO against the session's next deadline and,
//! where the driver can take them, the application's calls.

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
}

impl<R: Runtime> Driver<R> {
    /// Waits for `io`, the session's next deadline or a call, whichever comes first.
    pub(super) async fn wait<T>(&self, io: impl Future<Output = T>) -> Wake<T> {
        let timer = async {
            self.session_timer().await;
            Wake::Timer
        };
        let call = async {
            match self.calls.recv().await {
                Ok(call) => Wake::Call(call),
                // Cannot happen while the driver holds a sender; never wake for it.
                Err(_) => pending().await,
            }
        };
        let io = async { Wake::Io(io.await) };
        // `race` picks the first poll at random, so a flood on one input cannot starve
        // the others; overdue timers are also handled at the top of every loop turn.
        future::race(io, future::race(call, timer)).await
    }

    /// Runs `io` to completion unless the session's next deadline comes first (`None`).
    pub(super) async fn wait_io_or_timer<T>(&self, io: impl Future<Output = T>) -> Option<T> {
        let timer = async {
            self.session_timer().await;
            None
        };
        future::or(async { Some(io.await) }, timer).await
    }

    /// Completes at the session's next deadline; never if it has none.
    async fn session_timer(&self) {
        match self.session.poll_timeout() {
            Some(at) => self.runtime.sleep_until(self.clock.to_std(at)).await,
            None => pending::<()>().await,
        }
    }

    /// Hands the session's timers their turn if one is due.
    pub(super) fn expire(&mut self, now: Instant) {
        if self.session.poll_timeout().is_some_and(|at| at <= now) {
            self.session.handle_timeout(now);
        }
    }
}
