//! The floor of the events bench: a WebSocket server that only reads binary frames and counts
//! them (tokio-tungstenite with its default settings, nothing else), run as a child process of
//! this program so its CPU time comes from `/proc` the same way as the other servers'.
//!
//! It prints `listening on ADDR` once bound, and `closed N` when a connection ends, N being
//! the binary frames that connection delivered.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use clap::Args;
use futures_util::StreamExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Options of the hidden `bare-ws-server` subcommand.
#[derive(Debug, Args)]
pub struct BareArgs {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
}

/// Serves until killed.
pub async fn serve(args: BareArgs) -> Result<(), String> {
    let listener = TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("bind {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on {addr}");
    loop {
        let (stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let mut frames = 0u64;
            if let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await {
                // Ends after the close handshake (the library answers the client's Close).
                while let Some(Ok(message)) = ws.next().await {
                    if let Message::Binary(_) = message {
                        frames += 1;
                    }
                }
            }
            println!("closed {frames}");
        });
    }
}

/// A running bare server, killed on drop.
pub struct Bare {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl Bare {
    /// Starts this program's `bare-ws-server` on an ephemeral loopback port.
    pub async fn start() -> Result<Bare, String> {
        let me = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(me)
            .args(["bare-ws-server", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("start the bare server: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = mpsc::unbounded_channel();
        // Ends when the child's stdout closes.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut bare = Bare {
            child,
            lines,
            addr: String::new(),
        };
        let line = bare.line().await?;
        bare.addr = line
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("unexpected first line {line:?}"))?
            .to_owned();
        Ok(bare)
    }

    /// The process id, for its CPU time.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Frames counted by the next `connections` connections to end.
    pub async fn closed(&mut self, connections: usize) -> Result<u64, String> {
        let mut frames = 0;
        for _ in 0..connections {
            let line = self.line().await?;
            frames += line
                .strip_prefix("closed ")
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| format!("unexpected line {line:?}"))?;
        }
        Ok(frames)
    }

    async fn line(&mut self) -> Result<String, String> {
        match tokio::time::timeout(Duration::from_secs(30), self.lines.recv()).await {
            Ok(Some(line)) => Ok(line),
            Ok(None) => Err("the bare server exited".into()),
            Err(_) => Err("the bare server said nothing within 30 s".into()),
        }
    }
}

impl Drop for Bare {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
