//! Blob fetch throughput: one large blob over loopback, verified, beside `curl` to /dev/null
//! from the same server in the same run, and the host's blob server beside nginx serving the
//! same file (when `nginx` is installed).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Args;
use sha2::{Digest, Sha256};

use crate::fetch;
use crate::serve;

/// Options of `sentelite-bench blob`.
#[derive(Debug, Args)]
pub struct BlobArgs {
    /// Size of the blob in MiB.
    #[arg(long, default_value_t = 512)]
    pub mib: u64,
    /// Repetitions of each measurement; the median is printed with the range.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Fail when `curl` is missing instead of leaving its column out.
    #[arg(long)]
    pub require_baseline: bool,
}

/// The median and range of a set of throughputs in MB/s (10^6 bytes a second).
struct Figures(Vec<f64>);

impl Figures {
    fn median(&self) -> f64 {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    fn cell(&self) -> String {
        let min = self.0.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.0.iter().copied().fold(0.0, f64::max);
        format!("{:.0} [{:.0}–{:.0}]", self.median(), min, max)
    }
}

/// Runs the benchmark and prints its table.
pub async fn run(args: BlobArgs) -> Result<(), String> {
    let runs = args.runs.max(1);
    let dir = scratch_dir()?;
    let file = dir.join("payload.bin");
    eprintln!("writing a {} MiB blob to {}", args.mib, file.display());
    let sha256 = write_payload(&file, args.mib << 20)?;
    let size = args.mib << 20;

    let binary = serve::build_sentelite()?;
    let data_dir = dir.join("data");
    let added = Command::new(&binary)
        .args(["blob", "add", "--data-dir"])
        .arg(&data_dir)
        .arg(&file)
        .output()
        .map_err(|e| format!("sentelite blob add: {e}"))?;
    if !added.status.success() {
        return Err(format!(
            "sentelite blob add failed: {}",
            String::from_utf8_lossy(&added.stderr)
        ));
    }
    let served = serve::start(&binary, &data_dir, "")?;
    let url = format!("http://{}/blobs/{sha256}", served.addr);

    let have_curl = which("curl");
    if !have_curl && args.require_baseline {
        return Err("curl is not installed".into());
    }
    let nginx = if which("nginx") && have_curl {
        let server = Nginx::start(&dir, &data_dir)?;
        let url = format!("http://{}/blobs/{sha256}", server.addr);
        Some((server, url))
    } else {
        None
    };

    // Interleaved, so a burst of load on the shared machine hits every column alike.
    let (mut parallel, mut inline, mut curl_ours, mut curl_nginx) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        eprintln!("run {}/{runs}", run + 1);
        if have_curl {
            curl_ours.push(curl_mbps(&url, size)?);
        }
        if let Some((_, nginx_url)) = &nginx {
            curl_nginx.push(curl_mbps(nginx_url, size)?);
        }
        for (hash_parallel, figures) in [(true, &mut parallel), (false, &mut inline)] {
            let started = Instant::now();
            let fetched = fetch::verified(&url, &sha256, size, hash_parallel).await?;
            figures.push(mbps(fetched, started.elapsed()));
        }
    }
    let have_nginx = nginx.is_some();
    drop(nginx);
    drop(served);
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "\n{} MiB blob over loopback, MB/s (10^6 bytes a second), median of {runs} [range]\n",
        args.mib
    );
    println!("| transfer | MB/s | ratio |");
    println!("|---|---:|---:|");
    let (parallel, inline) = (Figures(parallel), Figures(inline));
    let curl = Figures(curl_ours);
    let baseline = if have_curl { curl.median() } else { f64::NAN };
    for (name, f) in [
        (
            "sentelite fetcher, verified, SHA-256 on a second thread",
            &parallel,
        ),
        (
            "sentelite fetcher, verified, SHA-256 in line with the reads",
            &inline,
        ),
    ] {
        println!(
            "| {name}, from `sentelite serve` | {} | {:.2}× curl |",
            f.cell(),
            f.median() / baseline
        );
    }
    if have_curl {
        println!(
            "| curl to /dev/null, unverified, from `sentelite serve` | {} | 1.00× |",
            curl.cell()
        );
    } else {
        println!("| curl | not installed | |");
    }
    if have_nginx {
        let n = Figures(curl_nginx);
        println!(
            "| curl to /dev/null from nginx (sendfile), same file | {} | `sentelite serve` is {:.2}× nginx |",
            n.cell(),
            curl.median() / n.median()
        );
    } else {
        println!("| nginx | not installed | |");
    }
    let hash_only = hash_mbps(64 << 20);
    println!(
        "| SHA-256 alone over memory (one pass, this machine) | {hash_only:.0} | the fetcher is {:.2}× it |",
        parallel.median() / hash_only
    );
    Ok(())
}

