//! An answer from an earlier connection: the server asks a tokio client something, the
//! connection drops before the application answers, the client reconnects and the server
//! asks again (the new connection's first request id is the same number). The late answer
//! to the old request is refused and never reaches the new request, which gets its own.

mod support;

use std::time::Duration;

use sentelite_core::CloseCode;
use sentelite_host::RequestOutcome;
use sentelite_tokio::{
    Client, ClientError, ClientEvent, ClientOptions, IncomingRequest, PayloadBuf, Status,
};
use support::{quick_settings, start};

async fn next_request(client: &Client) -> IncomingRequest {
    let events = client.events();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(ClientEvent::Request(request)) = events.recv().await {
                return request;
            }
        }
    })
    .await
    .expect("the server's request reaches the application")
}

async fn open_connection(server: &sentelite_host::Server, not: Option<u64>) -> u64 {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(c) = server
                .handle()
                .connections()
                .into_iter()
                .find(|c| Some(c.connection_id) != not)
            {
                return c.connection_id;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the client is connected")
}

#[tokio::test]
async fn a_late_answer_from_an_earlier_connection_is_refused() {
    let (server, _dir) = start(quick_settings()).await;
    let mut options = ClientOptions::new(format!("ws://{}/ws", server.local_addr()), "dev-late");
    options.backoff_initial = Duration::from_millis(20);
    options.backoff_max = Duration::from_millis(50);
    let client = sentelite_tokio::connect(options).unwrap();
    let first = open_connection(&server, None).await;
    let _old_stream = server
        .handle()
        .request(first, "device/slow", PayloadBuf::Empty, None)
        .await
        .unwrap();
    let old = next_request(&client).await;

    server
        .handle()
        .close_connection(first, CloseCode::GOING_AWAY, "test drop")
        .unwrap();
    let second = open_connection(&server, Some(first)).await;
    let new_stream = server
        .handle()
        .request(
            second,
            "device/slow",
            PayloadBuf::Empty,
            Some(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    let new = next_request(&client).await;
    assert_eq!(old.id(), new.id(), "the same id number on both connections");

    let late = old
        .end(Status::OK, PayloadBuf::Json("\"stale\"".into()))
        .await;
    assert!(matches!(late, Err(ClientError::UnknownRequest)), "{late:?}");
    new.end(Status::OK, PayloadBuf::Json("\"fresh\"".into()))
        .await
        .unwrap();
    let (parts, outcome) = new_stream.collect().await;
    assert!(parts.is_empty());
    assert_eq!(
        outcome,
        RequestOutcome::Completed {
            status: Status::OK,
            payload: PayloadBuf::Json("\"fresh\"".into())
        }
    );
    client.close().await;
    server.shutdown().await;
}
