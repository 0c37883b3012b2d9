//! A private network namespace with a TAP interface, for running device code (embassy-net
//! on `embassy-net-tuntap`) against the real server without hardware. The namespace holds
//! `tap0` with the server's address [`SERVER_IP`]; the device process opens the TAP's other
//! end and takes [`DEVICE_CIDR`]. Everything runs inside through `ip netns exec`, and the
//! namespace, with whatever still runs in it, is deleted when the [`Namespace`] drops.
//!
//! Creating it needs root and `/dev/net/tun`. Where either is missing a test skips loudly,
//! or fails under `SENTELITE_REQUIRE_PEERS=1` (as in CI).

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;

use crate::serve::spawn_reading_lines;

/// The server's address inside the namespace (on `tap0`).
pub const SERVER_IP: &str = "192.168.69.100";
/// The device's address and prefix on the TAP.
pub const DEVICE_CIDR: &str = "192.168.69.2/24";
/// The TAP interface's name inside the namespace.
pub const TAP: &str = "tap0";

/// A network namespace with `tap0` up, deleted on drop.
pub struct Namespace {
    name: String,
}

impl Namespace {
    /// Creates the namespace for `test`, or returns `None` after a loud skip notice when this
    /// machine cannot (panics instead under `SENTELITE_REQUIRE_PEERS=1`).
    pub fn create(test: &str) -> Option<Namespace> {
        let name = format!(
            "slt-{}-{}",
            test.chars().take(8).collect::<String>(),
            std::process::id()
        );
        let why = match Self::try_create(&name) {
            Ok(ns) => return Some(ns),
            Err(why) => why,
        };
        let require = std::env::var("SENTELITE_REQUIRE_PEERS").is_ok_and(|v| v == "1");
        assert!(!require, "{test}: {why} and SENTELITE_REQUIRE_PEERS=1");
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED {test}: {why} (needs root, iproute2 and /dev/net/tun); set \
             SENTELITE_REQUIRE_PEERS=1 to fail instead ***\n"
        );
        None
    }

    fn try_create(name: &str) -> Result<Namespace, String> {
        if !std::path::Path::new("/dev/net/tun").exists() {
            return Err("/dev/net/tun is missing".into());
        }
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map_err(|e| format!("cannot run `id`: {e}"))?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return Err("not running as root".into());
        }
        run_ip(&["netns", "add", name])?;
        // From here on Drop deletes it, whatever fails next.
        let ns = Namespace {
            name: name.to_owned(),
        };
        run_ip(&["-n", name, "link", "set", "lo", "up"])?;
        run_ip(&["-n", name, "tuntap", "add", "name", TAP, "mode", "tap"])?;
        run_ip(&["-n", name, "link", "set", TAP, "up"])?;
        run_ip(&[
            "-n",
            name,
            "addr",
            "add",
            &format!("{SERVER_IP}/24"),
            "dev",
            TAP,
        ])?;
        Ok(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `program args…` to be run inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Starts `cmd` (from [`Self::command`]) with its stdout lines readable; killed on drop.
    pub fn spawn(&self, cmd: &mut Command) -> (Process, Receiver<String>) {
        let (child, lines) = spawn_reading_lines(cmd.stderr(Stdio::inherit()));
        (Process(child), lines)
    }

    /// The virtual device (`tests/virtual-device`) on [`TAP`] at [`DEVICE_CIDR`], connecting
    /// to the server at `SERVER_IP:7700` as `name`, with `extra` arguments after those.
    pub fn virtual_device(&self, name: &str, extra: &[&str]) -> (Process, Receiver<String>) {
        let binary =
            crate::serve::workspace_binary("sentelite-virtual-device", "sentelite-virtual-device");
        let server = format!("ws://{SERVER_IP}:7700/ws");
        self.spawn(
            self.command(binary)
                .args(["--tap", TAP, "--address", DEVICE_CIDR, "--server", &server])
                .args(["--name", name])
                .args(extra),
        )
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // Kill what still runs inside, then remove the namespace (and its TAP with it).
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn run_ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A child process, killed (SIGKILL) and reaped on drop.
pub struct Process(pub Child);

impl Process {
    /// Kills it now (as a crash would: no goodbye to its peers) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
