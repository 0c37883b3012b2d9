//! The sessions the host owns: each nREPL session names the client it evaluates on and the
//! requests it has in flight there.
//!
//! A session points at a client id, not a connection, so it outlives the client's reconnect:
//! each request goes to that client's newest connection at the time it is sent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

/// One request sent to a client and not yet done.
#[derive(Debug)]
pub struct InFlight {
    /// The nREPL `id` as the editor sent it.
    pub id: String,
    /// The op (`eval`, `load-file`, …).
    pub op: String,
    /// Ends the forwarding early (the editor went away, the session closed).
    pub stop: CancellationToken,
}

/// One session.
#[derive(Debug)]
pub struct Session {
    /// The client id it evaluates on; `None` until a client with an evaluator is there.
    pub client: Option<String>,
    /// The namespace the last value was read in, for `describe`'s `aux.current-ns`.
    pub current_ns: Option<String>,
    /// Last request, for the idle time-to-live.
    pub last_used: Instant,
    /// Requests in flight, by a key unique within the host.
    pub in_flight: HashMap<u64, InFlight>,
}

/// All sessions, by id, at most `max` of them: editors can open sessions faster than the
/// time-to-live closes them, and each one is memory the host keeps.
#[derive(Debug)]
pub struct Sessions {
    map: HashMap<String, Session>,
    max: usize,
}

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// A fresh session id, unique for the life of the process and unlikely to repeat across
/// restarts (editors keep ids across a server restart and must not reach a stranger's).
fn new_session_id() -> String {
    let n = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
    let start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!(
        "{:08x}-{:04x}-sl{:02x}-{:016x}",
        (start >> 32) as u32,
        (start >> 16) as u16,
        n & 0xff,
        n ^ start
    )
}

/// [`Sessions::open`] refused: the host already keeps its most sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimit(pub usize);

impl std::fmt::Display for SessionLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the host keeps at most {} nREPL sessions; close one first",
            self.0
        )
    }
}

impl Sessions {
    /// No sessions yet; at most `max` at a time.
    pub fn new(max: usize) -> Self {
        Self {
            map: HashMap::new(),
            max,
        }
    }

    /// Opens a session on `client`, unless `max` are open.
    pub fn open(&mut self, client: Option<String>) -> Result<String, SessionLimit> {
        if self.map.len() >= self.max {
            return Err(SessionLimit(self.max));
        }
        let id = new_session_id();
        self.map.insert(
            id.clone(),
            Session {
                client,
                current_ns: None,
                last_used: Instant::now(),
                in_flight: HashMap::new(),
            },
        );
        Ok(id)
    }

    /// A session, marked used.
    pub fn touch(&mut self, id: &str) -> Option<&mut Session> {
        let session = self.map.get_mut(id)?;
        session.last_used = Instant::now();
        Some(session)
    }

    /// A session, as it is.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut Session> {
        self.map.get_mut(id)
    }

    /// Removes a session, stopping what it has in flight.
    pub fn close(&mut self, id: &str) -> bool {
        match self.map.remove(id) {
            Some(session) => {
                for request in session.in_flight.values() {
                    request.stop.cancel();
                }
                true
            }
            None => false,
        }
    }

    /// Session ids with their client, sorted.
    pub fn list(&self) -> Vec<(String, Option<String>)> {
        let mut list: Vec<_> = self
            .map
            .iter()
            .map(|(id, s)| (id.clone(), s.client.clone()))
            .collect();
        list.sort();
        list
    }

    /// Closes sessions idle (nothing in flight) for longer than `ttl`; returns how many.
    pub fn expire(&mut self, ttl: std::time::Duration) -> usize {
        let before = self.map.len();
        self.map
            .retain(|_, s| !s.in_flight.is_empty() || s.last_used.elapsed() < ttl);
        before - self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::{SessionLimit, Sessions};

    #[test]
    fn sessions_past_the_limit_are_refused_until_one_closes() {
        let mut sessions = Sessions::new(2);
        let first = sessions.open(None).unwrap();
        sessions.open(Some("dev".into())).unwrap();
        assert_eq!(sessions.open(None), Err(SessionLimit(2)));
        assert!(sessions.close(&first));
        assert!(sessions.open(None).is_ok());
    }
}
