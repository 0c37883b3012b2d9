//! defmt log frames decoded with a registered ELF, against a real `sentelite serve`.
//!
//! The ELF is real: `tests/defmt_firmware`, a tiny Cortex-M0 program with four defmt
//! statements, built for thumbv6m-none-eabi into `target/defmt-firmware` (once, then
//! cached). Its frames are made the way the device's `defmt-logger` makes them: the format
//! index (read from the ELF's symbols here, not from the decoder under test), the timestamp
//! and the arguments, rzCOBS-encoded by defmt's own `Encoder`, sent as records of a
//! `telemetry/log-batch` from a client whose Hello announces the ELF's build id. Without the
//! target or toolchain the tests that need the ELF are skipped with a loud notice, or fail
//! under `SENTELITE_REQUIRE_PEERS=1`.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use object::{Object, ObjectSymbol};
use sentelite_core::Status;
use sentelite_core::frame::Payload;
use sentelite_core::log::{BATCH_EVENT, Level, Record, encode_batch};
use sentelite_core::session::ClientConfig;
use sentelite_host::logs::LogEntry;
use support::cli::{Serve, run, serve};
use support::{STEP, TempDir, TestClient, sentelite};

const FIXTURE_TARGET: &str = "thumbv6m-none-eabi";

fn require_peers() -> bool {
    std::env::var("SENTELITE_REQUIRE_PEERS").as_deref() == Ok("1")
}

/// The fixture firmware's ELF, built on first use; `None` (after a loud notice) when the
/// thumbv6m target is not installed.
fn firmware_elf(test: &str) -> Option<&'static Path> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BUILT.get_or_init(build_firmware) {
        Ok(path) => Some(path),
        Err(why) => {
            assert!(
                !require_peers(),
                "{test}: {why}, and SENTELITE_REQUIRE_PEERS=1"
            );
            eprintln!("\n*** SKIPPED {test}: {why} (rustup target add {FIXTURE_TARGET}) ***\n");
            None
        }
    }
}

fn build_firmware() -> Result<PathBuf, String> {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sysroot = std::process::Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("rustc not found: {e}"))?;
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_owned();
    if !Path::new(&sysroot)
        .join("lib/rustlib")
        .join(FIXTURE_TARGET)
        .exists()
    {
        return Err(format!("the {FIXTURE_TARGET} target is not installed"));
    }
    let target_dir = manifest_dir.join("../target/defmt-firmware");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            FIXTURE_TARGET,
            "--manifest-path",
        ])
        .arg(manifest_dir.join("tests/defmt_firmware/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        // The linker script defmt needs, and a GNU build-id note to register it by.
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            "-Clink-arg=-Tdefmt.x\u{1f}-Clink-arg=--build-id=sha1",
        )
        // defmt compiles out statements below `error` unless told otherwise.
        .env("DEFMT_LOG", "trace")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .map_err(|e| format!("cargo not found: {e}"))?;
    assert!(
        out.status.success(),
        "the fixture firmware does not build:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(target_dir
        .join(FIXTURE_TARGET)
        .join("release/sentelite-defmt-firmware"))
}

/// What the test knows of the fixture ELF, read with `object` on its own.
struct Elf {
    path: &'static Path,
    build_id: String,
    bytes: Vec<u8>,
}

impl Elf {
    fn read(path: &'static Path) -> Self {
        let bytes = std::fs::read(path).unwrap();
        let file = object::File::parse(&*bytes).unwrap();
        let build_id = hex::encode(file.build_id().unwrap().expect("a build-id note"));
        Self {
            path,
            build_id,
            bytes,
        }
    }

    /// The defmt index of the statement whose format string is `format`: the address of
    /// its symbol, whose name is defmt's JSON description of it.
    fn index_of(&self, format: &str) -> u16 {
        let file = object::File::parse(&*self.bytes).unwrap();
        let needle = format!("\"data\":\"{format}\"");
        let symbol = file
            .symbols()
            .find(|s| s.name().is_ok_and(|n| n.contains(&needle)))
            .unwrap_or_else(|| panic!("no defmt symbol for {format:?}"));
        u16::try_from(symbol.address()).unwrap()
    }
}

/// The line of `text` in the fixture's source.
fn source_line(text: &str) -> u64 {
    let source = include_str!("defmt_firmware/src/main.rs");
    source
        .lines()
        .position(|l| l.contains(text))
        .map(|i| i as u64 + 1)
        .unwrap_or_else(|| panic!("{text:?} not in the fixture"))
}

