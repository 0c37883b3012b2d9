//! An editor reaches the virtual device: the real `nrepl.cmdline` client (Debian `clojure` +
//! `libnrepl-clojure`) connects to `sentelite serve --nrepl` and evaluates forms of the
//! example app's evaluator on the device running on a TAP, all inside a network namespace
//! the test creates.
//!
//! Needs root, `/dev/net/tun` and the Clojure packages; skips loudly elsewhere, fails under
//! `SENTELITE_REQUIRE_PEERS=1`.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use sentelite_integration_tests::TempDir;
use sentelite_integration_tests::serve::sentelite_binary;
use sentelite_integration_tests::tap::{Namespace, SERVER_IP};
use sentelite_integration_tests::wait::line_matching;

const NREPL_JAR: &str = "/usr/share/java/nrepl.jar";
/// The JVM starts slowly on a busy machine.
const CLIENT_LIMIT: Duration = Duration::from_secs(180);

fn clojure_available() -> bool {
    let ok = std::path::Path::new(NREPL_JAR).exists()
        && std::process::Command::new("clojure")
            .args(["-e", "nil"])
            .stdin(Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        let require = std::env::var("SENTELITE_REQUIRE_PEERS").is_ok_and(|v| v == "1");
        assert!(
            !require,
            "clojure + libnrepl-clojure missing and SENTELITE_REQUIRE_PEERS=1"
        );
        eprintln!(
            "\n*** SKIPPED tap_nrepl: clojure and libnrepl-clojure are not installed \
             (apt-get install clojure libnrepl-clojure) ***\n"
        );
    }
    ok
}

#[test]
fn nrepl_cmdline_evaluates_on_the_virtual_device() {
    if !clojure_available() {
        return;
    }
    let Some(ns) = Namespace::create("tap_nrepl") else {
        return;
    };
    let data = TempDir::new("tap-nrepl");
    let nrepl_addr = format!("{SERVER_IP}:7888");
    let (_server, server_lines) = ns.spawn(
        ns.command(sentelite_binary())
            .current_dir(data.path())
            .args(["serve", "--listen", &format!("{SERVER_IP}:7700")])
            .arg("--data-dir")
            .arg(data.path())
            .args(["--nrepl", &nrepl_addr]),
    );
    let banner = line_matching(
        &server_lines,
        "nREPL banner",
        Duration::from_secs(20),
        |l| l.starts_with("nREPL server started"),
    );
    assert_eq!(
        banner,
        format!("nREPL server started on port 7888 on host {SERVER_IP} - nrepl://{nrepl_addr}")
    );
    assert_eq!(
        std::fs::read_to_string(data.path().join(".nrepl-port")).expect(".nrepl-port written"),
        "7888"
    );
    let (_device, device_lines) = ns.virtual_device("tap-repl-1", &[]);
    line_matching(
        &device_lines,
        "device `led on`",
        Duration::from_secs(40),
        |l| l == "led on",
    );

    let mut client = ns
        .command("clojure")
        .args(["-cp", NREPL_JAR, "-m", "nrepl.cmdline", "--connect"])
        .args(["--host", SERVER_IP, "--port", "7888"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start nrepl.cmdline");
    client
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"(add 1 2 39)\n(counters)\n(led :off)\n(launch-rockets)\n")
        .expect("write forms");
    let deadline = Instant::now() + CLIENT_LIMIT;
    while client.try_wait().expect("poll client").is_none() {
        if Instant::now() > deadline {
            let _ = client.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = client.wait_with_output().expect("client output");
    let transcript = String::from_utf8_lossy(&out.stdout);
    eprintln!("nrepl.cmdline transcript:\n{transcript}");
    assert!(transcript.contains("user=> 42"), "{transcript}");
    assert!(transcript.contains(":ticks "), "{transcript}");
    assert!(transcript.contains(":off"), "{transcript}");
    // The device really switched its LED.
    line_matching(
        &device_lines,
        "device `led off`",
        Duration::from_secs(10),
        |l| l == "led off",
    );
}
