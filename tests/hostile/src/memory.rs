//! The server's memory use, read from `/proc/<pid>/status` (Linux).
//!
//! Growth is measured against the peak resident set size (`VmHWM`), not a sample of the
//! current one (`VmRSS`): a burst that is freed again before anyone looks still counts.

/// One field of `/proc/<pid>/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {path} (is the server still running?): {e}"));
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {path}"))
}

/// Current resident set size of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS")
}

/// Peak resident set size of process `pid` since it started, in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM")
}

/// The resident set size before an attack, to measure the attack's growth against.
#[derive(Debug, Clone, Copy)]
pub struct MemoryBaseline {
    pid: u32,
    before_kib: u64,
}

impl MemoryBaseline {
    /// Takes the baseline of process `pid` now.
    pub fn take(pid: u32) -> Self {
        Self {
            pid,
            before_kib: rss_kib(pid),
        }
    }

    /// Peak resident set size since the baseline, minus the baseline, in KiB.
    pub fn growth_kib(&self) -> u64 {
        peak_rss_kib(self.pid).saturating_sub(self.before_kib)
    }

    /// Panics when the peak grew by more than `ceiling_mib` since the baseline.
    pub fn assert_growth_below(&self, ceiling_mib: u64, attack: &str) {
        let growth = self.growth_kib();
        assert!(
            growth < ceiling_mib * 1024,
            "{attack}: server RSS grew by {} MiB (from {} MiB), ceiling {ceiling_mib} MiB",
            growth / 1024,
            self.before_kib / 1024
        );
    }
}
