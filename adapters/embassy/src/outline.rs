//! Keeps a future's poll in a function of its own.
//!
//! An `async fn` awaited by another is normally inlined into the caller's poll, so every
//! step of the runner, down to the socket's read, became one function of the task's
//! `select` (25 KB on a Cortex-M0+), where states that await the same kind of future each
//! carry their own copy. [`outlined!`] awaits through a `dyn Future`, which the optimiser
//! does not see through: the inner poll is compiled once, as a function of its own, and
//! called. The future is pinned in the caller's state like any awaited future, so this
//! costs no RAM.

/// `outlined!(future)`: `future.await`, with the future's poll kept out of the caller's.
macro_rules! outlined {
    ($future:expr) => {{
        let future = core::pin::pin!($future);
        let future: core::pin::Pin<&mut dyn core::future::Future<Output = _>> = future;
        future.await
    }};
}
pub(crate) use outlined;