fn mbps(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64() / 1e6
}

/// One `curl -o /dev/null` of `url`; checks it got `size` bytes.
fn curl_mbps(url: &str, size: u64) -> Result<f64, String> {
    let out = Command::new("curl")
        .args([
            "-s",
            "-f",
            "-o",
            "/dev/null",
            "-w",
            "%{size_download} %{time_total}",
        ])
        .arg(url)
        .output()
        .map_err(|e| format!("curl: {e}"))?;
    if !out.status.success() {
        return Err(format!("curl {url} failed: {}", out.status));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace();
    let bytes: u64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let seconds: f64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    if bytes != size || seconds <= 0.0 {
        return Err(format!(
            "curl got {bytes} bytes in {seconds} s, wanted {size}"
        ));
    }
    Ok(bytes as f64 / seconds / 1e6)
}

/// SHA-256 throughput of this machine, for scale.
fn hash_mbps(bytes: usize) -> f64 {
    let data = vec![0x5au8; bytes];
    let started = Instant::now();
    let digest = Sha256::digest(&data);
    std::hint::black_box(digest);
    mbps(bytes as u64, started.elapsed())
}

/// Writes `size` pseudo-random bytes (incompressible, cheap to make) and returns their hash.
fn write_payload(path: &Path, size: u64) -> Result<String, String> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).map_err(|e| e.to_string())?);
    let mut hasher = Sha256::new();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut block = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(block.len() as u64) as usize;
        out.write_all(&block[..n]).map_err(|e| e.to_string())?;
        hasher.update(&block[..n]);
        left -= n as u64;
    }
    out.flush().map_err(|e| e.to_string())?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn scratch_dir() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("sentelite-bench-blob-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    Ok(dir)
}

fn which(program: &str) -> bool {
    Command::new(program)
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
        || Path::new("/usr/sbin").join(program).exists()
}

/// nginx serving the data dir's `blobs/` with sendfile, as a site would.
struct Nginx {
    child: Child,
    addr: String,
}

impl Nginx {
    fn start(scratch: &Path, data_dir: &Path) -> Result<Nginx, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let prefix = scratch.join("nginx");
        std::fs::create_dir_all(prefix.join("logs")).map_err(|e| e.to_string())?;
        let conf = prefix.join("nginx.conf");
        let user = if is_root() { "user root;\n" } else { "" };
        std::fs::write(
            &conf,
            format!(
                "{user}daemon off;\nworker_processes 1;\npid {pid};\nerror_log stderr error;\n\
                 events {{ worker_connections 64; }}\n\
                 http {{ access_log off; sendfile on; tcp_nopush on;\n\
                 default_type application/octet-stream;\n\
                 server {{ listen {addr}; root {root}; }} }}\n",
                pid = prefix.join("nginx.pid").display(),
                root = data_dir.display(),
            ),
        )
        .map_err(|e| e.to_string())?;
        let binary = if Path::new("/usr/sbin/nginx").exists() {
            "/usr/sbin/nginx"
        } else {
            "nginx"
        };
        let child = Command::new(binary)
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("nginx: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&addr).is_err() {
            if Instant::now() > deadline {
                return Err("nginx did not start listening within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Nginx { child, addr })
    }
}

impl Drop for Nginx {
    /// SIGTERM, so the master stops its workers too (SIGKILL would leave them running).
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
}
