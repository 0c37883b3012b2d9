//! Fetch and upload directives end to end: the library's `push` sends a
//! `blob/fetch-and-process` request to a native client on loopback, the client answers with
//! progress parts and an End, and the transfer's record follows them — through the awaited
//! `Transfer`, the live feed, the `blob/transfers` channel and the SQLite file. Also the
//! client's refusals, failures, the sente-lite report events and `blob/upload`.

mod support;

use sentelite_core::Status;
use sentelite_core::blob::directive::{Directive, UploadDirective};
use sentelite_core::frame::{Payload, PayloadBuf};
use sentelite_host::blob::transfers::TransferStore;
use sentelite_host::blob::{
    BlobService, BlobSettings, PushError, PushRequest, TRANSFERS_CHANNEL, TransferRecord,
    TransferState,
};
use sentelite_host::translate::{edn_to_cbor, payload_to_edn, payload_to_json};
use sentelite_host::{Server, ServerHandle};
use support::{Got, STEP, TempDir, TestClient, start_with_blobs};

struct Rig {
    server: Server,
    blobs: BlobService,
    dir: TempDir,
}

async fn rig() -> Rig {
    let (server, blobs, dir) = start_with_blobs("blob-push", BlobSettings::default()).await;
    Rig { server, blobs, dir }
}

fn value(edn: &str) -> Vec<u8> {
    edn_to_cbor(edn).unwrap()
}

/// The next directive the client receives: id, event, payload.
async fn directive(client: &mut TestClient) -> (u32, String, PayloadBuf) {
    for _ in 0..16 {
        if let Got::Request { id, event, payload } = client.next().await {
            return (id, event, payload);
        }
    }
    panic!("no directive arrived");
}

async fn finished(transfer: sentelite_host::blob::Transfer) -> TransferRecord {
    tokio::time::timeout(STEP, transfer.finish())
        .await
        .expect("the transfer ends in time")
}

/// Opens `GET url` (a newline-delimited JSON stream) and, once its head arrived, returns
/// a task that reads `n` lines from it.
async fn tail_lines(url: String, n: usize) -> tokio::task::JoinHandle<Vec<String>> {
    let (opened, is_open) = tokio::sync::oneshot::channel();
    let task = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let response = ureq::get(&url).call().expect("the tail answers");
        let _ = opened.send(());
        let reader = std::io::BufReader::new(response.into_body().into_reader());
        reader.lines().take(n).map(|l| l.unwrap()).collect()
    });
    tokio::time::timeout(STEP, is_open).await.unwrap().unwrap();
    task
}

fn handle(rig: &Rig) -> ServerHandle {
    rig.server.handle()
}