/// One defmt frame as the device's logger captures it: `index`, the fixture's u64
/// timestamp and `args`, rzCOBS-encoded by defmt's encoder, trailing zero included.
fn frame(index: u16, timestamp: u64, args: &[u8]) -> Vec<u8> {
    let mut raw = index.to_le_bytes().to_vec();
    raw.extend_from_slice(&timestamp.to_le_bytes());
    raw.extend_from_slice(args);
    let mut encoder = defmt::Encoder::new();
    let mut out = Vec::new();
    encoder.start_frame(|b| out.extend_from_slice(b));
    encoder.write(&raw, |b| out.extend_from_slice(b));
    encoder.end_frame(|b| out.extend_from_slice(b));
    out
}

/// A plain record, or a record carrying a defmt frame (PROTOCOL.md 13.3).
enum Rec<'a> {
    Plain(&'a str),
    Defmt(&'a [u8]),
}

/// Sends `records` (seq from `first_seq`) as one batch from `client`, announcing
/// `firmware`, and waits for its ack.
async fn ship(
    addr: SocketAddr,
    client: &str,
    firmware: Option<&str>,
    first_seq: u32,
    records: &[Rec<'_>],
) {
    let mut config = ClientConfig::new(client).unwrap();
    config.firmware = firmware.map(|f| f.try_into().unwrap());
    let (mut conn, _) = TestClient::handshake(addr, config).await;
    let records: Vec<Record<'_>> = records
        .iter()
        .enumerate()
        .map(|(i, rec)| {
            let (namespace, message, data) = match rec {
                Rec::Plain(text) => ("app.pump", *text, &[][..]),
                Rec::Defmt(frame) => ("defmt", "", *frame),
            };
            Record {
                seq: first_seq + i as u32,
                time_ms: 1000 + i as u64,
                level: Level::Info,
                namespace,
                id: None,
                message,
                data,
            }
        })
        .collect();
    let mut buf = [0u8; 400];
    let len = encode_batch(None, records.iter().copied(), &mut buf).unwrap();
    let id = conn
        .request(BATCH_EVENT, Payload::Bytes(&buf[..len]), Some(STEP))
        .await;
    let (status, payload) = conn.end_of(id).await;
    assert_eq!(status, Status::OK, "batch refused: {payload:?}");
}

/// The stored records of `client`, oldest first, through the HTTP API.
fn records_of(server: &Serve, client: &str) -> Vec<LogEntry> {
    let url = format!("http://{}/api/logs?client={client}", server.addr);
    let body = ureq::get(&url)
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    serde_json::from_str(&body).unwrap()
}

fn elf_api(server: &Serve) -> serde_json::Value {
    let url = format!("http://{}/api/elf", server.addr);
    let body = ureq::get(&url)
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    serde_json::from_str(&body).unwrap()
}

/// The frame counters of `build_id` in `GET /api/elf`: (decoded, unmatched, errors).
fn counters(server: &Serve, build_id: &str) -> (u64, u64, u64) {
    let api = elf_api(server);
    let entry = api["frames"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["build-id"] == build_id)
        .unwrap_or_else(|| panic!("no counters for {build_id:?} in {api}"));
    let n = |key: &str| entry[key].as_u64().unwrap();
    (n("decoded"), n("unmatched"), n("errors"))
}

#[tokio::test]
async fn registered_elf_turns_frames_into_records_and_survives_a_restart() {
    let Some(path) = firmware_elf("registered_elf_turns_frames_into_records") else {
        return;
    };
    let elf = Elf::read(path);
    let dir = TempDir::new("defmt-decode");
    let server = serve(&dir.0);
    let url = format!("http://{}", server.addr);
    let added = run(&["elf", "add", elf.path.to_str().unwrap(), "--server", &url]);
    let said = String::from_utf8_lossy(&added.stdout);
    assert!(said.contains(&elf.build_id), "elf add said {said:?}");

    let started = frame(elf.index_of("pump started"), 123, &[]);
    let hot = frame(
        elf.index_of("temperature {=u32} C over limit"),
        124,
        &42u32.to_le_bytes(),
    );
    let mut sensor_args = 1u32.to_le_bytes().to_vec();
    sensor_args.push(b'a');
    let sensor = frame(elf.index_of("sensor {=str} failed"), 125, &sensor_args);
    let tick = frame(elf.index_of("tick {=u8}"), 126, &[7]);
    ship(
        server.addr,
        "pump-1",
        Some(&elf.build_id),
        0,
        &[
            Rec::Defmt(&started),
            Rec::Plain("plain text stays"),
            Rec::Defmt(&hot),
            Rec::Defmt(&sensor),
            Rec::Defmt(&tick),
        ],
    )
    .await;
    let got = records_of(&server, "pump-1");
    let seen: Vec<(&str, &str, &str)> = got
        .iter()
        .map(|r| (r.level.as_str(), r.ns.as_str(), r.message.as_str()))
        .collect();
    // defmt's module path ends with the enclosing function.
    let module = "sentelite_defmt_firmware::_start";
    assert_eq!(
        seen,
        [
            ("info", module, "pump started"),
            ("info", "app.pump", "plain text stays"),
            ("warn", module, "temperature 42 C over limit"),
            ("error", module, "sensor a failed"),
            ("debug", module, "tick 7"),
        ]
    );
    let first = &got[0];
    assert_eq!(first.seq, Some(0));
    assert_eq!(first.time_ms, 1000);
    assert!(
        first.data["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("main.rs")),
        "{:?}",
        first.data
    );
    assert_eq!(
        first.data["line"],
        source_line("defmt::info!(\"pump started\")")
    );
    assert_eq!(got[2].data["line"], source_line("defmt::warn!("));
    assert_eq!(first.data["defmt-timestamp"], "0.000123");
    assert_eq!(counters(&server, &elf.build_id), (4, 0, 0));

    let listed = run(&["elf", "list", "--server", &url]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains(&elf.build_id) && listed.contains("4 decoded"),
        "elf list said {listed:?}"
    );

    // The registration is kept in the data dir: a new server decodes at once.
    drop(server);
    let server = serve(&dir.0);
    ship(
        server.addr,
        "pump-2",
        Some(&elf.build_id),
        0,
        &[Rec::Defmt(&tick)],
    )
    .await;
    let got = records_of(&server, "pump-2");
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].level.as_str(), got[0].message.as_str()),
        ("debug", "tick 7")
    );

    // Removed, its frames are stored undecoded again.
    run(&[
        "elf",
        "remove",
        &elf.build_id,
        "--server",
        &format!("http://{}", server.addr),
    ]);
    ship(
        server.addr,
        "pump-3",
        Some(&elf.build_id),
        0,
        &[Rec::Defmt(&tick)],
    )
    .await;
    let got = records_of(&server, "pump-3");
    assert!(
        got[0]
            .message
            .starts_with("undecoded defmt frame: no ELF registered"),
        "{:?}",
        got[0]
    );
}

