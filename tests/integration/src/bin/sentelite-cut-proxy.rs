//! The fault proxy as a process of its own, for tests whose network lives in a namespace
//! the test process is not in: `sentelite-cut-proxy LISTEN UPSTREAM CUTS MAX_CUT_AT`
//! forwards `LISTEN` to `UPSTREAM`, cutting the first `CUTS` connections after fewer than
//! `MAX_CUT_AT` response bytes. It prints `listening on LISTEN`, then `cuts N` each time
//! the count grows, and runs until killed.

use std::net::SocketAddr;
use std::time::Duration;

use sentelite_integration_tests::fault_proxy;

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> T {
    args.get(i).and_then(|a| a.parse().ok()).unwrap_or_else(|| {
        eprintln!("usage: sentelite-cut-proxy LISTEN UPSTREAM CUTS MAX_CUT_AT ({what})");
        std::process::exit(2)
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let listen: SocketAddr = arg(&args, 0, "listen address");
    let upstream: SocketAddr = arg(&args, 1, "upstream address");
    let cuts: u32 = arg(&args, 2, "cuts");
    let max_cut_at: u64 = arg(&args, 3, "max cut offset");
    let proxy = fault_proxy::start_on(listen, upstream, cuts, max_cut_at, 0x7a9).await;
    println!("listening on {}", proxy.addr);
    let mut reported = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = proxy.cuts();
        if now != reported {
            reported = now;
            println!("cuts {now}");
        }
    }
}
