//! A blob directive to a sente-lite client: it arrives as a plain event, the client reports
//! with `blob/progress` and `blob/complete` events, and the later end of the directive's
//! request (its deadline, or here the close) does not overwrite the completion.

mod support;

use sentelite_host::blob::{BlobSettings, PushRequest, TransferState};
use support::text::{TextPeer, edn};
use support::{STEP, start_with_blobs};

#[tokio::test]
async fn a_sente_lite_client_completes_a_pushed_transfer_with_events() {
    let (server, blobs, _dir) = start_with_blobs("dialect-blob", BlobSettings::default()).await;
    let blob = blobs.store().add_reader(&[7u8; 1000][..]).unwrap();
    let mut peer = TextPeer::connect(server.local_addr(), "?dialect=sente-lite").await;
    let uid = edn(&peer.text().await)[1][0].as_str().unwrap().to_owned();
    let mut live = blobs.subscribe();

    let mut transfer = blobs
        .push(
            &server.handle(),
            &uid,
            PushRequest::stored("demo/show", blob.sha256.clone()),
        )
        .await
        .unwrap();
    let tid = transfer.id();
    let directive = edn(&peer.text().await);
    assert_eq!(directive[0], "blob/fetch-and-process", "{directive}");
    assert_eq!(directive[1]["transfer-id"], tid.as_str(), "{directive}");
    assert_eq!(directive[1]["handler"], "demo/show", "{directive}");

    peer.send(&format!(
        "[:blob/progress {{:transfer-id \"{tid}\" :loaded 400 :total 1000}}]"
    ))
    .await;
    let running = tokio::time::timeout(STEP, transfer.next()).await.unwrap();
    assert_eq!(running.map(|r| r.state), Some(TransferState::Running));
    peer.send(&format!(
        "[:blob/complete {{:transfer-id \"{tid}\" :bytes-transferred 1000}}]"
    ))
    .await;
    let done = tokio::time::timeout(STEP, transfer.finish()).await.unwrap();
    assert_eq!(done.state, TransferState::Completed, "{done:?}");

    // The close ends the directive's request; the record keeps its completion.
    peer.close().await;
    let after_close = tokio::time::timeout(STEP, async {
        let mut seen_completed = false;
        loop {
            let record = live.recv().await.expect("live feed");
            if record.transfer_id != tid {
                continue;
            }
            if seen_completed {
                return record;
            }
            seen_completed = record.state == TransferState::Completed;
        }
    })
    .await
    .expect("the request's end is applied after the close");
    assert_eq!(
        after_close.state,
        TransferState::Completed,
        "{after_close:?}"
    );
    let stored = blobs.read(|s| s.get(&tid)).unwrap().unwrap();
    assert_eq!(stored.state, TransferState::Completed, "{stored:?}");
    server.shutdown().await;
}
