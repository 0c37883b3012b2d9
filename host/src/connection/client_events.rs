//! The client's one-way events on their way to handlers: at most `max-event-tasks-per-conn`
//! handler tasks per connection, and events nobody handles counted instead of vanishing.
//!
//! When every task slot is busy the event that just arrived is held and the connection stops
//! reading its socket until a task ends. Nothing is dropped: a client that sends faster than
//! its handlers finish is slowed down by TCP, the same backpressure a slow reply consumer
//! applies.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::handler::{EventContext, EventHandler};

/// Two pointers, and no allocation until the first event: most connections are idle devices.
#[derive(Default)]
pub(crate) struct ClientEvents {
    /// Created with the first event.
    tasks: Option<Arc<Semaphore>>,
    held: Option<Box<(EventHandler, EventContext)>>,
}

impl ClientEvents {
    /// True while an event waits for a task slot; the connection does not read meanwhile.
    pub(crate) fn is_held(&self) -> bool {
        self.held.is_some()
    }

    /// Runs `handler` on a task of its own, or holds it until one of the `max_tasks` slots
    /// frees.
    pub(crate) fn dispatch(&mut self, max_tasks: usize, handler: EventHandler, ctx: EventContext) {
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
    pub(crate) async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        match &self.tasks {
            Some(tasks) => Box::pin(tasks.clone().acquire_owned()).await.ok(),
            None => std::future::pending().await,
        }
    }

    /// A slot freed: run the held event.
    pub(crate) fn run_held(&mut self, permit: Option<OwnedSemaphorePermit>) {
        if let (Some(permit), Some(held)) = (permit, self.held.take()) {
            let (handler, ctx) = *held;
            spawn(permit, &handler, ctx);
        }
    }
}

/// Counts an event without a handler in `counter` (the registry entry's, which
/// [`crate::ServerHandle`] reports). Returns the total when a line should be logged: at 1, 2,
/// 4, 8, … events, so a flood of a million writes 20 lines and needs no clock.
pub(crate) fn count_unhandled(counter: &AtomicU64) -> Option<u64> {
    let total = counter.fetch_add(1, Ordering::Relaxed) + 1;
    total.is_power_of_two().then_some(total)
}

fn spawn(permit: OwnedSemaphorePermit, handler: &EventHandler, ctx: EventContext) {
    let task = handler(ctx);
    tokio::spawn(async move {
        task.await;
        drop(permit);
    });
}
