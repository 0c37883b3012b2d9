//! The outside peers of `tests/peers/` as child processes: the nbb (ClojureScript) sente-lite
//! client and the plain JavaScript JSON-dialect client. Each prints one JSON observation per
//! line and takes one JSON command per line on stdin; a [`Peer`] sends commands and waits,
//! bounded in time, for the observations a test expects.
//!
//! Node and the peers' npm packages are outside the project. [`available`] says whether they
//! are installed; when they are not, a test skips loudly, or fails under
//! `SENTELITE_REQUIRE_PEERS=1` (as in CI).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::serve::spawn_reading_lines;

/// `tests/peers/` of the workspace.
pub fn peers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../peers")
}

/// True when `node` runs and `npm ci --prefix tests/peers` has installed nbb and ws. When
/// not, prints a loud skip notice naming `test`, or panics when `SENTELITE_REQUIRE_PEERS=1`.
pub fn available(test: &str) -> bool {
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let modules = peers_dir().join("node_modules");
    let installed = ["nbb", "ws"]
        .iter()
        .all(|package| modules.join(package).join("package.json").exists());
    if node && installed {
        return true;
    }
    let missing = if node {
        "tests/peers/node_modules (run `npm ci --prefix tests/peers`)"
    } else {
        "node (apt-get install nodejs npm, then `npm ci --prefix tests/peers`)"
    };
    let require = std::env::var("SENTELITE_REQUIRE_PEERS").is_ok_and(|v| v == "1");
    assert!(
        !require,
        "{test}: {missing} is missing and SENTELITE_REQUIRE_PEERS=1"
    );
    // Straight to the process's stderr: the test harness captures `eprintln!` of passing
    // tests, and a skip must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED {test}: {missing} is missing; set SENTELITE_REQUIRE_PEERS=1 to fail instead ***\n"
    );
    false
}

/// A running peer process, killed on drop.
pub struct Peer {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Everything it printed so far, for failure messages.
    seen: Vec<String>,
}

impl Peer {
    /// The sente-lite peer (`sente_lite_peer.cljs` under nbb) on `url`, joining `channel`;
    /// `options` is its EDN options map (`{:backoff-ms 100}`).
    pub fn sente_lite(url: &str, channel: &str, options: &str) -> Peer {
        let dir = peers_dir();
        let mut cmd = Command::new(dir.join("node_modules/.bin/nbb"));
        cmd.args(["sente_lite_peer.cljs", url, channel, options]);
        Self::start("sente-lite peer", cmd)
    }

    /// The JSON-dialect peer (`json_peer.mjs`) on `url`, joining `channel`; `options` is its
    /// JSON options object.
    pub fn json(url: &str, channel: &str, options: &str) -> Peer {
        let mut cmd = Command::new("node");
        cmd.args(["json_peer.mjs", url, channel, options]);
        Self::start("JSON peer", cmd)
    }

    fn start(name: &'static str, mut cmd: Command) -> Peer {
        cmd.current_dir(peers_dir()).stdin(Stdio::piped());
        let (mut child, lines) = spawn_reading_lines(&mut cmd);
        let stdin = child.stdin.take();
        Peer {
            name,
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// Sends one command (`{"cmd": "publish", …}`).
    pub fn send(&mut self, command: Value) {
        let stdin = self.stdin.as_mut().expect("peer stdin open");
        writeln!(stdin, "{command}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("{} took no command {command}: {e}", self.name));
    }

    /// The next observation of kind `event`, within `limit`; other observations are
    /// skipped.
    pub fn expect(&mut self, event: &str, limit: Duration) -> Value {
        self.expect_where(event, limit, |o| o["event"] == event)
    }

    /// The next observation satisfying `wanted`, within `limit`. Panics, naming `what` and
    /// showing what the peer printed, on the peer's own `error` observation, the end of its
    /// output, or the time limit.
    pub fn expect_where(
        &mut self,
        what: &str,
        limit: Duration,
        wanted: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let observation = match self.next_before(deadline) {
                Ok(observation) => observation,
                Err(e) => self.fail(&format!("no {what} within {limit:?}: {e}")),
            };
            if observation["event"] == "error" {
                self.fail(&format!("the peer failed while waiting for {what}"));
            }
            if wanted(&observation) {
                return observation;
            }
        }
    }

    /// Everything the peer observes during `window` (it must not fail meanwhile).
    pub fn observe_for(&mut self, window: Duration) -> Vec<Value> {
        let deadline = Instant::now() + window;
        let mut got = Vec::new();
        loop {
            match self.next_before(deadline) {
                Ok(observation) if observation["event"] == "error" => self.fail("the peer failed"),
                Ok(observation) => got.push(observation),
                Err(RecvTimeoutError::Timeout) => return got,
                Err(e) => self.fail(&format!("output ended: {e}")),
            }
        }
    }

    /// Asks the peer to quit and waits, at most `limit`, for its exit status.
    pub fn quit(mut self, limit: Duration) -> ExitStatus {
        self.send(serde_json::json!({ "cmd": "quit" }));
        drop(self.stdin.take());
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.fail(&format!("did not exit within {limit:?} of quit"))
    }

    fn next_before(&mut self, deadline: Instant) -> Result<Value, RecvTimeoutError> {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = self.lines.recv_timeout(left)?;
        self.seen.push(line.clone());
        Ok(serde_json::from_str(&line).unwrap_or_else(|e| {
            self.fail(&format!("printed a line that is not JSON ({e}): {line}"))
        }))
    }

    fn fail(&self, why: &str) -> ! {
        let start = self.seen.len().saturating_sub(30);
        panic!(
            "{}: {why}\nits last lines:\n{}",
            self.name,
            self.seen[start..].join("\n")
        )
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
