//! A well-behaved device that answers every request the server makes of it (relayed ones
//! included) with `ok`, optionally after streaming parts, and records which events it was
//! asked and how its connections closed, so a test can tell which requests reached it and
//! whether it was dropped.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sentelite_tokio::{Client, ClientEvent, ClientOptions, CloseCode, PayloadBuf, Status};

use crate::within;

/// Payload every answer carries, so the asker can tell the device answered.
pub const ANSWER: &str = r#""answered""#;
/// Size of each streamed part.
pub const PART_BYTES: usize = 1024;

/// A connected device answering requests.
pub struct AnsweringDevice {
    client: Client,
    asked: Arc<Mutex<Vec<String>>>,
    closes: Arc<Mutex<Vec<CloseCode>>>,
    task: tokio::task::JoinHandle<()>,
}

impl AnsweringDevice {
    /// Connects as `client_id` announcing `capabilities`, and starts answering at once.
    pub async fn join(ws_url: &str, client_id: &str, capabilities: u32) -> AnsweringDevice {
        AnsweringDevice::join_streaming(ws_url, client_id, capabilities, 0).await
    }

    /// Like [`AnsweringDevice::join`], streaming `parts` parts of [`PART_BYTES`] before each
    /// answer.
    pub async fn join_streaming(
        ws_url: &str,
        client_id: &str,
        capabilities: u32,
        parts: usize,
    ) -> AnsweringDevice {
        let mut options = ClientOptions::new(ws_url, client_id);
        options.capabilities = capabilities;
        let client = sentelite_tokio::connect(options).expect("start device");
        let events = client.events();
        within(Duration::from_secs(10), "the device's handshake", async {
            loop {
                match events.recv().await {
                    Some(ClientEvent::Opened { .. }) => return,
                    Some(_) => {}
                    None => panic!("device's events ended before the handshake"),
                }
            }
        })
        .await;
        let asked = Arc::new(Mutex::new(Vec::new()));
        let closes = Arc::new(Mutex::new(Vec::new()));
        let (record, record_close) = (asked.clone(), closes.clone());
        let task = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    ClientEvent::Request(mut request) => {
                        record.lock().unwrap().push(request.event.clone());
                        for _ in 0..parts {
                            let part = PayloadBuf::Bytes(vec![0xD7; PART_BYTES]);
                            if request.part(part).await.is_err() {
                                break;
                            }
                        }
                        let _ = request
                            .end(Status::OK, PayloadBuf::Json(ANSWER.into()))
                            .await;
                    }
                    ClientEvent::Closed { code, .. } => record_close.lock().unwrap().push(code),
                    _ => {}
                }
            }
        });
        AnsweringDevice {
            client,
            asked,
            closes,
            task,
        }
    }

    /// Close codes of the connections this device lost so far.
    pub fn closes(&self) -> Vec<CloseCode> {
        self.closes.lock().unwrap().clone()
    }

    /// Events of the requests that reached this device so far, in arrival order.
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }

    /// The client, for checking its state.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Closes the client, bounded in time.
    pub async fn leave(self) {
        let _ = tokio::time::timeout(Duration::from_secs(3), self.client.close()).await;
        self.task.abort();
    }
}
