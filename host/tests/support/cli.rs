//! The real `sentelite` binary for the CLI tests: `sentelite serve` as a child process that
//! is killed when dropped, and one-shot commands that must succeed.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Output};
use std::sync::mpsc;

use super::{STEP, sentelite};

/// A running `sentelite serve`, killed and reaped when dropped.
pub struct Serve {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sentelite serve` on a free loopback port with `data_dir`; waits (bounded) for its
/// listening line to learn the port.
pub fn serve(data_dir: &Path) -> Serve {
    let mut child = sentelite(&["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .spawn()
        .expect("sentelite serve starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(STEP * 4).expect("listening line");
    let addr = line
        .trim()
        .strip_prefix("listening on ws://")
        .and_then(|r| r.strip_suffix("/ws"))
        .unwrap_or_else(|| panic!("unexpected line {line:?}"))
        .parse()
        .unwrap();
    Serve { child, addr }
}

/// Runs `sentelite ARGS` to the end; panics with its stderr unless it succeeded.
pub fn run(args: &[&str]) -> Output {
    let out = sentelite(args).output().expect("sentelite runs");
    assert!(
        out.status.success(),
        "sentelite {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
