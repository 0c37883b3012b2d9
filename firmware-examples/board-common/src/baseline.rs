//! The image without the sentelite client: what an application that already joins Wi-Fi,
//! resolves a host and talks TCP to it costs. The size budget subtracts this build from the
//! client builds, so sentelite's share counts the client, not the network stack.

use embassy_net::Stack;
use embassy_net::dns::DnsQueryType;
use embassy_net::tcp::TcpSocket;
use embassy_time::{Duration, Timer};
use embedded_io_async::Write;

/// Connect to the configured server's host and port every few seconds and say hello.
pub async fn run(stack: Stack<'static>, url: &str) -> ! {
    let (host, port) = host_and_port(url);
    let mut rx = [0u8; 1024];
    let mut tx = [0u8; 1024];
    loop {
        if let Ok(addrs) = stack.dns_query(host, DnsQueryType::A).await
            && let Some(addr) = addrs.first()
        {
            let mut socket = TcpSocket::new(stack, &mut rx, &mut tx);
            socket.set_timeout(Some(Duration::from_secs(10)));
            if socket.connect((*addr, port)).await.is_ok() {
                let _ = socket.write_all(b"hello\n").await;
                socket.close();
            }
        }
        Timer::after(Duration::from_secs(10)).await;
    }
}

/// `ws://host:port/path` → (`host`, port); port 80 when none is given.
fn host_and_port(url: &str) -> (&str, u16) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().unwrap_or(80)),
        None => (authority, 80),
    }
}