#[tokio::test]
async fn push_follows_progress_to_completion_everywhere() {
    let rig = rig().await;
    let blob = rig.blobs.store().add_reader(&[7u8; 1000][..]).unwrap();
    let mut device = TestClient::open(rig.server.local_addr(), "dev-1").await;
    let mut watcher = TestClient::open(rig.server.local_addr(), "watcher").await;
    watcher.subscribe(TRANSFERS_CHANNEL).await;
    assert!(matches!(
        watcher.next().await,
        Got::SubscribeAck {
            subscribed: true,
            ..
        }
    ));
    let mut live = rig.blobs.subscribe();
    let tail = tail_lines(
        format!(
            "http://{}/api/blobs/transfers/tail?client=dev-1",
            rig.server.local_addr()
        ),
        4,
    )
    .await;

    let mut transfer = rig
        .blobs
        .push(
            &handle(&rig),
            "dev-1",
            PushRequest::stored("demo/show", blob.sha256.clone()),
        )
        .await
        .unwrap();
    assert_eq!(transfer.current().state, TransferState::Sent);
    let tid = transfer.id();

    let (id, event, payload) = directive(&mut device).await;
    assert_eq!(event, "blob/fetch-and-process");
    let edn = payload_to_edn(&payload).unwrap();
    assert!(matches!(payload, PayloadBuf::Value(_)), "a Value map");
    assert!(edn.contains(":handler :demo/show"), "{edn}");
    assert!(edn.contains(&format!(":transfer-id \"{tid}\"")), "{edn}");
    let url = format!("http://{}/blobs/{}", rig.server.local_addr(), blob.sha256);
    assert!(edn.contains(&format!(":url \"{url}\"")), "{edn}");
    assert!(
        edn.contains(&format!(":sha256 \"{}\"", blob.sha256)),
        "{edn}"
    );
    assert!(edn.contains(":size 1000"), "{edn}");
    assert!(edn.contains(":deadline-ms 600000"), "{edn}");
    // The client's own decoder reads it.
    let PayloadBuf::Value(bytes) = &payload else {
        unreachable!()
    };
    let decoded = Directive::decode(&event, bytes).expect("the core decodes the directive");
    assert_eq!(decoded.transfer_id, tid);
    assert_eq!(decoded.url, url);
    assert_eq!(decoded.handler, "demo/show");
    assert_eq!(decoded.metadata.size, Some(1000));
    assert_eq!(decoded.metadata.sha256, Some(blob.sha256.digest()));
    assert_eq!(decoded.options.deadline_ms, Some(600_000));
    assert!(decoded.options.verify);

    for loaded in [400u64, 1000] {
        let part = value(&format!(
            "{{:transfer-id \"{tid}\" :url \"{url}\" :loaded {loaded} :total 1000 :percent {}}}",
            loaded / 10
        ));
        device
            .reply(id, loaded as u32 / 1000, Payload::Value(&part))
            .await;
        let update = tokio::time::timeout(STEP, transfer.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(update.state, TransferState::Running);
        assert_eq!(update.loaded, loaded);
        assert_eq!(update.total, Some(1000));
    }
    let end = value(&format!(
        "{{:transfer-id \"{tid}\" :url \"{url}\" :handler :demo/show :status :success \
         :duration-ms 12 :bytes-transferred 1000 :sha256 \"{}\"}}",
        blob.sha256
    ));
    device.end(id, Status::OK, Payload::Value(&end)).await;
    let done = finished(transfer).await;
    assert_eq!(done.state, TransferState::Completed);
    assert_eq!(done.loaded, 1000);
    assert!(done.ended_ms.is_some());

    // The live feed saw every update: sent, two progress steps, the end.
    let mut states = Vec::new();
    while let Ok(r) = live.try_recv() {
        states.push((r.state, r.loaded));
    }
    assert_eq!(
        states,
        vec![
            (TransferState::Sent, 0),
            (TransferState::Running, 400),
            (TransferState::Running, 1000),
            (TransferState::Completed, 1000),
        ]
    );
    // So did the channel's subscriber, as JSON records.
    let mut seen = Vec::new();
    while seen.len() < 4 {
        if let Got::ChannelMsg {
            channel, payload, ..
        } = watcher.next().await
        {
            assert_eq!(channel, TRANSFERS_CHANNEL);
            let json = payload_to_json(&payload).unwrap();
            seen.push(json["state"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(seen, ["sent", "running", "running", "completed"]);
    // So did the HTTP tail, as JSON lines.
    let lines = tokio::time::timeout(STEP, tail).await.unwrap().unwrap();
    let states: Vec<String> = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["state"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(states, ["sent", "running", "running", "completed"]);
    // And the record is in the SQLite file, readable by a second connection.
    let stored = TransferStore::open(&rig.dir.0)
        .unwrap()
        .get(&tid)
        .unwrap()
        .unwrap();
    assert_eq!(stored, done);
    assert_eq!(stored.client, "dev-1");
    assert_eq!(stored.handler.as_deref(), Some("demo/show"));
    assert_eq!(stored.kind, "fetch-and-process");
    rig.server.shutdown().await;
}

#[tokio::test]
async fn failures_and_refusals_end_the_record_with_the_clients_reason() {
    let rig = rig().await;
    let blob = rig.blobs.store().add_reader(&b"payload"[..]).unwrap();
    let mut device = TestClient::open(rig.server.local_addr(), "dev-2").await;
    let push = |handler: &str| PushRequest::stored(handler, blob.sha256.clone());

    let transfer = rig
        .blobs
        .push(&handle(&rig), "dev-2", push("demo/show"))
        .await
        .unwrap();
    let (id, _, _) = directive(&mut device).await;
    let error = value(&format!(
        "{{:transfer-id \"{}\" :error \"404 from every source\" :retry-count 3 \
         :status-code 404 :state :failed :offset 0}}",
        transfer.id()
    ));
    device.end(id, Status::ERROR, Payload::Value(&error)).await;
    let failed = finished(transfer).await;
    assert_eq!(failed.state, TransferState::Failed);
    assert_eq!(failed.error.as_deref(), Some("404 from every source"));
    assert_eq!(failed.retry_count, 3);
    assert_eq!(failed.status_code, Some(404));

    let transfer = rig
        .blobs
        .push(&handle(&rig), "dev-2", push("demo/show"))
        .await
        .unwrap();
    let (id, _, _) = directive(&mut device).await;
    let later = value(
        "{:error \"mirrors down\" :retry-count 5 :status-code nil :state :rescheduled :after-ms 30000}",
    );
    device.end(id, Status::ERROR, Payload::Value(&later)).await;
    let rescheduled = finished(transfer).await;
    assert_eq!(rescheduled.state, TransferState::Rescheduled);
    assert_eq!(rescheduled.after_ms, Some(30_000));
    assert_eq!(rescheduled.status_code, None);

    let transfer = rig
        .blobs
        .push(&handle(&rig), "dev-2", push("no/such"))
        .await
        .unwrap();
    let (id, _, _) = directive(&mut device).await;
    let unknown = value("{:error \"unknown handler :no/such\"}");
    device
        .end(id, Status::UNSUPPORTED, Payload::Value(&unknown))
        .await;
    let refused = finished(transfer).await;
    assert_eq!(refused.state, TransferState::Refused);
    assert_eq!(refused.error.as_deref(), Some("unknown handler :no/such"));

    // A completion that reports another hash than the one asked for is a failure.
    let transfer = rig
        .blobs
        .push(&handle(&rig), "dev-2", push("demo/show"))
        .await
        .unwrap();
    let (id, _, _) = directive(&mut device).await;
    let wrong = value(&format!(
        "{{:status :success :sha256 \"{}\"}}",
        "ab".repeat(32)
    ));
    device.end(id, Status::OK, Payload::Value(&wrong)).await;
    assert_eq!(finished(transfer).await.state, TransferState::Failed);
    // Also when the other hash comes as a byte string.
    let transfer = rig
        .blobs
        .push(&handle(&rig), "dev-2", push("demo/show"))
        .await
        .unwrap();
    let (id, _, _) = directive(&mut device).await;
    let wrong = value(&format!(
        "{{:status :success :sha256 #sentelite/bytes \"{}\"}}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [0xab; 32])
    ));
    device.end(id, Status::OK, Payload::Value(&wrong)).await;
    let failed = finished(transfer).await;
    assert_eq!(failed.state, TransferState::Failed);
    assert!(failed.error.unwrap().contains(&"ab".repeat(32)));

    let unknown_client = rig
        .blobs
        .push(&handle(&rig), "nobody", push("demo/show"))
        .await;
    assert!(
        matches!(unknown_client, Err(PushError::UnknownClient(_))),
        "{unknown_client:?}"
    );
    let mut many = push("demo/show");
    many.mirrors = vec!["http://m/1".into(); 4];
    let too_many = rig.blobs.push(&handle(&rig), "dev-2", many).await;
    assert!(
        matches!(too_many, Err(PushError::TooManyMirrors(4))),
        "{too_many:?}"
    );
    let bad_handler = rig
        .blobs
        .push(&handle(&rig), "dev-2", push("not a keyword"))
        .await;
    assert!(
        matches!(bad_handler, Err(PushError::BadHandler(_))),
        "{bad_handler:?}"
    );

    let listed = TransferStore::open(&rig.dir.0)
        .unwrap()
        .list(Some("dev-2"), 0)
        .unwrap();
    let states: Vec<_> = listed.iter().map(|r| r.state).collect();
    assert_eq!(
        states,
        [
            TransferState::Failed,
            TransferState::Rescheduled,
            TransferState::Refused,
            TransferState::Failed,
            TransferState::Failed
        ]
    );
    rig.server.shutdown().await;
}

#[tokio::test]
async fn sente_lite_report_events_update_the_same_record() {
    let rig = rig().await;
    let blob = rig.blobs.store().add_reader(&[1u8; 500][..]).unwrap();
    let mut device = TestClient::open(rig.server.local_addr(), "lite-1").await;
    let mut transfer = rig
        .blobs
        .push(
            &handle(&rig),
            "lite-1",
            PushRequest::stored("demo/show", blob.sha256.clone()),
        )
        .await
        .unwrap();
    let tid = transfer.id();
    let (_id, _, payload) = directive(&mut device).await;
    let url = payload_to_json(&payload).unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();

    // Progress keyed by the URL only, as JSON text.
    let progress = format!(r#"{{"url":"{url}","loaded":250,"total":500,"percent":50}}"#);
    device
        .send_event("blob/progress", Payload::Json(&progress))
        .await;
    let update = tokio::time::timeout(STEP, transfer.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((update.state, update.loaded), (TransferState::Running, 250));

    // The hash as a 32-byte byte string, which section 14 allows.
    let complete = value(&format!(
        "{{:transfer-id \"{tid}\" :status :success :duration-ms 5 :bytes-transferred 500 \
         :sha256 #sentelite/bytes \"{}\"}}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            blob.sha256.digest()
        )
    ));
    device
        .send_event("blob/complete", Payload::Value(&complete))
        .await;
    let done = finished(transfer).await;
    assert_eq!(done.state, TransferState::Completed);
    assert_eq!(done.loaded, 500);

    // A report about a transfer the server never sent still gets a record.
    let error = value(
        "{:transfer-id \"own-1\" :url \"http://x/y\" :error \"disk full\" :retry-count 0 :state :failed}",
    );
    device
        .send_event("blob/error", Payload::Value(&error))
        .await;
    let mut found = None;
    for _ in 0..100 {
        found = rig.blobs.read(|s| s.get("own-1").unwrap());
        if found.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let own = found.expect("recorded");
    assert_eq!(own.client, "lite-1");
    assert_eq!(own.state, TransferState::Failed);
    assert_eq!(own.error.as_deref(), Some("disk full"));
    rig.server.shutdown().await;
}

#[tokio::test]
async fn upload_directive_round_trips_into_the_store() {
    let rig = rig().await;
    let mut device = TestClient::open(rig.server.local_addr(), "dev-up").await;
    let transfer = rig
        .blobs
        .push_upload(&handle(&rig), "dev-up", "diag/core-dump")
        .await
        .unwrap();
    let (id, event, payload) = directive(&mut device).await;
    assert_eq!(event, "blob/upload");
    let edn = payload_to_edn(&payload).unwrap();
    assert!(edn.contains(":source :diag/core-dump"), "{edn}");
    let base = format!("http://{}/blobs", rig.server.local_addr());
    assert!(edn.contains(&format!(":url \"{base}\"")), "{edn}");
    let PayloadBuf::Value(bytes) = &payload else {
        unreachable!()
    };
    let decoded = UploadDirective::decode(bytes).expect("the core decodes it");
    assert_eq!(
        (decoded.url, decoded.source),
        (base.as_str(), "diag/core-dump")
    );

    // The device uploads as the contract says, then ends OK with the hash.
    let data = vec![42u8; 3000];
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&data));
    let url = format!("{base}/{sha}");
    let status = tokio::task::spawn_blocking(move || {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .new_agent();
        agent
            .put(&url)
            .header("Content-Range", "bytes 0-2999/3000")
            .send(&data[..])
            .unwrap()
            .status()
            .as_u16()
    })
    .await
    .unwrap();
    assert_eq!(status, 201);
    let end = value(&format!(
        "{{:transfer-id \"{}\" :sha256 \"{sha}\" :bytes 3000}}",
        transfer.id()
    ));
    device.end(id, Status::OK, Payload::Value(&end)).await;
    let done = finished(transfer).await;
    assert_eq!(done.state, TransferState::Completed);
    assert_eq!(done.kind, "upload");
    assert_eq!(done.sha256.as_deref(), Some(sha.as_str()));
    assert_eq!(done.loaded, 3000);
    let id = sentelite_host::blob::BlobId::parse(&sha).unwrap();
    assert_eq!(rig.blobs.store().get(&id).map(|b| b.size), Some(3000));
    rig.server.shutdown().await;
}

#[tokio::test]
async fn a_closed_connection_fails_the_transfer() {
    let rig = rig().await;
    let blob = rig.blobs.store().add_reader(&b"x"[..]).unwrap();
    let mut device = TestClient::open(rig.server.local_addr(), "dev-gone").await;
    let transfer = rig
        .blobs
        .push(
            &handle(&rig),
            "dev-gone",
            PushRequest::stored("demo/show", blob.sha256),
        )
        .await
        .unwrap();
    let _ = directive(&mut device).await;
    drop(device);
    let done = finished(transfer).await;
    assert_eq!(done.state, TransferState::Failed);
    assert!(done.error.unwrap().contains("closed"));
    rig.server.shutdown().await;
}

#[tokio::test]
async fn cancel_sends_a_cancel_and_ends_the_record_cancelled() {
    let rig = rig().await;
    let blob = rig.blobs.store().add_reader(&b"to cancel"[..]).unwrap();
    let mut device = TestClient::open(rig.server.local_addr(), "dev-c").await;
    let transfer = rig
        .blobs
        .push(
            &handle(&rig),
            "dev-c",
            PushRequest::stored("demo/show", blob.sha256),
        )
        .await
        .unwrap();
    let (id, _, _) = directive(&mut device).await;
    transfer.cancel();
    let mut told = false;
    for _ in 0..16 {
        if let Got::Cancel { id: cancelled } = device.next().await {
            assert_eq!(cancelled, id);
            told = true;
            break;
        }
    }
    assert!(told, "the client is sent a Cancel");
    let done = finished(transfer).await;
    assert_eq!(done.state, TransferState::Cancelled);
    rig.server.shutdown().await;
}
