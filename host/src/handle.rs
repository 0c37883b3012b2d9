//! [`ServerHandle`]: what the application (and handlers) use to reach clients.
//!
//! Every send goes through the target connection's bounded queue and never waits: when the
//! queue is full the call fails with [`DeliveryError::QueueFull`] for that connection, so a
//! stalled client cannot make the server hold unbounded data, and nothing is dropped without
//! the caller hearing of it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use sentelite_core::codec::encoded_len;
use sentelite_core::frame::{ChannelMsg, Event, Frame, PayloadBuf, Request};
use sentelite_core::{CloseCode, Stats};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::ConnectionId;
use crate::command::{Command, OutboundRequest};
use crate::error::DeliveryError;
use crate::lifecycle::LifecycleEvent;
use crate::observer::{ChannelPublish, Publisher};
use crate::pubsub::{Snapshot, valid_name};
use crate::queue::TrySendError;
use crate::registry::{ConnEntry, lock};
use crate::request::{REPLY_BUFFER, ReplyStream};
use crate::server::Shared;
use crate::settings::ServerSettings;

/// A cloneable handle to a running server.
#[derive(Clone)]
pub struct ServerHandle {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("connections", &self.connection_count())
            .finish_non_exhaustive()
    }
}

/// A snapshot of one handshaken connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The connection.
    pub connection_id: ConnectionId,
    /// The uid the server gave it.
    pub uid: Arc<str>,
    /// The client's stable identity.
    pub client_id: Arc<str>,
    /// Changes on every boot of the client.
    pub boot_id: u32,
    /// Firmware or build id, if the client sent one.
    pub firmware: Option<Arc<str>>,
    /// [`sentelite_core::frame::capability`] bits from the Hello.
    pub capabilities: u32,
    /// Where the connection comes from.
    pub remote_addr: SocketAddr,
    /// When the handshake completed.
    pub connected_since: SystemTime,
    /// Counters of the connection's session.
    pub stats: Stats,
    /// Events from this connection that found no handler (counted, not delivered).
    pub events_unhandled: u64,
    /// Channels the connection joined.
    pub channels: Vec<Arc<str>>,
    /// Channel messages that did not arrive, as subscriber and as publisher.
    pub channel_drops: ChannelDrops,
}

/// Channel deliveries that failed for one connection, counted since its handshake. A
/// delivery fails when the subscriber's queue is full (it reads more slowly than its
/// channels publish) or the message is larger than the subscriber accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelDrops {
    /// Channel messages this connection did not get.
    pub missed: u64,
    /// Deliveries of this connection's own publishes that failed: one per subscriber that
    /// missed one of its messages.
    pub undelivered: u64,
}

/// The result of a send to several connections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Connections that took the item into their queue.
    pub delivered: usize,
    /// Connections that did not, and why.
    pub failed: Vec<DeliveryError>,
}

impl Delivery {
    fn record(&mut self, result: Result<(), DeliveryError>) {
        match result {
            Ok(()) => self.delivered += 1,
            Err(e) => self.failed.push(e),
        }
    }
}

impl ServerHandle {
    /// Pushes an event to one connection.
    pub fn send_to_connection(
        &self,
        connection_id: ConnectionId,
        event: &str,
        payload: PayloadBuf,
    ) -> Result<(), DeliveryError> {
        let entry = self.entry(connection_id)?;
        let len = event_len(event, &payload);
        enqueue(
            &entry,
            len,
            Command::Event {
                event: event.into(),
                payload: Arc::new(payload),
            },
        )
    }

    /// Pushes an event to every connection of a client id.
    pub fn send_to_client(
        &self,
        client_id: &str,
        event: &str,
        payload: PayloadBuf,
    ) -> Result<Delivery, DeliveryError> {
        let entries = lock(&self.shared.registry).by_client(client_id);
        if entries.is_empty() {
            return Err(DeliveryError::UnknownClient(client_id.to_owned()));
        }
        Ok(self.fan_out_event(&entries, event, payload))
    }

    /// Pushes an event to every handshaken connection.
    pub fn broadcast(&self, event: &str, payload: PayloadBuf) -> Delivery {
        let entries = lock(&self.shared.registry).all();
        self.fan_out_event(&entries, event, payload)
    }

