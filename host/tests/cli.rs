//! The `sentelite` binary: the listening line, the config file, and Ctrl-C.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sentelite_core::{ClientConfig, CloseCode};
use support::{Got, STEP, TempDir, TestClient};

fn sentelite() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sentelite"));
    cmd.env("SENTELITE_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Kills the child if a test fails before stopping it.
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Running {
    fn spawn(cmd: &mut Command) -> Self {
        Self(Some(cmd.spawn().expect("sentelite starts")))
    }

    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("still running")
    }

    /// Reads the first stdout line and returns the address it announces.
    fn listening_addr(&mut self) -> SocketAddr {
        let stdout = self.child().stdout.take().expect("stdout piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(STEP).expect("listening line in time");
        let addr = line
            .strip_prefix("listening on ws://")
            .and_then(|rest| rest.strip_suffix("/ws\n"))
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        addr.parse().expect("a socket address")
    }

    fn interrupt(&mut self) {
        let pid = self.child().id().to_string();
        let status = Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the exit on a thread; returns the status and what was written to stderr.
    fn wait(&mut self, limit: Duration) -> (ExitStatus, String) {
        let mut child = self.0.take().expect("still running");
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ = err.read_to_string(&mut stderr);
            }
            let _ = tx.send((child.wait().expect("wait"), stderr));
        });
        match rx.recv_timeout(limit) {
            Ok(done) => done,
            Err(_) => {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                panic!("sentelite did not exit within {limit:?}");
            }
        }
    }
}

fn health(addr: SocketAddr) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(STEP)).unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn serve_prints_the_bound_address_and_stops_on_ctrl_c() {
    let dir = TempDir::new("cli-data");
    let data = dir.0.join("nested");
    let mut server = Running::spawn(
        sentelite()
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data),
    );
    let addr = server.listening_addr();
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0, "the real port is printed");
    assert!(data.is_dir(), "the data directory is created");
    let response = health(addr);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    server.interrupt();
    let (status, stderr) = server.wait(Duration::from_secs(10));
    assert!(status.success(), "exit {status:?}: {stderr}");
}

#[test]
fn config_file_sets_limits_and_flags_override_it() {
    let dir = TempDir::new("cli-config");
    std::fs::create_dir_all(&dir.0).unwrap();
    let config = dir.0.join("sentelite.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata-dir = {:?}\nmax-connections = 1\ntoken = \"from-file\"\n",
            dir.0.join("data")
        ),
    )
    .unwrap();
    let mut server = Running::spawn(
        sentelite()
            .args(["serve", "--token", "from-flag", "--config"])
            .arg(&config),
    );
    let addr = server.listening_addr();
    assert!(dir.0.join("data").is_dir());

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut config = ClientConfig::new("cli-test").unwrap();
        config.token = Some("from-file".try_into().unwrap());
        let mut stale = TestClient::connect(addr, config.clone()).await;
        assert_eq!(
            stale.expect_ws_close().await.0,
            CloseCode::AUTH_FAILED.websocket_code()
        );

        config.token = Some("from-flag".try_into().unwrap());
        let (_first, welcome) = TestClient::handshake(addr, config.clone()).await;
        assert!(matches!(welcome, Got::Welcome { .. }));
        // Another client id: the same one would replace the first (same boot id).
        config.client_id = "cli-test-2".try_into().unwrap();
        let mut second = TestClient::connect(addr, config).await;
        assert_eq!(
            second.expect_ws_close().await.0,
            CloseCode::TOO_MANY_CONNECTIONS.websocket_code()
        );
    });
    server.interrupt();
    let (status, stderr) = server.wait(Duration::from_secs(10));
    assert!(status.success(), "exit {status:?}: {stderr}");
}

#[test]
fn unknown_config_keys_are_a_clear_error() {
    let dir = TempDir::new("cli-bad-config");
    std::fs::create_dir_all(&dir.0).unwrap();
    let config = dir.0.join("bad.toml");
    std::fs::write(&config, "max-conections = 3\n").unwrap();
    let mut run = Running::spawn(
        sentelite()
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config),
    );
    let (status, stderr) = run.wait(Duration::from_secs(10));
    assert!(!status.success());
    assert!(stderr.contains("max-conections"), "{stderr}");
    assert!(stderr.contains("bad.toml"), "{stderr}");
}