#[tokio::test]
async fn an_elf_added_to_a_data_dir_is_read_at_startup() {
    let Some(path) = firmware_elf("an_elf_added_to_a_data_dir_is_read_at_startup") else {
        return;
    };
    let elf = Elf::read(path);
    let dir = TempDir::new("defmt-data-dir");
    let data_dir = dir.0.to_str().unwrap();
    run(&[
        "elf",
        "add",
        elf.path.to_str().unwrap(),
        "--data-dir",
        data_dir,
    ]);
    let listed = run(&["elf", "list", "--data-dir", data_dir]);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed.starts_with(&elf.build_id),
        "elf list said {listed:?}"
    );

    let server = serve(&dir.0);
    let started = frame(elf.index_of("pump started"), 5, &[]);
    ship(
        server.addr,
        "pump-5",
        Some(&elf.build_id),
        0,
        &[Rec::Defmt(&started)],
    )
    .await;
    assert_eq!(records_of(&server, "pump-5")[0].message, "pump started");
    drop(server);

    run(&["elf", "remove", &elf.build_id, "--data-dir", data_dir]);
    let listed = run(&["elf", "list", "--data-dir", data_dir]);
    assert!(
        listed.stdout.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&listed.stdout)
    );
    let again = sentelite(&["elf", "remove", &elf.build_id, "--data-dir", data_dir])
        .output()
        .unwrap();
    assert!(
        !again.status.success(),
        "removing an unknown build id succeeded"
    );
}

