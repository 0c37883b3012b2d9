//! Bounded waiting that works under any executor (smol's timer runs its own reactor when the
//! test runs on tokio), so a broken behaviour fails the test instead of hanging it.

use std::future::Future;
use std::time::Duration;

use futures_lite::FutureExt;
use sentelite_driver::{ClientEvent, Events};
use smol::Timer;

/// Runs `fut`, panicking with `what` if it takes longer than `limit`.
pub async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    let what = what.to_owned();
    fut.or(async move {
        Timer::after(limit).await;
        panic!("timed out after {limit:?} waiting for {what}")
    })
    .await
}

/// Receives events until one satisfies `pred`, for at most `limit`; returns it.
pub async fn event_matching(
    events: &Events,
    limit: Duration,
    what: &str,
    mut pred: impl FnMut(&ClientEvent) -> bool,
) -> ClientEvent {
    within(limit, what, async {
        loop {
            match events.recv().await {
                Some(event) if pred(&event) => return event,
                Some(_) => {}
                None => panic!("event stream ended while waiting for {what}"),
            }
        }
    })
    .await
}

/// Asserts that no event satisfying `pred` arrives within `window`.
pub async fn no_event_matching(
    events: &Events,
    window: Duration,
    what: &str,
    mut pred: impl FnMut(&ClientEvent) -> bool,
) {
    // A stream that ends delivers nothing either; that must not pass for "nothing came".
    let seen = async {
        loop {
            match events.recv().await {
                Some(event) if pred(&event) => return Some(Some(event)),
                Some(_) => {}
                None => return Some(None),
            }
        }
    }
    .or(async {
        Timer::after(window).await;
        None
    })
    .await;
    match seen {
        None => {}
        Some(None) => panic!("the event stream ended while waiting to see no {what}"),
        Some(Some(event)) => panic!("unexpected {what}: {event:?}"),
    }
}

/// Reads a child's output `lines` until one satisfies `wanted`, for at most `limit`; panics
/// naming `what` when none does or the child's output ends.
pub fn line_matching(
    lines: &std::sync::mpsc::Receiver<String>,
    what: &str,
    limit: Duration,
    wanted: impl Fn(&str) -> bool,
) -> String {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if wanted(&line) => return line,
            Ok(_) => {}
            Err(e) => panic!("no {what} line: {e}"),
        }
    }
}