    /// Publishes a server-originated message (`from` is empty) to a channel's subscribers.
    /// Subscribers that miss it count it in their [`ChannelDrops::missed`].
    pub fn publish(&self, channel: &str, payload: PayloadBuf) -> Result<Delivery, DeliveryError> {
        let mut delivery = Delivery::default();
        delivery.delivered = self.publish_from(channel, Arc::from(""), payload, None, |_, e| {
            delivery.failed.push(e);
        })?;
        Ok(delivery)
    }

    /// Sends a request to one connection. Parts and the outcome arrive on the returned
    /// stream; `timeout` of `None` waits until the connection ends.
    pub async fn request(
        &self,
        connection_id: ConnectionId,
        event: &str,
        payload: PayloadBuf,
        timeout: Option<std::time::Duration>,
    ) -> Result<ReplyStream, DeliveryError> {
        let entry = self.entry(connection_id)?;
        let timeout_ms = timeout.map_or(0, |t| u32::try_from(t.as_millis()).unwrap_or(u32::MAX));
        // The id is not known yet; the largest one gives an upper bound on the length.
        let len = encoded_len(&Frame::Request(Request {
            id: u32::MAX,
            event,
            timeout_ms,
            payload: payload.as_payload(),
        }));
        let (started_tx, started_rx) = oneshot::channel();
        let (replies_tx, replies_rx) = mpsc::channel(REPLY_BUFFER);
        let request = OutboundRequest {
            event: event.to_owned(),
            payload,
            timeout,
            started: started_tx,
            replies: replies_tx,
        };
        enqueue(&entry, len, Command::Request(request))?;
        let id = started_rx
            .await
            .map_err(|_| DeliveryError::Closed(connection_id))??;
        Ok(ReplyStream::new(
            connection_id,
            id,
            replies_rx,
            entry.commands.clone(),
        ))
    }

    /// Closes one connection with `code`.
    pub fn close_connection(
        &self,
        connection_id: ConnectionId,
        code: CloseCode,
        reason: &'static str,
    ) -> Result<(), DeliveryError> {
        let entry = self.entry(connection_id)?;
        enqueue(&entry, 0, Command::Close { code, reason })
    }

