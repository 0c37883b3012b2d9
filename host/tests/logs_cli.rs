//! `sentelite logs query` and `sentelite logs tail` against a real `sentelite serve`: records a
//! native client sent come back through the store file and through the HTTP API, filtered, as
//! text, JSON lines or a count; the tail prints records as they arrive.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Output};
use std::sync::mpsc;

use sentelite_core::Status;
use sentelite_core::frame::Payload;
use sentelite_core::log::{BATCH_EVENT, Level, LogConfig, LogShipper, NewRecord};
use sentelite_host::logs::LogEntry;
use support::cli::{Serve, run, serve};
use support::{Got, STEP, TempDir, TestClient, sentelite};

fn stdout_lines(out: &Output) -> Vec<String> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Sends `records` as one acknowledged batch from client `name`.
async fn ship(addr: SocketAddr, name: &str, records: &[(Level, &str)]) {
    let mut client = TestClient::open(addr, name).await;
    let mut queue = [0u8; 2048];
    let mut shipper = LogShipper::new(&mut queue, LogConfig::default(), 0);
    shipper.apply(sentelite_core::log::LogControl::SetFilter(
        sentelite_core::log::FilterConfig {
            levels: sentelite_core::log::LevelSet::ALL,
            ..Default::default()
        },
    ));
    shipper.on_connected(sentelite_core::Instant::ZERO);
    for (i, (level, message)) in records.iter().enumerate() {
        let record = NewRecord {
            time_ms: i as u64,
            level: *level,
            namespace: "app.net",
            id: Some("app.net/link"),
            message,
            data: &[],
        };
        shipper.log(sentelite_core::Instant::ZERO, &record);
    }
    shipper.apply(sentelite_core::log::LogControl::Flush);
    let mut out = [0u8; 480];
    let ready = shipper
        .poll_batch(sentelite_core::Instant::ZERO, &mut out)
        .expect("a batch");
    let id = client
        .request(BATCH_EVENT, Payload::Bytes(&out[..ready.len]), Some(STEP))
        .await;
    loop {
        if let Got::End {
            id: end, status, ..
        } = client.next().await
            && end == id
        {
            assert_eq!(status, Status::OK);
            return;
        }
    }
}

#[tokio::test]
async fn query_reads_the_store_and_the_server_and_tail_follows() {
    let dir = TempDir::new("logs-cli");
    let server = serve(&dir.0);
    let data_dir = dir.0.to_str().unwrap().to_owned();
    let url = format!("ws://{}/ws", server.addr);
    ship(
        server.addr,
        "rover-1",
        &[
            (Level::Info, "link up"),
            (Level::Error, "link lost"),
            (Level::Warn, "retrying"),
        ],
    )
    .await;
    ship(server.addr, "rover-2", &[(Level::Error, "battery low")]).await;

    let out = run(&["logs", "query", "--data-dir", &data_dir, "--count"]);
    assert_eq!(stdout_lines(&out), vec!["4"]);
    let out = run(&[
        "logs", "query", "--server", &url, "--level", "warn", "--client", "rover-1", "--json",
    ]);
    let entries: Vec<LogEntry> = stdout_lines(&out)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let messages: Vec<&str> = entries.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages, vec!["link lost", "retrying"]);
    let out = run(&[
        "logs", "query", "--server", &url, "--grep", "battery", "--since", "1h",
    ]);
    let lines = stdout_lines(&out);
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].contains("ERROR")
            && lines[0].contains("rover-2")
            && lines[0].contains("battery low"),
        "{}",
        lines[0]
    );
    let out = run(&[
        "logs",
        "query",
        "--data-dir",
        &data_dir,
        "--until",
        "1h",
        "--count",
    ]);
    assert_eq!(
        stdout_lines(&out),
        vec!["0"],
        "nothing is older than an hour"
    );
    let bad = sentelite(&["logs", "query", "--data-dir", &data_dir, "--level", "loud"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown level"));

    let mut tail = sentelite(&[
        "logs", "tail", "--server", &url, "--level", "error", "--json",
    ])
    .spawn()
    .unwrap();
    let stdout = tail.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The tail is connected once a record shipped now reaches it; ship until one does (from a
    // new client each time: the same records again would be duplicates, never fed live).
    let mut got = None;
    for attempt in 0..20 {
        ship(
            server.addr,
            &format!("rover-3-{attempt}"),
            &[(Level::Warn, "ignored"), (Level::Error, "overheat")],
        )
        .await;
        if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(250)) {
            got = Some(line);
            break;
        }
    }
    let _ = tail.kill();
    let tail_out = tail.wait_with_output().unwrap();
    let entry: LogEntry = serde_json::from_str(&got.unwrap_or_else(|| {
        panic!(
            "the tail printed no record; its stderr: {}",
            String::from_utf8_lossy(&tail_out.stderr)
        )
    }))
    .unwrap();
    assert_eq!(
        (
            entry.client_id.starts_with("rover-3-"),
            entry.message.as_str()
        ),
        (true, "overheat")
    );
}

#[tokio::test]
async fn the_server_logs_each_client_that_connects_and_leaves() {
    let dir = TempDir::new("conn-log");
    let mut cmd = sentelite(&["serve", "--listen", "127.0.0.1:0", "--data-dir"]);
    cmd.arg(&dir.0).env("SENTELITE_LOG", "info");
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).unwrap();
    let addr: SocketAddr = first
        .trim()
        .strip_prefix("listening on ws://")
        .and_then(|r| r.strip_suffix("/ws"))
        .unwrap()
        .parse()
        .unwrap();
    let mut server = Serve { child, addr };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let client = TestClient::open(addr, "probe\u{1b}[2J").await;
    drop(client);
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + STEP;
    while std::time::Instant::now() < deadline
        && !lines
            .iter()
            .any(|l: &String| l.contains("client disconnected"))
    {
        if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(100)) {
            lines.push(line);
        }
    }
    let _ = server.child.kill();
    let connected = lines
        .iter()
        .find(|l| l.contains("client connected"))
        .unwrap_or_else(|| panic!("no connect line in {lines:#?}"));
    assert!(connected.contains("probe\\u{1b}[2J"), "{connected}");
    assert!(connected.contains("127.0.0.1"), "{connected}");
    assert!(
        lines.iter().all(|l| !l.contains('\u{1b}')),
        "a peer's escape sequence reached the log: {lines:#?}"
    );
    let gone = lines
        .iter()
        .find(|l| l.contains("client disconnected"))
        .unwrap_or_else(|| panic!("no disconnect line in {lines:#?}"));
    assert!(gone.contains("probe") && gone.contains("code="), "{gone}");
}

