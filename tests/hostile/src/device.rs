//! A well-behaved device that answers every request the server makes of it (relayed ones
//! included) with `ok`, and records which events it was asked, so a test can tell which
//! requests reached it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sentelite_tokio::{Client, ClientEvent, ClientOptions, PayloadBuf, Status};

use crate::within;

/// Payload every answer carries, so the asker can tell the device answered.
pub const ANSWER: &str = r#""answered""#;

/// A connected device answering requests.
pub struct AnsweringDevice {
    client: Client,
    asked: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl AnsweringDevice {
    /// Connects as `client_id` announcing `capabilities`, and starts answering.
    pub async fn join(ws_url: &str, client_id: &str, capabilities: u32) -> AnsweringDevice {
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
        let record = asked.clone();
        let task = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let ClientEvent::Request(request) = event {
                    record.lock().unwrap().push(request.event.clone());
                    let _ = request
                        .end(Status::OK, PayloadBuf::Json(ANSWER.into()))
                        .await;
                }
            }
        });
        AnsweringDevice {
            client,
            asked,
            task,
        }
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
