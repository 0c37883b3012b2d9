//! The client end to end on smol (`sentelite_smol::connect`) against the test server.

mod support;

use support::scenarios;
#[cfg(feature = "tls")]
use support::wss;

#[test]
fn handshake_and_streamed_request() {
    smol::block_on(scenarios::handshake_and_streamed_request(
        sentelite_smol::connect,
    ));
}

#[test]
fn server_initiated_request() {
    smol::block_on(scenarios::server_initiated_request(sentelite_smol::connect));
}

#[test]
fn silent_server_is_detected_and_client_reconnects() {
    smol::block_on(scenarios::silent_server_is_detected_and_client_reconnects(
        sentelite_smol::connect,
    ));
}

#[test]
fn close_does_not_reconnect() {
    smol::block_on(scenarios::close_does_not_reconnect(sentelite_smol::connect));
}

#[test]
fn sends_while_disconnected_are_refused() {
    smol::block_on(scenarios::sends_while_disconnected_are_refused(
        sentelite_smol::connect,
    ));
}

#[test]
fn request_timeout_and_cancel() {
    smol::block_on(scenarios::request_timeout_and_cancel(
        sentelite_smol::connect,
    ));
}

#[test]
fn server_close_is_reported_and_followed_by_reconnect() {
    smol::block_on(
        scenarios::server_close_is_reported_and_followed_by_reconnect(sentelite_smol::connect),
    );
}

#[test]
fn subscribe_and_publish() {
    smol::block_on(scenarios::subscribe_and_publish(sentelite_smol::connect));
}

#[test]
fn publish_drop_report_is_an_event() {
    smol::block_on(scenarios::publish_drop_report_is_an_event(
        sentelite_smol::connect,
    ));
}

#[test]
fn text_message_is_a_protocol_error() {
    smol::block_on(scenarios::text_message_is_a_protocol_error(
        sentelite_smol::connect,
    ));
}

#[cfg(feature = "tls")]
#[test]
fn wss_handshake_and_request() {
    smol::block_on(wss::handshake_and_request(sentelite_smol::connect));
}

#[cfg(feature = "tls")]
#[test]
fn wss_untrusted_certificate_fails_and_is_retried() {
    smol::block_on(wss::untrusted_certificate_fails_and_is_retried(
        sentelite_smol::connect,
    ));
}

#[cfg(feature = "tls")]
#[test]
fn wss_certificate_for_another_host_is_refused() {
    smol::block_on(wss::certificate_for_another_host_is_refused(
        sentelite_smol::connect,
    ));
}

#[cfg(feature = "tls")]
#[test]
fn wss_stalled_tls_handshake_times_out() {
    smol::block_on(wss::stalled_tls_handshake_times_out(
        sentelite_smol::connect,
    ));
}

#[test]
fn out_of_range_options_are_refused() {
    smol::block_on(scenarios::out_of_range_options_are_refused(
        sentelite_smol::connect,
    ));
}

#[test]
fn peer_dropping_mid_handshake_is_retried() {
    smol::block_on(scenarios::peer_dropping_mid_handshake_is_retried(
        sentelite_smol::connect,
    ));
}

#[cfg(feature = "tls")]
#[test]
fn wss_expired_certificate_is_refused() {
    smol::block_on(wss::expired_certificate_is_refused(sentelite_smol::connect));
}

#[cfg(feature = "tls")]
#[test]
fn wss_dns_name_end_to_end() {
    smol::block_on(wss::dns_name_end_to_end(sentelite_smol::connect));
}

#[cfg(feature = "tls")]
#[test]
fn wss_peer_dropping_mid_tls_handshake_is_retried() {
    smol::block_on(wss::peer_dropping_mid_tls_handshake_is_retried(
        sentelite_smol::connect,
    ));
}