/// A free loopback port, so a restarted server can listen where the first one did.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `sentelite serve` on a fixed port; waits for its listening line.
fn serve_on(data_dir: &std::path::Path, port: u16) -> Serve {
    let listen = format!("127.0.0.1:{port}");
    let mut child = sentelite(&["serve", "--listen", &listen, "--data-dir"])
        .arg(data_dir)
        .spawn()
        .expect("sentelite serve starts");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    assert!(line.starts_with("listening on"), "{line:?}");
    Serve {
        child,
        addr: listen.parse().unwrap(),
    }
}

#[test]
fn a_device_ships_every_record_through_two_server_kills() {
    let dir = TempDir::new("kill-9");
    let port = free_port();
    let mut server = Some(serve_on(&dir.0, port));
    let url = format!("ws://127.0.0.1:{port}/ws");
    let device = sentelite(&[
        "device",
        "--server",
        &url,
        "--name",
        "meter-1",
        "--count",
        "3000",
        "--rate",
        "1000",
        "--levels",
        "info,warn,error",
    ])
    .spawn()
    .unwrap();
    // Twice, while the device is still logging: kill -9, wait, start again on the same
    // address and data dir.
    for _ in 0..2 {
        std::thread::sleep(std::time::Duration::from_millis(800));
        let mut old = server.take().unwrap();
        old.child.kill().unwrap(); // SIGKILL: no graceful anything
        old.child.wait().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        server = Some(serve_on(&dir.0, port));
    }
    let out = wait_with_timeout(device, std::time::Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l == "sent 3000 acked 3000 dropped 0"),
        "device output: {stdout}"
    );
    drop(server);
    let data_dir = dir.0.to_str().unwrap();
    let count = run(&[
        "logs",
        "query",
        "--data-dir",
        data_dir,
        "--client",
        "meter-1",
        "--count",
    ]);
    assert_eq!(
        stdout_lines(&count),
        vec!["3000"],
        "every record stored exactly once"
    );
    // Generated records carry realistic fields, their number in the structured data.
    let some = run(&[
        "logs",
        "query",
        "--data-dir",
        data_dir,
        "--client",
        "meter-1",
        "--limit",
        "5",
        "--json",
    ]);
    for line in stdout_lines(&some) {
        let entry: LogEntry = serde_json::from_str(&line).unwrap();
        assert!(!entry.ns.is_empty() && !entry.message.is_empty(), "{line}");
        assert!(
            ["info", "warn", "error"].contains(&entry.level.as_str()),
            "{line}"
        );
        assert_eq!(
            entry.data["n"].as_u64(),
            entry.seq.map(u64::from),
            "the data names the record: {line}"
        );
    }
}

/// Waits for a child to exit, killing it (and failing) after `limit`.
fn wait_with_timeout(mut child: Child, limit: std::time::Duration) -> Output {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    panic!(
        "still running after {limit:?}; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}
