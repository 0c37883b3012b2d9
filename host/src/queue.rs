//! The bounded queue that carries commands to a connection task.
//!
//! Every connection owns one, so its fixed cost counts once per idle connection: a tokio
//! `mpsc` channel costs about 800 bytes before the first message (a cache-padded channel
//! block and 32 preallocated slots); this one costs about 150, and its buffer grows only
//! while commands wait.
//!
//! Many senders, one receiver. `try_send` never waits and hands the command back when the
//! queue is full or the connection is gone; `send` waits for room (used by responders, which
//! should be paced by their client).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::sync::futures::OwnedNotified;

use crate::command::Command;
use crate::registry::lock;

struct State {
    items: VecDeque<Box<Command>>,
    receiver_alive: bool,
}

struct Inner {
    state: Mutex<State>,
    /// Wakes the receiver; `notify_one` keeps a permit when it is not waiting. Shared so the
    /// receiver can hold one owned wait across many turns of its loop (see
    /// [`CommandRx::ready`]).
    item_ready: Arc<Notify>,
    /// Wakes senders waiting for room.
    room_ready: Notify,
    capacity: usize,
}

/// A queue of at most `capacity` commands.
pub(crate) fn queue(capacity: usize) -> (CommandTx, CommandRx) {
    let inner = Arc::new(Inner {
        state: Mutex::new(State {
            items: VecDeque::new(),
            receiver_alive: true,
        }),
        item_ready: Arc::new(Notify::new()),
        room_ready: Notify::new(),
        capacity: capacity.max(1),
    });
    (CommandTx(inner.clone()), CommandRx(inner))
}

/// Why a command was not queued; the command comes back.
#[derive(Debug)]
pub(crate) enum TrySendError {
    /// The queue holds `capacity` commands.
    Full(Box<Command>),
    /// The connection task is gone.
    Closed(Box<Command>),
}

/// Sending side; cheap to clone.
#[derive(Clone)]
pub(crate) struct CommandTx(Arc<Inner>);

impl std::fmt::Debug for CommandTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommandTx")
    }
}

impl CommandTx {
    /// Queues `command` unless the queue is full or closed.
    pub(crate) fn try_send(&self, command: Box<Command>) -> Result<(), TrySendError> {
        {
            let mut state = lock(&self.0.state);
            if !state.receiver_alive {
                return Err(TrySendError::Closed(command));
            }
            if state.items.len() >= self.0.capacity {
                return Err(TrySendError::Full(command));
            }
            state.items.push_back(command);
        }
        self.0.item_ready.notify_one();
        Ok(())
    }

    /// Queues `command`, waiting while the queue is full. Gives it back if the connection
    /// task is gone.
    pub(crate) async fn send(&self, mut command: Box<Command>) -> Result<(), Box<Command>> {
        loop {
            // Registered before looking, so room made in between is not missed.
            let room = self.0.room_ready.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.try_send(command) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(c)) => return Err(c),
                Err(TrySendError::Full(c)) => command = c,
            }
            room.await;
        }
    }

    /// Queues `command` ahead of everything waiting, even when the queue is full. Only for
    /// the one Close that ends a connection replaced by a newer one: it must not wait behind
    /// the traffic it ends, and it is sent at most once per connection.
    pub(crate) fn send_urgent(&self, command: Box<Command>) -> Result<(), Box<Command>> {
        {
            let mut state = lock(&self.0.state);
            if !state.receiver_alive {
                return Err(command);
            }
            state.items.push_front(command);
        }
        self.0.item_ready.notify_one();
        Ok(())
    }

    /// True once the connection task is gone.
    pub(crate) fn is_closed(&self) -> bool {
        !lock(&self.0.state).receiver_alive
    }
}

/// Receiving side, owned by the connection task.
pub(crate) struct CommandRx(Arc<Inner>);

impl CommandRx {
    /// The next command. Cancel-safe: a command is only taken when this returns.
    pub(crate) async fn recv(&mut self) -> Box<Command> {
        loop {
            if let Some(command) = self.try_recv() {
                return command;
            }
            self.0.item_ready.notified().await;
        }
    }

    /// The next command if one is waiting.
    pub(crate) fn try_recv(&mut self) -> Option<Box<Command>> {
        let next = lock(&self.0.state).items.pop_front();
        if next.is_some() {
            self.0.room_ready.notify_waiters();
        }
        next
    }

    /// A future that completes once a command may be waiting (or already when one was
    /// queued since the last wake-up). The connection loop keeps it pinned across turns and
    /// makes a new one only after it fired: a wait made and dropped on every turn cost a
    /// noticeable share of each frame's time.
    pub(crate) fn ready(&self) -> OwnedNotified {
        self.0.item_ready.clone().notified_owned()
    }

    /// Makes the current [`CommandRx::ready`] future complete again, for a loop that left
    /// commands in the queue to come back to them.
    pub(crate) fn wake_again(&self) {
        self.0.item_ready.notify_one();
    }
}

impl Drop for CommandRx {
    fn drop(&mut self) {
        let dropped = {
            let mut state = lock(&self.0.state);
            state.receiver_alive = false;
            std::mem::take(&mut state.items)
        };
        // Commands are dropped outside the lock: their drops may send elsewhere.
        drop(dropped);
        self.0.room_ready.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentelite_core::CloseCode;
    use std::time::Duration;

    fn close() -> Box<Command> {
        Box::new(Command::Close {
            code: CloseCode::NORMAL,
            reason: "",
        })
    }

    #[tokio::test]
    async fn full_and_closed_queues_hand_the_command_back() {
        let (tx, mut rx) = queue(2);
        tx.try_send(close()).unwrap();
        tx.try_send(close()).unwrap();
        assert!(matches!(tx.try_send(close()), Err(TrySendError::Full(_))));
        let _ = rx.recv().await;
        tx.try_send(close()).unwrap();
        drop(rx);
        assert!(tx.is_closed());
        assert!(matches!(tx.try_send(close()), Err(TrySendError::Closed(_))));
        assert!(tx.send(close()).await.is_err());
    }

    #[tokio::test]
    async fn waiting_senders_and_receiver_wake_up() {
        let (tx, mut rx) = queue(1);
        tx.try_send(close()).unwrap();
        let sender = {
            let tx = tx.clone();
            tokio::spawn(async move { tx.send(close()).await.is_ok() })
        };
        let step = Duration::from_secs(5);
        for _ in 0..2 {
            tokio::time::timeout(step, rx.recv()).await.unwrap();
        }
        assert!(tokio::time::timeout(step, sender).await.unwrap().unwrap());
        let receiver = tokio::spawn(async move {
            let _ = rx.recv().await;
        });
        tokio::task::yield_now().await;
        tx.try_send(close()).unwrap();
        tokio::time::timeout(step, receiver).await.unwrap().unwrap();
    }
}
