//! Unbatched events (the seed's phase-1 shape): N clients stream one native Event per frame at
//! `sentelite serve`, the same frames at a bare tokio-tungstenite server that only reads them,
//! and QoS 0 PUBLISH packets of the same size at mosquitto; frames each server confirmed, per
//! CPU-second of that server.
//!
//! Every client writes its frames in bursts of `--burst` (one write each), pre-encoded, so the
//! three servers see the same write pattern. The count is the server's: the bare server
//! prints what each connection delivered; sentelite answers a `sentelite/echo` request sent
//! after the last event, and mosquitto a QoS 1 publish sent after the last QoS 0 one (both
//! handle a connection's frames in order), and mosquitto's `$SYS` publish counter must match.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::bare::Bare;
use crate::cpu::cpu_time;
use crate::figures::Spread;
use crate::logs::{Measure, data_dir};
use crate::{mqtt, mqtt_raw, native, serve};

/// Options of `sentelite-bench events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Streaming clients
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Length of each measured window
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Windows per system, interleaved; the median is printed with the range
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Bytes of each frame as handed to the transport (native frame, MQTT packet)
    #[arg(long, default_value_t = 128)]
    frame_bytes: usize,
    /// Frames a client writes at once (one write system call)
    #[arg(long, default_value_t = 16)]
    burst: usize,
    /// Fail when mosquitto is not installed, instead of printing the table without it
    #[arg(long)]
    require_baseline: bool,
}

/// The reference figures (frames per server CPU-second, same machine kind).
const REFERENCE: [(&str, &str); 3] = [
    ("bare tokio-tungstenite", "3.9 M"),
    ("sentelite", "0.59 M"),
    ("mosquitto QoS 0", "0.32 M"),
];

pub async fn run(args: EventsArgs) -> Result<(), String> {
    let binary = serve::build_sentelite()?;
    let mosquitto = mqtt::mosquitto_path();
    if mosquitto.is_none() && args.require_baseline {
        return Err("mosquitto is not installed (Debian package `mosquitto`)".into());
    }
    let runs = args.runs.max(1);
    let (mut bare, mut ours, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
    // Interleaved, so a burst of load on the shared machine hits every column alike.
    for run in 0..runs {
        eprintln!("run {}/{runs}", run + 1);
        bare.push(bare_window(&args).await?);
        ours.push(sentelite_window(&binary, &args).await?);
        if let Some(path) = &mosquitto {
            theirs.push(mosquitto_window(path, &args).await?);
        }
    }
    println!(
        "Unbatched events, {} clients, {}-byte frames written {} at a time, {} s windows, \
         median of {runs} (range in brackets)",
        args.clients, args.frame_bytes, args.burst, args.seconds
    );
    println!();
    println!(
        "| system | frames/s | frames per server CPU-second | server CPU % | sentelite is | issue's reference |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let ours_per_cpu = spread(&ours).median;
    let mut rows = vec![("bare tokio-tungstenite", &bare), ("sentelite", &ours)];
    if mosquitto.is_some() {
        rows.push(("mosquitto QoS 0", &theirs));
    }
    for (name, windows) in rows {
        let s = spread(windows);
        let median = median_window(windows);
        let ratio = if name == "sentelite" {
            "1.00×".to_owned()
        } else {
            format!("{:.2}× it", ours_per_cpu / s.median)
        };
        let reference = REFERENCE
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, r)| r);
        println!(
            "| {name} | {:.0} | {} | {:.0} | {ratio} | {reference} |",
            median.per_second(),
            s.cell(),
            100.0 * median.server_cpu.as_secs_f64() / median.elapsed.as_secs_f64(),
        );
    }
    if mosquitto.is_none() {
        println!("| mosquitto QoS 0 | not installed | | | | 0.32 M |");
    }
    Ok(())
}

fn spread(windows: &[Measure]) -> Spread {
    let figures: Vec<f64> = windows.iter().map(Measure::per_cpu_second).collect();
    Spread::of(&figures)
}

fn median_window(windows: &[Measure]) -> Measure {
    let mut sorted = windows.to_vec();
    sorted.sort_by(|a, b| a.per_cpu_second().total_cmp(&b.per_cpu_second()));
    sorted[sorted.len() / 2]
}

/// One burst of `burst` copies of `frame` as WebSocket messages, then one flush.
async fn stream_ws(
    ws: &mut native::Ws,
    frame: Bytes,
    burst: usize,
    deadline: Instant,
) -> Result<u64, String> {
    let mut sent = 0u64;
    while Instant::now() < deadline {
        for _ in 0..burst {
            ws.feed(Message::Binary(frame.clone()))
                .await
                .map_err(|e| e.to_string())?;
        }
        ws.flush().await.map_err(|e| e.to_string())?;
        sent += burst as u64;
    }
    Ok(sent)
}

