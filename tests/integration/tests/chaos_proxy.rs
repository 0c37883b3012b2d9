//! The chaos proxy does what each fault says, against a plain TCP echo server: untouched it
//! forwards, a cut closes open connections (new ones still pass), a stall holds bytes until
//! it ends, a delay adds its latency, a drip keeps to its rate, and the random mode stops at
//! its deadline with the network healed.

use std::time::{Duration, Instant};

use sentelite_integration_tests::chaos_proxy::{ChaosProxy, Fault};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LIMIT: Duration = Duration::from_secs(10);

/// An echo server on loopback; returns its address.
async fn echo() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let addr = listener.local_addr().expect("echo addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut rd, mut wr) = socket.split();
                let _ = tokio::io::copy(&mut rd, &mut wr).await;
            });
        }
    });
    addr
}

/// Sends `bytes` through `conn` and reads them back; returns how long it took.
async fn round_trip(conn: &mut TcpStream, bytes: usize) -> Duration {
    let start = Instant::now();
    let sent = vec![7u8; bytes];
    let mut back = vec![0u8; bytes];
    tokio::time::timeout(LIMIT, async {
        conn.write_all(&sent).await.expect("write");
        conn.read_exact(&mut back).await.expect("read back");
    })
    .await
    .expect("round trip within the limit");
    assert_eq!(back, sent);
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_acts_and_ends() {
    let proxy = ChaosProxy::start(echo().await).await;
    let mut conn = TcpStream::connect(proxy.addr).await.expect("connect");
    round_trip(&mut conn, 1000).await;
    assert_eq!(proxy.bytes(), 2000, "bytes forwarded both ways");

    // A stall holds the bytes until it ends.
    proxy.inject(Fault::Stall, Duration::from_millis(600));
    let took = round_trip(&mut conn, 100).await;
    assert!(
        took >= Duration::from_millis(500),
        "stall passed in {took:?}"
    );

    // A delay per chunk: each direction waits once.
    proxy.inject(Fault::Delay(Duration::from_millis(200)), LIMIT);
    let took = round_trip(&mut conn, 100).await;
    assert!(
        took >= Duration::from_millis(400),
        "delay passed in {took:?}"
    );
    proxy.heal();
    let took = round_trip(&mut conn, 100).await;
    assert!(took < Duration::from_millis(200), "healed, yet {took:?}");

    // 2000 bytes at 2000 bytes/s take about a second (the echo's way back overlaps).
    proxy.inject(Fault::Drip(2000), LIMIT);
    let took = round_trip(&mut conn, 2000).await;
    assert!(
        took >= Duration::from_millis(900),
        "drip passed in {took:?}"
    );
    proxy.heal();

    // A cut closes the open connection; a new one passes.
    proxy.cut_all();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(LIMIT, conn.read(&mut byte))
        .await
        .expect("the cut connection ends within the limit");
    assert!(matches!(read, Ok(0) | Err(_)), "still open after a cut");
    // The relay counts the cut on its own task; give it a bounded moment to be seen.
    for _ in 0..100 {
        if proxy.cut() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(proxy.cut(), 1);
    let mut again = TcpStream::connect(proxy.addr).await.expect("reconnect");
    round_trip(&mut again, 100).await;
    assert_eq!(proxy.connections(), 2);

    // Random faults stop at their deadline, the network healed.
    let deadline = Instant::now() + Duration::from_millis(1200);
    let injected =
        tokio::time::timeout(LIMIT, proxy.random(7, Duration::from_millis(200), deadline))
            .await
            .expect("random mode ends at its deadline");
    assert!(injected >= 4, "only {injected} random faults");
    let mut last = TcpStream::connect(proxy.addr).await.expect("connect after");
    let took = round_trip(&mut last, 100).await;
    assert!(took < Duration::from_millis(200), "not healed: {took:?}");
}
