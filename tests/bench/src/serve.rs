//! Starting the real `sentelite serve`, built from this source tree.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running server process, killed on drop.
pub struct Served {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl Served {
    /// The process id, for its CPU time.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds `sentelite` next to this program, in the same profile (release when the bench runs
/// as documented, debug when a test runs it), and returns its path. `SENTELITE_BENCH_BINARY`
/// names another build instead (say, of an older commit, to compare two servers with the
/// same bench); nothing is built then.
pub fn build_sentelite() -> Result<PathBuf, String> {
    if let Some(binary) = std::env::var_os("SENTELITE_BENCH_BINARY") {
        let binary = PathBuf::from(binary);
        if !binary.is_file() {
            return Err(format!(
                "SENTELITE_BENCH_BINARY {} is not a file",
                binary.display()
            ));
        }
        return Ok(binary);
    }
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let profile_dir = me.parent().ok_or("no directory for this program")?;
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target_dir = profile_dir.parent().ok_or("no target directory")?;
    let release = profile_dir
        .file_name()
        .is_some_and(|name| name == "release");
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build.current_dir(&workspace).args([
        "build",
        "--quiet",
        "-p",
        "sentelite-host",
        "--bin",
        "sentelite",
    ]);
    if release {
        build.arg("--release");
    }
    let status = build
        .arg("--target-dir")
        .arg(target_dir)
        .status()
        .map_err(|e| format!("cargo build: {e}"))?;
    if !status.success() {
        return Err("building sentelite failed".into());
    }
    let profile = if release { "release" } else { "debug" };
    Ok(target_dir.join(profile).join("sentelite"))
}

/// Starts `sentelite serve` on an ephemeral loopback port with `data_dir`; `settings` is the
/// text of a TOML settings file written into that directory (empty for the defaults).
pub fn start(binary: &Path, data_dir: &Path, settings: &str) -> Result<Served, String> {
    std::fs::create_dir_all(data_dir).map_err(|e| e.to_string())?;
    let config = data_dir.join("bench-settings.toml");
    std::fs::write(&config, settings).map_err(|e| e.to_string())?;
    let mut child = Command::new(binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(data_dir)
        .env("SENTELITE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("start {}: {e}", binary.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let addr = line
        .trim()
        .strip_prefix("listening on ws://")
        .and_then(|rest| rest.strip_suffix("/ws"))
        .ok_or_else(|| format!("unexpected first line {line:?}"))?
        .to_owned();
    Ok(Served { child, addr })
}
