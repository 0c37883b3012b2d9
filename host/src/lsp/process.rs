//! One language server process: spawned with piped stdio, its stdout read as framed JSON
//! messages, its stdin written by a task of its own, its stderr drained (the last lines kept
//! for a crash report), and its exit watched.
//!
//! The session never blocks on the server: it hands encoded messages to the writer's
//! bounded queue and reads parsed messages from the reader's. A server that stops reading
//! its stdin fills the queue, and further messages are refused with a typed error instead
//! of piling up.

use std::collections::VecDeque;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, oneshot, watch};

use super::framing::{self, Limits, MAX_HEADER_BYTES, MessageReader};
use super::settings::LanguageConfig;
use crate::registry::lock;

/// Messages waiting to be written to the server's stdin.
const STDIN_QUEUE: usize = 1024;
/// Parsed messages from the server waiting for the session.
const STDOUT_QUEUE: usize = 256;
/// stderr lines kept for the report of a crash.
const STDERR_TAIL: usize = 20;

/// The running process, as the session sees it.
#[derive(Debug)]
pub struct ServerProcess {
    /// The process id.
    pub pid: u32,
    stdin: mpsc::Sender<Vec<u8>>,
    /// Messages from the server; closes when its stdout ends or breaks the framing.
    pub messages: mpsc::Receiver<Value>,
    /// `Some` once the process has ended (and been reaped).
    pub exit: watch::Receiver<Option<ExitStatus>>,
    kill: Option<oneshot::Sender<()>>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

/// The message could not be queued for the server's stdin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendRefused {
    /// The server is not reading fast enough.
    Full,
    /// Its stdin is closed.
    Closed,
}

impl ServerProcess {
    /// Starts `config`'s program in `dir` (when given).
    pub fn spawn(
        config: &LanguageConfig,
        dir: Option<&std::path::Path>,
        max_message_bytes: usize,
        label: &str,
    ) -> std::io::Result<Self> {
        let mut command = Command::new(&config.command);
        command
            .args(&config.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        let mut child = command.spawn()?;
        let pid = child.id().unwrap_or(0);
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(std::io::Error::other("stdio not piped"));
        };
        let (stdin_tx, stdin_rx) = mpsc::channel(STDIN_QUEUE);
        tokio::spawn(write_stdin(stdin, stdin_rx));
        let (messages_tx, messages) = mpsc::channel(STDOUT_QUEUE);
        let limits = Limits {
            max_header_bytes: MAX_HEADER_BYTES,
            max_body_bytes: max_message_bytes,
        };
        tokio::spawn(read_stdout(
            MessageReader::new(stdout, limits),
            messages_tx,
            label.to_owned(),
        ));
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        tokio::spawn(drain_stderr(stderr, stderr_tail.clone(), label.to_owned()));
        let (exit_tx, exit) = watch::channel(None);
        let (kill, kill_rx) = oneshot::channel();
        tokio::spawn(watch_exit(child, kill_rx, exit_tx));
        Ok(Self {
            pid,
            stdin: stdin_tx,
            messages,
            exit,
            kill: Some(kill),
            stderr_tail,
        })
    }

    /// Queues one JSON-RPC message for the server.
    pub fn send(&self, message: &Value) -> Result<(), SendRefused> {
        let framed = framing::encode(message.to_string().as_bytes());
        self.stdin.try_send(framed).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendRefused::Full,
            mpsc::error::TrySendError::Closed(_) => SendRefused::Closed,
        })
    }

    /// Kills the process (it is reaped by the watcher, and `exit` then says so).
    pub fn kill(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
    }

    /// The exit status, once there is one.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        *self.exit.borrow()
    }

    /// The last lines the server wrote to stderr.
    pub fn stderr_tail(&self) -> Vec<String> {
        lock(&self.stderr_tail).iter().cloned().collect()
    }
}

async fn write_stdin(mut stdin: ChildStdin, mut rx: mpsc::Receiver<Vec<u8>>) {
    while let Some(framed) = rx.recv().await {
        if stdin.write_all(&framed).await.is_err() || stdin.flush().await.is_err() {
            return;
        }
    }
}

async fn read_stdout<R: tokio::io::AsyncRead + Unpin>(
    mut reader: MessageReader<R>,
    tx: mpsc::Sender<Value>,
    label: String,
) {
    loop {
        match reader.next().await {
            Ok(Some(body)) => match serde_json::from_slice::<Value>(&body) {
                Ok(message) => {
                    if tx.send(message).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(server = %label, error = %e, "not JSON from the language server; skipped")
                }
            },
            Ok(None) => return,
            Err(e) => {
                // The stream cannot be resynchronised after a framing error.
                tracing::warn!(server = %label, error = %e, "language server output unreadable; no longer read");
                return;
            }
        }
    }
}

async fn drain_stderr(
    stderr: tokio::process::ChildStderr,
    tail: Arc<Mutex<VecDeque<String>>>,
    label: String,
) {
    let mut lines = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        // Bounded: a line is cut at 4 KiB so a server writing no newlines cannot grow it.
        match AsyncReadExt::take(&mut lines, 4096)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                tracing::debug!(server = %label, "stderr: {text}");
                let mut tail = lock(&tail);
                if tail.len() == STDERR_TAIL {
                    tail.pop_front();
                }
                tail.push_back(text);
            }
        }
    }
}

async fn watch_exit(
    mut child: Child,
    kill: oneshot::Receiver<()>,
    exit: watch::Sender<Option<ExitStatus>>,
) {
    let status = tokio::select! {
        status = child.wait() => status,
        _ = kill => {
            let _ = child.start_kill();
            child.wait().await
        }
    };
    let _ = exit.send(status.ok());
}