    /// Snapshots of every handshaken connection.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        let entries = lock(&self.shared.registry).all();
        let mut infos: Vec<_> = entries.iter().map(|e| self.info(e)).collect();
        infos.sort_by_key(|i| i.connection_id);
        infos
    }

    /// A snapshot of one connection.
    pub fn connection(&self, connection_id: ConnectionId) -> Option<ConnectionInfo> {
        let entry = lock(&self.shared.registry).get(connection_id)?;
        Some(self.info(&entry))
    }

    /// The boot id a connection gave in its Hello, without building its whole
    /// [`ConnectionInfo`] (the log ingest asks it for every batch).
    pub fn boot_id(&self, connection_id: ConnectionId) -> Option<u32> {
        lock(&self.shared.registry)
            .get(connection_id)
            .map(|entry| entry.boot_id)
    }

    /// Number of handshaken connections.
    pub fn connection_count(&self) -> usize {
        lock(&self.shared.registry).len()
    }

    /// The connections that joined `channel`, in ascending order.
    pub fn subscribers(&self, channel: &str) -> Vec<ConnectionId> {
        let mut ids = lock(&self.shared.channels).subscribers(channel);
        ids.sort_unstable();
        ids
    }

    /// A receiver of lifecycle events from now on.
    pub fn lifecycle(&self) -> broadcast::Receiver<LifecycleEvent> {
        self.shared.lifecycle.subscribe()
    }

    /// Where the server keeps its data.
    pub fn data_dir(&self) -> &Path {
        &self.shared.data_dir
    }

    /// The settings in force.
    pub fn settings(&self) -> &ServerSettings {
        &self.shared.settings
    }

    /// True once shutdown began.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.shutdown.is_cancelled()
    }

    /// Publishes to a channel on behalf of `from` (a uid, or empty for the server), skipping
    /// the connection `exclude` when given. Returns how many subscribers took the message;
    /// each that did not is counted as a miss and handed to `failed`. The channel's
    /// observers see the message first, subscribers or not.
    ///
    /// The channel table's lock is held only to clone the channel's member snapshot; the
    /// queueing, one short per-connection lock each, happens outside it.
    pub(crate) fn publish_from(
        &self,
        channel: &str,
        from: Arc<str>,
        payload: PayloadBuf,
        exclude: Option<ConnectionId>,
        mut failed: impl FnMut(ConnectionId, DeliveryError),
    ) -> Result<usize, DeliveryError> {
        if !valid_name(channel, self.shared.settings.max_channel_name_bytes) {
            return Err(DeliveryError::InvalidChannel);
        }
        self.notify_observers(channel, &from, &payload);
        let Some(Snapshot { members, retired }) = lock(&self.shared.channels).snapshot(channel)
        else {
            return Ok(0);
        };
        // Freeing a replaced snapshot is O(its members): done here, outside the lock.
        drop(retired);
        let len = encoded_len(&Frame::ChannelMsg(ChannelMsg {
            channel,
            from: &from,
            payload: payload.as_payload(),
        }));
        let channel: Arc<str> = channel.into();
        let payload = Arc::new(payload);
        let mut delivered = 0;
        for entry in members.iter().filter(|e| Some(e.id) != exclude) {
            let command = Command::ChannelMsg {
                channel: channel.clone(),
                from: from.clone(),
                payload: payload.clone(),
            };
            match enqueue(entry, len, command) {
                Ok(()) => delivered += 1,
                Err(e) => {
                    entry.channel_drops.count_missed();
                    failed(entry.id, e);
                }
            }
        }
        Ok(delivered)
    }

    fn notify_observers(&self, channel: &str, from: &str, payload: &PayloadBuf) {
        let observers = self.shared.observers.of(channel);
        if observers.is_empty() {
            return;
        }
        let publisher = if from.is_empty() {
            None
        } else {
            lock(&self.shared.registry)
                .by_uid(from)
                .map(|entry| Publisher {
                    connection_id: entry.id,
                    uid: entry.uid.clone(),
                    client_id: entry.client_id.clone(),
                    boot_id: entry.boot_id,
                })
        };
        let publish = ChannelPublish {
            channel,
            publisher,
            payload,
            server: self,
        };
        for observer in observers {
            observer(&publish);
        }
    }

    fn fan_out_event(
        &self,
        entries: &[Arc<ConnEntry>],
        event: &str,
        payload: PayloadBuf,
    ) -> Delivery {
        let len = event_len(event, &payload);
        let event: Arc<str> = event.into();
        let payload = Arc::new(payload);
        let mut delivery = Delivery::default();
        for entry in entries {
            delivery.record(enqueue(
                entry,
                len,
                Command::Event {
                    event: event.clone(),
                    payload: payload.clone(),
                },
            ));
        }
        delivery
    }

    fn entry(&self, connection_id: ConnectionId) -> Result<Arc<ConnEntry>, DeliveryError> {
        lock(&self.shared.registry)
            .get(connection_id)
            .ok_or(DeliveryError::UnknownConnection(connection_id))
    }

    fn info(&self, entry: &ConnEntry) -> ConnectionInfo {
        ConnectionInfo {
            connection_id: entry.id,
            uid: entry.uid.clone(),
            client_id: entry.client_id.clone(),
            boot_id: entry.boot_id,
            firmware: entry.firmware.clone(),
            capabilities: entry.capabilities,
            remote_addr: entry.remote,
            connected_since: entry.connected_since,
            stats: entry.stats(),
            events_unhandled: entry
                .events_unhandled
                .load(std::sync::atomic::Ordering::Relaxed),
            channels: lock(&self.shared.channels).channels_of(entry.id),
            channel_drops: entry.channel_drops.snapshot(),
        }
    }
}

fn event_len(event: &str, payload: &PayloadBuf) -> usize {
    encoded_len(&Frame::Event(Event {
        event,
        payload: payload.as_payload(),
    }))
}

/// Queues a command whose frame will be `len` bytes, refusing frames the client cannot take.
fn enqueue(entry: &ConnEntry, len: usize, command: Command) -> Result<(), DeliveryError> {
    if len > entry.peer_max_frame {
        return Err(DeliveryError::TooLarge {
            connection_id: entry.id,
            len,
            max: entry.peer_max_frame,
        });
    }
    entry
        .commands
        .try_send(Box::new(command))
        .map_err(|e| match e {
            TrySendError::Full(_) => DeliveryError::QueueFull(entry.id),
            TrySendError::Closed(_) => DeliveryError::Closed(entry.id),
        })
}
