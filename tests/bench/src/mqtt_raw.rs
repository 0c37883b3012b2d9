//! MQTT 3.1.1 connections written with rumqttc's packet codec straight onto a TCP stream: for
//! the events bench, whose publishers must write in the same bursts as its WebSocket clients
//! (rumqttc's event loop flushes after every publish), and for the idle bench's thousands of
//! connections, which need no event loop each.

use std::time::Duration;

use bytes::BytesMut;
use rumqttc::{ConnAck, Connect, ConnectReturnCode, Packet, Publish, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest packet read back (acks only).
const MAX_PACKET: usize = 64 * 1024;

/// Sends CONNECT for `client_id` (clean session, no keep-alive, so the broker expects no
/// pings) on `stream` and waits for a successful CONNACK.
pub async fn handshake(mut stream: TcpStream, client_id: &str) -> Result<TcpStream, String> {
    let mut connect = Connect::new(client_id);
    connect.keep_alive = 0;
    connect.clean_session = true;
    let mut out = BytesMut::new();
    connect.write(&mut out).map_err(|e| format!("{e:?}"))?;
    stream.write_all(&out).await.map_err(|e| e.to_string())?;
    let mut buf = BytesMut::new();
    match read_packet(&mut stream, &mut buf).await? {
        Packet::ConnAck(ConnAck {
            code: ConnectReturnCode::Success,
            ..
        }) => Ok(stream),
        other => Err(format!("expected a CONNACK, got {other:?}")),
    }
}

/// One encoded PUBLISH.
pub fn publish(topic: &str, qos: QoS, pkid: u16, payload: &[u8]) -> Result<Vec<u8>, String> {
    let mut publish = Publish::new(topic, qos, payload.to_vec());
    publish.pkid = pkid;
    let mut out = BytesMut::new();
    publish.write(&mut out).map_err(|e| format!("{e:?}"))?;
    Ok(out.to_vec())
}

/// A QoS 0 PUBLISH on `topic` of exactly `bytes` bytes, fixed header included.
pub fn publish_of_size(topic: &str, bytes: usize) -> Result<Vec<u8>, String> {
    let empty = publish(topic, QoS::AtMostOnce, 0, &[])?.len();
    let base = bytes
        .checked_sub(empty)
        .ok_or_else(|| format!("{bytes} bytes is below the smallest publish ({empty})"))?;
    // The remaining-length field grows by a byte at 128, so try the nearest lengths.
    for payload in [base, base.saturating_sub(1), base.saturating_sub(2)] {
        let packet = publish(topic, QoS::AtMostOnce, 0, &vec![b'x'; payload])?;
        if packet.len() == bytes {
            return Ok(packet);
        }
    }
    Err(format!("no publish of exactly {bytes} bytes"))
}

/// Sends a QoS 1 PUBLISH and waits for its PUBACK: the broker handles a connection's packets
/// in order, so the ack proves it read every packet sent before.
pub async fn confirm(stream: &mut TcpStream, topic: &str) -> Result<(), String> {
    let packet = publish(topic, QoS::AtLeastOnce, 1, b"end")?;
    stream.write_all(&packet).await.map_err(|e| e.to_string())?;
    let mut buf = BytesMut::new();
    loop {
        match read_packet(stream, &mut buf).await? {
            Packet::PubAck(ack) if ack.pkid == 1 => return Ok(()),
            Packet::PingResp => {}
            other => return Err(format!("expected a PUBACK, got {other:?}")),
        }
    }
}

/// The next packet from `stream`, within 30 s.
async fn read_packet(stream: &mut TcpStream, buf: &mut BytesMut) -> Result<Packet, String> {
    let read = async {
        loop {
            match Packet::read(buf, MAX_PACKET) {
                Ok(packet) => return Ok(packet),
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {}
                Err(e) => return Err(format!("{e:?}")),
            }
            if stream.read_buf(buf).await.map_err(|e| e.to_string())? == 0 {
                return Err("the broker closed the connection".to_owned());
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .map_err(|_| "no packet from the broker within 30 s".to_owned())?
}
