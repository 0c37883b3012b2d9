//! The well-behaved client that stays connected beside every attack: a `sentelite_tokio`
//! client that must complete an echo request before and after the attack, on the same
//! connection.

use std::time::Duration;

use sentelite_tokio::{Client, ClientEvent, ClientOptions, PayloadBuf, RequestOutcome};

use crate::within;

/// How long one step of the bystander may take, even on a loaded machine.
const STEP: Duration = Duration::from_secs(10);

/// A connected well-behaved client.
pub struct Bystander {
    client: Client,
    connection_id: u64,
}

impl Bystander {
    /// Connects as `client_id` and waits for the handshake.
    pub async fn join(ws_url: &str, client_id: &str) -> Bystander {
        Bystander::join_with(ClientOptions::new(ws_url, client_id)).await
    }

    /// Connects with the given options and waits for the handshake.
    pub async fn join_with(mut options: ClientOptions) -> Bystander {
        options.backoff_initial = Duration::from_millis(100);
        options.backoff_max = Duration::from_millis(400);
        let client = sentelite_tokio::connect(options).expect("start client");
        let events = client.events();
        let connection_id = within(STEP, "the bystander's handshake", async {
            loop {
                match events.recv().await {
                    Some(ClientEvent::Opened { connection_id, .. }) => return connection_id,
                    Some(_) => {}
                    None => panic!("bystander's events ended before the handshake"),
                }
            }
        })
        .await;
        Bystander {
            client,
            connection_id,
        }
    }

    /// The client, for tests that make it do more than echo.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Asserts that a `sentelite/echo` request comes back whole, on the connection opened
    /// by [`Bystander::join`] (a reconnect in between means the attack got the bystander
    /// dropped).
    pub async fn assert_echo(&self, when: &str) {
        let sent: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
        let exchange = async {
            let mut response = self
                .client
                .request("sentelite/echo", PayloadBuf::Bytes(sent.clone()), STEP)
                .await
                .unwrap_or_else(|e| panic!("bystander's echo {when} not accepted: {e}"));
            let mut echoed = Vec::new();
            while let Some(part) = response.next_part().await {
                match part {
                    PayloadBuf::Bytes(bytes) => echoed.extend(bytes),
                    other => panic!("echo part of the wrong kind: {other:?}"),
                }
            }
            (echoed, response.outcome().cloned())
        };
        let (echoed, outcome) =
            within(STEP, &format!("the bystander's echo {when}"), exchange).await;
        // `Completed { .. }` matches whichever shape the variant has; the echoed bytes, all
        // of them in order, show it completed well.
        assert!(
            matches!(outcome, Some(RequestOutcome::Completed { .. })),
            "bystander's echo {when} ended {outcome:?}"
        );
        assert_eq!(echoed, sent, "bystander's echo {when} came back changed");
        assert!(self.client.is_open(), "bystander disconnected {when}");
        assert_eq!(
            self.client.stats().reconnects,
            0,
            "bystander had to reconnect {when} (connection {} was dropped)",
            self.connection_id
        );
    }

    /// Closes the client, bounded in time.
    pub async fn leave(self) {
        let _ = tokio::time::timeout(Duration::from_secs(3), self.client.close()).await;
    }
}
