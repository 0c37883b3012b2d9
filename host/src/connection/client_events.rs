//! The client's one-way events on their way to handlers: at most `max-event-tasks-per-conn`
//! handler tasks per connection, and events nobody handles counted instead of vanishing.
//!
//! When every task slot is busy the event that just arrived is held and the connection stops
//! reading its socket until a task ends. Nothing is dropped: a client that sends faster than
//! its handlers finish is slowed down by TCP, the same backpressure a slow reply consumer
//! applies.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::handler::{EventContext, EventHandler};

/// At most one debug line per this interval about events without a handler.
const UNHANDLED_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Kept small and allocation-free until the first event: most connections are idle devices.
pub(super) struct ClientEvents {
    max_tasks: usize,
    /// Created with the first event.
    tasks: Option<Arc<Semaphore>>,
    held: Option<Box<(EventHandler, EventContext)>>,
    last_unhandled_log: Option<Instant>,
}

impl ClientEvents {
    pub(super) fn new(max_tasks: usize) -> Self {
        Self {
            max_tasks,
            tasks: None,
            held: None,
            last_unhandled_log: None,
        }
    }

    /// True while an event waits for a task slot; the connection does not read meanwhile.
    pub(super) fn is_held(&self) -> bool {
        self.held.is_some()
    }

    /// Runs `handler` on a task of its own, or holds it until a slot frees.
    pub(super) fn dispatch(&mut self, handler: EventHandler, ctx: EventContext) {
        let max_tasks = self.max_tasks;
        let tasks = self
            .tasks
            .get_or_insert_with(|| Arc::new(Semaphore::new(max_tasks)));
        match tasks.clone().try_acquire_owned() {
            Ok(permit) => spawn(permit, &handler, ctx),
            Err(_) => self.held = Some(Box::new((handler, ctx))),
        }
    }

    /// Resolves when a task slot is free. Boxed: rare, and idle connections should not
    /// carry its space.
    pub(super) async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        match &self.tasks {
            Some(tasks) => Box::pin(tasks.clone().acquire_owned()).await.ok(),
            None => std::future::pending().await,
        }
    }

    /// A slot freed: run the held event.
    pub(super) fn run_held(&mut self, permit: Option<OwnedSemaphorePermit>) {
        if let (Some(permit), Some(held)) = (permit, self.held.take()) {
            let (handler, ctx) = *held;
            spawn(permit, &handler, ctx);
        }
    }

    /// Counts an event without a handler in `counter` (the registry entry's, which
    /// [`crate::ServerHandle`] reports); returns the total when a line should be logged: the
    /// first, then at most one per interval.
    pub(super) fn note_unhandled(&mut self, counter: &AtomicU64) -> Option<u64> {
        let total = counter.fetch_add(1, Ordering::Relaxed) + 1;
        let now = Instant::now();
        let due = self
            .last_unhandled_log
            .is_none_or(|last| now.duration_since(last) >= UNHANDLED_LOG_INTERVAL);
        if due {
            self.last_unhandled_log = Some(now);
            Some(total)
        } else {
            None
        }
    }
}

fn spawn(permit: OwnedSemaphorePermit, handler: &EventHandler, ctx: EventContext) {
    let task = handler(ctx);
    tokio::spawn(async move {
        task.await;
        drop(permit);
    });
}