async fn bare_window(args: &EventsArgs) -> Result<Measure, String> {
    let mut server = Bare::start().await?;
    let url = format!("ws://{}/", server.addr);
    let frame = Bytes::from(native::event_frame(args.frame_bytes)?);
    let mut sockets = Vec::new();
    for _ in 0..args.clients {
        sockets.push(native::connect(&url).await?);
    }
    let cpu_before = cpu_time(server.pid()).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for mut ws in sockets {
        let (frame, burst) = (frame.clone(), args.burst);
        tasks.push(tokio::spawn(async move {
            let sent = stream_ws(&mut ws, frame, burst, deadline).await?;
            ws.close(None).await.map_err(|e| e.to_string())?;
            // Until the server's answering close: closing the socket earlier could reset it
            // with frames still unread on the server's side.
            let drained = async { while let Some(Ok(_)) = ws.next().await {} };
            tokio::time::timeout(Duration::from_secs(30), drained)
                .await
                .map_err(|_| "the bare server did not close within 30 s".to_owned())?;
            Ok::<_, String>(sent)
        }));
    }
    let mut sent = 0;
    for task in tasks {
        sent += task.await.map_err(|e| e.to_string())??;
    }
    let received = server.closed(args.clients).await?;
    let elapsed = start.elapsed();
    let server_cpu = cpu_time(server.pid()).map_err(|e| e.to_string())? - cpu_before;
    if received != sent {
        return Err(format!(
            "bare server counted {received} frames, {sent} sent"
        ));
    }
    Ok(Measure {
        records: received,
        elapsed,
        server_cpu,
        bytes_per_record: args.frame_bytes as f64,
    })
}

async fn sentelite_window(binary: &Path, args: &EventsArgs) -> Result<Measure, String> {
    let dir = data_dir("events");
    let server = serve::start(binary, &dir, "")?;
    let url = format!("ws://{}/ws", server.addr);
    let frame = Bytes::from(native::event_frame(args.frame_bytes)?);
    let mut sockets = Vec::new();
    for i in 0..args.clients {
        let mut ws = native::connect(&url).await?;
        native::handshake(&mut ws, &format!("bench-{i}")).await?;
        sockets.push(ws);
    }
    let cpu_before = cpu_time(server.pid()).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for mut ws in sockets {
        let (frame, burst) = (frame.clone(), args.burst);
        tasks.push(tokio::spawn(async move {
            let sent = stream_ws(&mut ws, frame, burst, deadline).await?;
            native::confirm(&mut ws).await?;
            Ok::<_, String>((sent, ws))
        }));
    }
    let mut sent = 0;
    let mut sockets = Vec::new();
    for task in tasks {
        let (n, ws) = task.await.map_err(|e| e.to_string())??;
        sent += n;
        sockets.push(ws);
    }
    let elapsed = start.elapsed();
    let server_cpu = cpu_time(server.pid()).map_err(|e| e.to_string())? - cpu_before;
    drop(sockets);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Measure {
        records: sent,
        elapsed,
        server_cpu,
        bytes_per_record: args.frame_bytes as f64,
    })
}

async fn mosquitto_window(binary: &Path, args: &EventsArgs) -> Result<Measure, String> {
    // `$SYS` counters every second, for the check below.
    let (broker, port) = mqtt::start(binary, "sys_interval 1\n")?;
    let mut streams = Vec::new();
    for i in 0..args.clients {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        streams.push(mqtt_raw::handshake(stream, &format!("bench-{i}")).await?);
    }
    let cpu_before = cpu_time(broker.pid()).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for (i, mut stream) in streams.into_iter().enumerate() {
        let topic = format!("bench/{i}");
        let packet = mqtt_raw::publish_of_size(&topic, args.frame_bytes)?;
        let burst = packet.repeat(args.burst);
        let per_burst = args.burst as u64;
        tasks.push(tokio::spawn(async move {
            let mut sent = 0u64;
            while Instant::now() < deadline {
                stream.write_all(&burst).await.map_err(|e| e.to_string())?;
                sent += per_burst;
            }
            mqtt_raw::confirm(&mut stream, &topic).await?;
            Ok::<_, String>((sent, stream))
        }));
    }
    let mut sent = 0;
    let mut streams = Vec::new();
    for task in tasks {
        let (n, stream) = task.await.map_err(|e| e.to_string())??;
        sent += n;
        streams.push(stream);
    }
    let elapsed = start.elapsed();
    let server_cpu = cpu_time(broker.pid()).map_err(|e| e.to_string())? - cpu_before;
    drop(streams);
    // Every QoS 0 publish plus one QoS 1 publish per client.
    let expected = sent + args.clients as u64;
    let counted = sys_publishes_received(port, expected).await?;
    drop(broker);
    if counted != expected {
        return Err(format!(
            "mosquitto counted {counted} publishes received, {expected} sent"
        ));
    }
    Ok(Measure {
        records: sent,
        elapsed,
        server_cpu,
        bytes_per_record: args.frame_bytes as f64,
    })
}

/// mosquitto's own count of PUBLISH packets received, once it reaches `expected` (the
/// counter is published every `sys_interval`), or its last value after 5 s.
async fn sys_publishes_received(port: u16, expected: u64) -> Result<u64, String> {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let mut options = MqttOptions::new("bench-sys", "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(options, 16);
    client
        .subscribe("$SYS/broker/publish/messages/received", QoS::AtMostOnce)
        .await
        .map_err(|e| e.to_string())?;
    let mut last = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while let Ok(event) = tokio::time::timeout_at(deadline, events.poll()).await {
        if let Ok(Event::Incoming(Packet::Publish(p))) = event {
            let value = std::str::from_utf8(&p.payload)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok());
            last = value;
            if value == Some(expected) {
                break;
            }
        } else if let Err(e) = event {
            return Err(format!("$SYS subscriber: {e}"));
        }
    }
    last.ok_or_else(|| "mosquitto published no $SYS publish counter".into())
}