/// The frame bytes an undecoded record kept (the store shows data that is not CBOR as
/// base64).
fn kept_frame(entry: &LogEntry) -> Vec<u8> {
    use base64::Engine;
    let text = entry.data["undecoded-cbor"]
        .as_str()
        .unwrap_or_else(|| panic!("no frame kept in {:?}", entry.data));
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

#[tokio::test]
async fn frames_without_an_elf_are_stored_undecoded_and_counted() {
    let dir = TempDir::new("defmt-unmatched");
    let server = serve(&dir.0);
    // Any bytes do: there is nothing to decode them with.
    let frame_bytes = [0x05, 0x01, 0x7b, 0x00];
    ship(
        server.addr,
        "old-1",
        Some("build-nobody-registered"),
        0,
        &[
            Rec::Defmt(&frame_bytes),
            Rec::Plain("plain"),
            Rec::Defmt(&frame_bytes),
        ],
    )
    .await;
    ship(server.addr, "anon-1", None, 0, &[Rec::Defmt(&frame_bytes)]).await;

    let got = records_of(&server, "old-1");
    assert_eq!(got.len(), 3);
    for entry in [&got[0], &got[2]] {
        assert_eq!(entry.ns, "defmt");
        assert_eq!(entry.level, "info");
        assert_eq!(
            entry.message,
            "undecoded defmt frame: no ELF registered for build id \"build-nobody-registered\""
        );
        assert_eq!(kept_frame(entry), frame_bytes);
    }
    assert_eq!(got[1].message, "plain");
    let anon = records_of(&server, "anon-1");
    assert_eq!(
        anon[0].message,
        "undecoded defmt frame: the client announced no build id"
    );
    assert_eq!(counters(&server, "build-nobody-registered"), (0, 2, 0));
    assert_eq!(counters(&server, ""), (0, 1, 0));
}

#[tokio::test]
async fn frames_that_do_not_decode_are_kept_with_the_error() {
    let Some(path) = firmware_elf("frames_that_do_not_decode_are_kept_with_the_error") else {
        return;
    };
    let elf = Elf::read(path);
    let dir = TempDir::new("defmt-corrupt");
    let server = serve(&dir.0);
    // Registered under an id of our own, as for firmware without a build-id note.
    let url = format!("http://{}", server.addr);
    run(&[
        "elf",
        "add",
        elf.path.to_str().unwrap(),
        "--build-id",
        "pump@1.0.0",
        "--server",
        &url,
    ]);

    let good = frame(elf.index_of("tick {=u8}"), 1, &[9]);
    // An index no statement has.
    let unknown = frame(0x7fff, 1, &[]);
    // A string argument longer than the frame. (A frame merely cut short is not always
    // caught: rzCOBS restores trailing zeros, so missing zero bytes read as zeros.)
    let short = frame(
        elf.index_of("sensor {=str} failed"),
        1,
        &[200, 0, 0, 0, b'a'],
    );
    // Not rzCOBS at all: a zero in the middle, no trailing zero.
    let broken = [0x03, 0x00, 0x41];
    ship(
        server.addr,
        "pump-9",
        Some("pump@1.0.0"),
        0,
        &[
            Rec::Defmt(&unknown),
            Rec::Defmt(&short),
            Rec::Defmt(&broken),
            Rec::Defmt(&good),
        ],
    )
    .await;
    let got = records_of(&server, "pump-9");
    assert_eq!(got.len(), 4, "every record is kept: {got:?}");
    let bad = [&unknown[..], &short[..], &broken[..]];
    for (entry, sent) in got.iter().zip(bad) {
        assert!(
            entry
                .message
                .starts_with("undecoded defmt frame: defmt frame")
                && entry.message.ends_with("(build id \"pump@1.0.0\")"),
            "{entry:?}"
        );
        assert_eq!(kept_frame(entry), sent);
    }
    assert_eq!(got[3].message, "tick 9");
    assert_eq!(counters(&server, "pump@1.0.0"), (1, 0, 3));
}

#[tokio::test]
async fn elf_add_refuses_what_is_not_a_defmt_elf() {
    let dir = TempDir::new("defmt-refuse");
    std::fs::create_dir_all(&dir.0).unwrap();
    let text = dir.0.join("notes.txt");
    std::fs::write(&text, "not an ELF\n").unwrap();
    let data_dir = dir.0.join("data");
    let refuse = |file: &Path, extra: &[&str]| {
        let mut args = vec![
            "elf",
            "add",
            file.to_str().unwrap(),
            "--data-dir",
            data_dir.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = sentelite(&args).output().unwrap();
        assert!(!out.status.success(), "elf add {file:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let said = refuse(&text, &[]);
    assert!(said.contains("not an ELF file"), "{said}");
    // The sentelite binary itself: an ELF, but no defmt in it.
    let host_elf = Path::new(env!("CARGO_BIN_EXE_sentelite"));
    let said = refuse(host_elf, &["--build-id", "host"]);
    assert!(said.contains("no defmt table"), "{said}");
    let said = refuse(&dir.0.join("missing.elf"), &[]);
    assert!(said.contains("missing.elf"), "{said}");
    // Nothing was registered.
    let listed = run(&["elf", "list", "--data-dir", data_dir.to_str().unwrap()]);
    assert!(
        listed.stdout.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&listed.stdout)
    );

    // The server refuses the same with 422 and says why.
    let server = serve(&data_dir);
    let response = ureq::post(&format!("http://{}/api/elf", server.addr))
        .config()
        .http_status_as_error(false)
        .build()
        .send(&b"\x7fELF but no more"[..])
        .unwrap();
    assert_eq!(response.status().as_u16(), 422);
}

/// What decoding costs the ingest path: a 50-record batch of defmt frames through
/// `DefmtService::decode` and the check the store needs, against the same texts sent as
/// plain records (check only). Prints nanoseconds per record; run with
/// `cargo test --release -p sentelite-host --test defmt -- --ignored --nocapture decode_cost`.
#[test]
#[ignore = "a measurement, not a check"]
fn decode_cost() {
    use sentelite_host::defmt::DefmtService;
    use sentelite_host::logs::WireBatch;
    let Some(path) = firmware_elf("decode_cost") else {
        return;
    };
    let elf = Elf::read(path);
    let dir = TempDir::new("defmt-cost");
    let defmt = DefmtService::open(&dir.0).unwrap();
    defmt.add(&elf.bytes, None).unwrap();
    let frames = [
        frame(elf.index_of("pump started"), 1, &[]),
        frame(
            elf.index_of("temperature {=u32} C over limit"),
            2,
            &42u32.to_le_bytes(),
        ),
        frame(elf.index_of("sensor {=str} failed"), 3, &[1, 0, 0, 0, b'a']),
        frame(elf.index_of("tick {=u8}"), 4, &[7]),
    ];
    let texts = [
        "pump started",
        "temperature 42 C over limit",
        "sensor a failed",
        "tick 7",
    ];
    let batch = |defmt_frames: bool| {
        let records: Vec<Record<'_>> = (0..50u32)
            .map(|i| {
                let k = i as usize % 4;
                Record {
                    seq: i,
                    time_ms: u64::from(i),
                    level: Level::Info,
                    namespace: if defmt_frames {
                        "defmt"
                    } else {
                        "pump.control"
                    },
                    id: None,
                    message: if defmt_frames { "" } else { texts[k] },
                    data: if defmt_frames { &frames[k] } else { &[] },
                }
            })
            .collect();
        let mut buf = vec![0u8; 8192];
        let len = encode_batch(None, records.iter().copied(), &mut buf).unwrap();
        buf.truncate(len);
        buf
    };
    let (with_frames, plain) = (batch(true), batch(false));
    let check = |payload: Vec<u8>| {
        WireBatch::checked("c".into(), "u".into(), 1, 0, payload).unwrap();
    };
    let rounds = 2000u32;
    let time = |f: &dyn Fn()| {
        let start = std::time::Instant::now();
        for _ in 0..rounds {
            f();
        }
        start.elapsed().as_nanos() as f64 / f64::from(rounds) / 50.0
    };
    for _ in 0..3 {
        let plain_ns = time(&|| check(plain.clone()));
        let defmt_ns = time(&|| {
            let decoded = defmt
                .decode("c", Some(&elf.build_id), &with_frames)
                .expect("decoded");
            check(decoded);
        });
        let passed_ns = time(&|| {
            assert!(defmt.decode("c", Some(&elf.build_id), &plain).is_none());
            check(plain.clone());
        });
        let firmware = defmt.firmware(&elf.build_id).unwrap();
        let frame_ns = time(&|| {
            for i in 0..50 {
                firmware.decode(&frames[i % 4]).unwrap();
            }
        });
        println!(
            "per record: plain check {plain_ns:.0} ns, plain through decode + check {passed_ns:.0} ns, defmt decode + check {defmt_ns:.0} ns ({:.1}x plain), of which the frame alone {frame_ns:.0} ns",
            defmt_ns / plain_ns
        );
    }
}
