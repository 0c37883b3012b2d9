//! The smol client against the real `sentelite serve`.

use sentelite_integration_tests::{ServeProcess, scenarios};

const STALL_CONFIG: &str = "heartbeat-interval-ms = 200\nheartbeat-timeout-ms = 600\n";

#[test]
fn handshake_and_streamed_echo() {
    let server = ServeProcess::start(&[]);
    smol::block_on(scenarios::handshake_and_streamed_echo(
        sentelite_smol::connect,
        &server.ws_url,
    ));
}

#[test]
fn relay_streams_both_ways_with_a_tokio_peer() {
    let server = ServeProcess::start_with_config(scenarios::RELAY_CONFIG);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime for the peer");
    let _guard = runtime.enter();
    smol::block_on(scenarios::relay_streams_both_ways(
        sentelite_smol::connect,
        sentelite_tokio::connect,
        &server.ws_url,
    ));
}

#[test]
fn pubsub_with_exclude_sender() {
    let server = ServeProcess::start(&[]);
    smol::block_on(scenarios::pubsub_with_exclude_sender(
        sentelite_smol::connect,
        &server.ws_url,
    ));
}

#[test]
fn stalled_server_detected_then_reconnect() {
    let server = ServeProcess::start_with_config(STALL_CONFIG);
    smol::block_on(scenarios::stalled_server_detected_then_reconnect(
        sentelite_smol::connect,
        &server,
    ));
}

#[test]
fn bad_frames_get_typed_closes() {
    let server = ServeProcess::start_with_config("max-frame-bytes = 4096\n");
    smol::block_on(scenarios::bad_frames_get_typed_closes(
        sentelite_smol::connect,
        &server,
    ));
}

#[test]
fn interrupt_closes_clients_going_away() {
    let server = ServeProcess::start(&[]);
    smol::block_on(scenarios::interrupt_closes_clients_going_away(
        sentelite_smol::connect,
        server,
    ));
}
