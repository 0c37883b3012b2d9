//! The tokio client against the real `sentelite serve`.

use sentelite_integration_tests::{ServeProcess, scenarios};

const STALL_CONFIG: &str = "heartbeat-interval-ms = 200\nheartbeat-timeout-ms = 600\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_and_streamed_echo() {
    let server = ServeProcess::start(&[]);
    scenarios::handshake_and_streamed_echo(sentelite_tokio::connect, &server.ws_url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_streams_both_ways_with_a_smol_peer() {
    let server = ServeProcess::start_with_config(scenarios::RELAY_CONFIG);
    scenarios::relay_streams_both_ways(
        sentelite_tokio::connect,
        sentelite_smol::connect,
        &server.ws_url,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_with_exclude_sender() {
    let server = ServeProcess::start(&[]);
    scenarios::pubsub_with_exclude_sender(sentelite_tokio::connect, &server.ws_url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_server_detected_then_reconnect() {
    let server = ServeProcess::start_with_config(STALL_CONFIG);
    scenarios::stalled_server_detected_then_reconnect(sentelite_tokio::connect, &server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_typed_closes() {
    let server = ServeProcess::start_with_config("max-frame-bytes = 4096\n");
    scenarios::bad_frames_get_typed_closes(sentelite_tokio::connect, &server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_closes_clients_going_away() {
    let server = ServeProcess::start(&[]);
    scenarios::interrupt_closes_clients_going_away(sentelite_tokio::connect, server).await;
}