#[test]
fn serve_with_nrepl_prints_the_banner_and_keeps_the_port_file_while_running() {
    let dir = TempDir::new("cli-nrepl");
    std::fs::create_dir_all(&dir.0).unwrap();
    let mut server = Running::spawn(
        sentelite()
            .current_dir(&dir.0)
            .args(["serve", "--listen", "127.0.0.1:0", "--nrepl", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(dir.0.join("data")),
    );
    let port = nrepl_port(&mut server);
    let port_file = dir.0.join(".nrepl-port");
    assert_eq!(
        std::fs::read_to_string(&port_file).unwrap(),
        port.to_string()
    );
    // A describe with no evaluator connected: the host's own ops.
    let (_editor, reply) = nrepl_editor(port, b"d2:op8:describe2:id1:1e");
    assert!(reply.contains("16:sentelite/select"), "{reply}");
    server.interrupt();
    let (status, stderr) = server.wait(Duration::from_secs(10));
    assert!(status.success(), "exit {status:?}: {stderr}");
    assert!(!port_file.exists(), ".nrepl-port removed on shutdown");
}

/// Reads the listening line and the nREPL banner; returns the endpoint's port.
fn nrepl_port(server: &mut Running) -> u16 {
    let stdout = server.child().stdout.take().expect("stdout piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let _listening = rx.recv_timeout(STEP).expect("listening line");
    let banner = rx.recv_timeout(STEP).expect("nREPL banner");
    banner
        .strip_prefix("nREPL server started on port ")
        .and_then(|rest| rest.split_once(" on host 127.0.0.1 - nrepl://127.0.0.1:"))
        .map(|(port, again)| {
            assert_eq!(port, again, "{banner}");
            port.parse().expect("a port")
        })
        .unwrap_or_else(|| panic!("unexpected banner {banner:?}"))
}

/// An editor connection that sent `message`; returns it (still open) and the first answer.
fn nrepl_editor(port: u16, message: &[u8]) -> (std::net::TcpStream, String) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(message).unwrap();
    stream.set_read_timeout(Some(STEP)).unwrap();
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).unwrap();
    let reply = String::from_utf8_lossy(&buf[..n]).into_owned();
    (stream, reply)
}

#[test]
fn the_config_files_nrepl_table_limits_editors_and_names_the_port_file() {
    let dir = TempDir::new("cli-nrepl-config");
    std::fs::create_dir_all(&dir.0).unwrap();
    std::fs::write(
        dir.0.join("sentelite.toml"),
        "[nrepl]\nmax-connections = 1\nport-file = \"editor.port\"\n",
    )
    .unwrap();
    let mut server = Running::spawn(
        sentelite()
            .current_dir(&dir.0)
            .args([
                "serve",
                "--config",
                "sentelite.toml",
                "--listen",
                "127.0.0.1:0",
            ])
            .args(["--nrepl", "127.0.0.1:0", "--data-dir"])
            .arg(dir.0.join("data")),
    );
    let port = nrepl_port(&mut server);
    assert_eq!(
        std::fs::read_to_string(dir.0.join("editor.port")).unwrap(),
        port.to_string()
    );
    assert!(
        !dir.0.join(".nrepl-port").exists(),
        "only the named port file"
    );
    let (_first, reply) = nrepl_editor(port, b"d2:op8:describe2:id1:1e");
    assert!(reply.contains("16:sentelite/select"), "{reply}");
    let (_second, refused) = nrepl_editor(port, b"d2:op8:describe2:id1:2e");
    assert!(refused.contains("too-many-connections"), "{refused}");
    server.interrupt();
    let (status, stderr) = server.wait(Duration::from_secs(10));
    assert!(status.success(), "exit {status:?}: {stderr}");
}
