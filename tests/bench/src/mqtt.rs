//! The MQTT baseline: mosquitto, started per window, with QoS 1 or QoS 0 publishers (one
//! message per record) for the log ingest bench.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};

use crate::cpu::cpu_time;
use crate::logs::Measure;

/// Where mosquitto is installed, if it is.
pub fn mosquitto_path() -> Option<PathBuf> {
    [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// A running mosquitto and its settings file, both gone on drop.
pub struct Broker(Child, PathBuf);

impl Broker {
    /// The process id, for its CPU time and memory.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_file(&self.1);
    }
}

/// Starts mosquitto on an ephemeral loopback port; `extra` is appended to its settings.
pub fn start(binary: &Path, extra: &str) -> Result<(Broker, u16), String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let conf = std::env::temp_dir().join(format!("sentelite-bench-mosquitto-{port}.conf"));
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nmax_inflight_messages 100\n{extra}"
        ),
    )
    .map_err(|e| e.to_string())?;
    let child = Command::new(binary)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("start mosquitto: {e}"))?;
    let broker = Broker(child, conf);
    let ready = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > ready {
            return Err("mosquitto did not listen within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((broker, port))
}

/// One window of `clients` publishers at `qos` sending `payload`-byte messages. A QoS 1
/// message counts once mosquitto's PUBACK for it arrives; QoS 0 has no answer, so a QoS 0
/// message counts once the client has written it to the socket (mosquitto may still have
/// it unread at the window's end, which flatters it slightly).
pub async fn window(
    binary: &Path,
    clients: usize,
    seconds: u64,
    payload: usize,
    qos: QoS,
) -> Result<Measure, String> {
    let (broker, port) = start(binary, "")?;
    let acked = Arc::new(AtomicU64::new(0));
    let counting = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut publishers = Vec::new();
    let mut loops = Vec::new();
    for i in 0..clients {
        let mut options = MqttOptions::new(format!("bench-{i}"), "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(30));
        options.set_inflight(100);
        let (client, mut events) = AsyncClient::new(options, 256);
        let (acked, counting) = (acked.clone(), counting.clone());
        loops.push(tokio::spawn(async move {
            while let Ok(event) = events.poll().await {
                let counts = match event {
                    Event::Incoming(Packet::PubAck(_)) => qos == QoS::AtLeastOnce,
                    Event::Outgoing(Outgoing::Publish(_)) => qos == QoS::AtMostOnce,
                    _ => false,
                };
                if counts && counting.load(Ordering::Relaxed) {
                    acked.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
        publishers.push(client);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let body = vec![b'x'; payload];
    let cpu_before = cpu_time(broker.0.id()).map_err(|e| e.to_string())?;
    counting.store(true, Ordering::Relaxed);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (i, client) in publishers.into_iter().enumerate() {
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let topic = format!("logs/bench-{i}");
            while Instant::now() < deadline {
                if client
                    .publish(topic.clone(), qos, false, body.clone())
                    .await
                    .is_err()
                {
                    break;
                }
            }
            client
        }));
    }
    let mut clients_back = Vec::new();
    for task in tasks {
        clients_back.push(task.await.map_err(|e| e.to_string())?);
    }
    counting.store(false, Ordering::Relaxed);
    let elapsed = start.elapsed();
    let server_cpu = cpu_time(broker.0.id()).map_err(|e| e.to_string())? - cpu_before;
    for client in clients_back {
        let _ = client.disconnect().await;
    }
    drop(broker);
    for l in loops {
        l.abort();
    }
    Ok(Measure {
        records: acked.load(Ordering::Relaxed),
        elapsed,
        server_cpu,
        bytes_per_record: payload as f64,
    })
}
