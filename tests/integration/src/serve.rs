//! Starting and stopping the real `sentelite serve` binary on an ephemeral port.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Starts `cmd` with its stdout piped and returns the child and its stdout lines, read on a
/// thread of their own so a test can wait for a line with a time limit.
pub fn spawn_reading_lines(cmd: &mut Command) -> (Child, mpsc::Receiver<String>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {:?}: {e}", cmd.get_program()));
    let stdout = child.stdout.take().expect("child stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// A running `sentelite serve` child process, killed on drop.
pub struct ServeProcess {
    child: Child,
    /// The `ws://127.0.0.1:PORT/ws` URL it printed.
    pub ws_url: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The arguments after `--listen … --data-dir …`, for [`ServeProcess::restart`].
    extra_args: Vec<String>,
    data_dir: TempDir,
}

impl ServeProcess {
    /// Starts `sentelite serve --listen 127.0.0.1:0` with extra arguments and waits for its
    /// `listening on` line.
    pub fn start(extra_args: &[&str]) -> ServeProcess {
        Self::start_in(TempDir::new("serve"), extra_args, Stdio::inherit())
    }

    /// Starts the server with a TOML settings file holding `config`.
    pub fn start_with_config(config: &str) -> ServeProcess {
        Self::start_with_config_logging_to(config, Stdio::inherit())
    }

    /// Starts the server with a TOML settings file holding `config`, its log (stderr) going
    /// to `log`, so a test can measure how much the server logs.
    pub fn start_with_config_logging_to(config: &str, log: impl Into<Stdio>) -> ServeProcess {
        let dir = TempDir::new("serve");
        let path = dir.path().join("sentelite.toml");
        std::fs::write(&path, config).expect("write config file");
        let path = path.to_str().expect("utf-8 temp path").to_owned();
        Self::start_in(dir, &["--config", &path], log.into())
    }

    /// The server's process id, for reading its memory use from `/proc/<pid>/status`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn start_in(data_dir: TempDir, extra_args: &[&str], log: Stdio) -> ServeProcess {
        let extra_args: Vec<String> = extra_args.iter().map(|a| (*a).to_owned()).collect();
        let (child, ws_url) = spawn_serve(data_dir.path(), "127.0.0.1:0", &extra_args, log);
        let addr = ws_url
            .trim_start_matches("ws://")
            .trim_end_matches("/ws")
            .to_string();
        ServeProcess {
            child,
            ws_url,
            addr,
            extra_args,
            data_dir,
        }
    }

    /// Kills the server (SIGKILL: no goodbye to its clients, as in a crash) and starts it
    /// again on the same address, data directory and arguments, so clients that reconnect
    /// find it where it was.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, ws_url) = spawn_serve(
            self.data_dir.path(),
            &self.addr,
            &self.extra_args,
            Stdio::inherit(),
        );
        assert_eq!(
            ws_url, self.ws_url,
            "the restarted server listens elsewhere"
        );
        self.child = child;
    }

    /// Sends a signal (`STOP`, `CONT`, `INT`, …) to the server process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Asks the server to shut down as Ctrl-C would and waits for it to exit.
    pub fn interrupt(mut self) -> std::process::ExitStatus {
        self.signal("INT");
        for _ in 0..100 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("sentelite serve did not exit within 5 s of SIGINT");
    }
}

/// Starts `sentelite serve` on `listen` and waits for its `listening on` line; returns the
/// child and the URL it printed.
fn spawn_serve(
    data_dir: &Path,
    listen: &str,
    extra_args: &[String],
    log: Stdio,
) -> (Child, String) {
    let (child, rx) = spawn_reading_lines(
        Command::new(sentelite_binary())
            .args(["serve", "--listen", listen, "--data-dir"])
            .arg(data_dir)
            .args(extra_args)
            .stderr(log),
    );
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("sentelite serve printed no listening line within 20 s");
    let ws_url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line from sentelite serve: {line}"))
        .trim()
        .to_string();
    (child, ws_url)
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Path of the `sentelite` binary built from the current source.
///
/// This crate is not `sentelite-host`, so cargo neither builds that binary for its tests nor
/// tells them where it is; a binary left in `target/` by an earlier build could be stale. The
/// first call in each test process therefore runs `cargo build` for it (a no-op when it is
/// up to date) into the same target directory and profile as the running test.
pub fn sentelite_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| workspace_binary("sentelite-host", "sentelite"))
        .clone()
}

/// Path of binary `bin` of workspace package `package`, built from the current source the
/// same way as [`sentelite_binary`] (each call runs `cargo build`, a no-op when up to date).
pub fn workspace_binary(package: &str, bin: &str) -> PathBuf {
    let test_exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test-binary> → target/<profile>/<bin>
    let profile_dir = test_exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let target_dir = profile_dir
        .parent()
        .expect("the profile directory lives in the target directory");
    let profile = profile_dir
        .file_name()
        .and_then(|name| name.to_str())
        .expect("profile directory name");
    // `cargo test` builds the `test` profile into `debug/`.
    let profile = if profile == "debug" { "dev" } else { profile };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&workspace)
        .args(["build", "--quiet", "-p", package, "--bin", bin])
        .args(["--profile", profile])
        .arg("--target-dir")
        .arg(target_dir)
        .status()
        .unwrap_or_else(|e| panic!("run cargo build for {bin}: {e}"));
    assert!(status.success(), "building {bin} failed");
    let binary = profile_dir.join(bin);
    assert!(binary.exists(), "no {bin} binary at {}", binary.display());
    binary
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh directory whose name starts with `prefix`.
    pub fn new(prefix: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("sentelite-{prefix}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
