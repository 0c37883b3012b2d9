//! `sentelite device` against `sentelite serve`, both as real processes: the README's try-it.

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sentelite_integration_tests::ServeProcess;
use sentelite_integration_tests::serve::{sentelite_binary, spawn_reading_lines};
use sentelite_integration_tests::wait::line_matching;

/// Reads the device's stdout lines until one starts with `prefix`, for at most 20 s.
fn wait_for_line(lines: &mpsc::Receiver<String>, prefix: &str) -> String {
    line_matching(
        lines,
        &format!("`{prefix}` sentelite device"),
        Duration::from_secs(20),
        |line| line.starts_with(prefix),
    )
}

#[test]
fn device_opens_reconnects_after_a_server_restart_and_stops_on_ctrl_c() {
    let server = ServeProcess::start(&[]);
    let (mut device, lines) = spawn_reading_lines(
        Command::new(sentelite_binary())
            .args(["device", "--server", &server.ws_url, "--name", "demo-1"])
            .stderr(Stdio::inherit()),
    );

    let open = wait_for_line(&lines, "open ");
    assert!(open.contains("uid=conn-"), "{open}");

    // The server goes away gracefully: the device reports the close and starts retrying.
    let status = server.interrupt();
    assert!(status.success());
    let closed = wait_for_line(&lines, "closed ");
    assert!(closed.contains("going-away"), "{closed}");
    wait_for_line(&lines, "reconnect ");

    let pid = device.id().to_string();
    let _ = Command::new("kill").args(["-INT", &pid]).status();
    wait_for_line(&lines, "stopping");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = device.try_wait().expect("wait for device") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = device.kill();
            panic!("sentelite device did not exit within 10 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "device exited with {status}");
}
