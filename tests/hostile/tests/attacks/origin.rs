//! A web page on the same machine must not reach the server. A WebSocket upgrade
//! carrying an `Origin` not in `allowed-origins` is refused with HTTP 403; a listed origin is
//! upgraded; a request without `Origin` (every non-browser client) is upgraded.

use sentelite_hostile_tests::ws::Peer;

use crate::target::Target;

const EVIL: &str = "http://evil.example";
const GOOD: &str = "http://dashboard.example";

/// The HTTP status the server answers an upgrade from `origin` with.
async fn upgrade_status(addr: &str, origin: Option<&str>) -> Option<u16> {
    match Peer::open_from(None, addr, origin).await {
        Ok(_) => Some(101),
        Err(answer) => answer.map(|a| a.status),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_origin_refused_by_default() {
    let target = Target::start("").await;
    assert_eq!(upgrade_status(target.addr(), Some(EVIL)).await, Some(403));
    assert_eq!(upgrade_status(target.addr(), None).await, Some(101));
    target.assert_survived("foreign origin").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_origin_allowed_others_refused() {
    let target = Target::start(&format!("allowed-origins = [\"{GOOD}\"]\n")).await;
    assert_eq!(upgrade_status(target.addr(), Some(GOOD)).await, Some(101));
    assert_eq!(upgrade_status(target.addr(), Some(EVIL)).await, Some(403));
    // Exact match: the same host on another scheme or port is another origin.
    assert_eq!(
        upgrade_status(target.addr(), Some("https://dashboard.example")).await,
        Some(403)
    );
    assert_eq!(
        upgrade_status(target.addr(), Some("http://dashboard.example:8080")).await,
        Some(403)
    );
    assert_eq!(upgrade_status(target.addr(), None).await, Some(101));
    target.assert_survived("listed origin").await;
}
