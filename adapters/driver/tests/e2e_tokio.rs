//! The client end to end on tokio (`sentelite_tokio::connect`) against the test server.

mod support;

use support::scenarios;
#[cfg(feature = "tls")]
use support::wss;

#[tokio::test]
async fn handshake_and_streamed_request() {
    scenarios::handshake_and_streamed_request(sentelite_tokio::connect).await;
}

#[tokio::test]
async fn server_initiated_request() {
    scenarios::server_initiated_request(sentelite_tokio::connect).await;
}

#[tokio::test]
async fn silent_server_is_detected_and_client_reconnects() {
    scenarios::silent_server_is_detected_and_client_reconnects(sentelite_tokio::connect).await;
}

#[tokio::test]
async fn close_does_not_reconnect() {
    scenarios::close_does_not_reconnect(sentelite_tokio::connect).await;
}

#[tokio::test]
async fn sends_while_disconnected_are_refused() {
    scenarios::sends_while_disconnected_are_refused(sentelite_tokio::connect).await;
}

#[tokio::test]
async fn request_timeout_and_cancel() {
    scenarios::request_timeout_and_cancel(sentelite_tokio::connect).await;
}

#[tokio::test]
async fn server_close_is_reported_and_followed_by_reconnect() {
    scenarios::server_close_is_reported_and_followed_by_reconnect(sentelite_tokio::connect).await;
}

#[tokio::test]
async fn subscribe_and_publish() {
    scenarios::subscribe_and_publish(sentelite_tokio::connect).await;
}

#[tokio::test]
async fn publish_drop_report_is_an_event() {
    scenarios::publish_drop_report_is_an_event(sentelite_tokio::connect).await;
}

#[test]
fn connect_outside_a_runtime_is_a_typed_error() {
    let options = sentelite_tokio::ClientOptions::new("ws://127.0.0.1:9/", "dev-test");
    assert!(matches!(
        sentelite_tokio::connect(options),
        Err(sentelite_tokio::ClientError::NoRuntime)
    ));
}

#[cfg(not(feature = "tls"))]
#[tokio::test]
async fn wss_urls_are_refused_up_front_without_tls() {
    let options = sentelite_tokio::ClientOptions::new("wss://127.0.0.1:9/", "dev-test");
    assert!(matches!(
        sentelite_tokio::connect(options),
        Err(sentelite_tokio::ClientError::TlsUnsupported)
    ));
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn wss_extra_root_that_is_not_a_certificate_is_refused_up_front() {
    let mut options = sentelite_tokio::ClientOptions::new("wss://127.0.0.1:9/", "dev-test");
    options.extra_root_certs = vec![b"not a certificate".to_vec()];
    assert!(matches!(
        sentelite_tokio::connect(options),
        Err(sentelite_tokio::ClientError::InvalidOptions(_))
    ));
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn wss_handshake_and_request() {
    wss::handshake_and_request(sentelite_tokio::connect).await;
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn wss_untrusted_certificate_fails_and_is_retried() {
    wss::untrusted_certificate_fails_and_is_retried(sentelite_tokio::connect).await;
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn wss_certificate_for_another_host_is_refused() {
    wss::certificate_for_another_host_is_refused(sentelite_tokio::connect).await;
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn wss_stalled_tls_handshake_times_out() {
    wss::stalled_tls_handshake_times_out(sentelite_tokio::connect).await;
}

#[tokio::test]
async fn text_message_is_a_protocol_error() {
    scenarios::text_message_is_a_protocol_error(sentelite_tokio::connect).await;
}

#[tokio::test]
async fn out_of_range_options_are_refused() {
    scenarios::out_of_range_options_are_refused(sentelite_tokio::connect).await;
}

#[tokio::test]
async fn peer_dropping_mid_handshake_is_retried() {
    scenarios::peer_dropping_mid_handshake_is_retried(sentelite_tokio::connect).await;
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn wss_expired_certificate_is_refused() {
    wss::expired_certificate_is_refused(sentelite_tokio::connect).await;
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn wss_dns_name_end_to_end() {
    wss::dns_name_end_to_end(sentelite_tokio::connect).await;
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn wss_peer_dropping_mid_tls_handshake_is_retried() {
    wss::peer_dropping_mid_tls_handshake_is_retried(sentelite_tokio::connect).await;
}
