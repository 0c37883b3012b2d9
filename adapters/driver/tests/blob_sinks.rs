//! File and memory sinks: nothing is visible under a blob's name before a verified commit,
//! `durable` only counts what survives a crash, and aborts leave nothing behind.

use sentelite_core::blob::{BlobSink, SinkError};
use sentelite_driver::blob::{FileSink, MemoryStore};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sentelite-sink-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

const SHA: [u8; 32] = [0xab; 32];

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn file_sink_commits_by_rename_under_the_hash() {
    let dir = temp_dir("commit");
    let hex = "ab".repeat(32);
    let mut sink = FileSink::new(&dir, &SHA);
    assert!(!sink.contains(&SHA));
    sink.begin(6).unwrap();
    sink.write_at(0, b"abc").unwrap();
    sink.write_at(3, b"def").unwrap();
    assert_eq!(
        names(&dir),
        vec![format!("{hex}.part")],
        "only the part file exists"
    );
    assert_eq!(sink.durable(), 0, "nothing synced before the commit");
    sink.commit(&SHA).unwrap();
    assert_eq!(names(&dir), vec![hex.clone()]);
    assert_eq!(std::fs::read(dir.join(&hex)).unwrap(), b"abcdef");
    assert!(FileSink::new(&dir, &SHA).contains(&SHA));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn file_sink_resumes_rewrites_and_refuses_gaps_and_short_commits() {
    let dir = temp_dir("rewrite");
    let mut sink = FileSink::new(&dir, &SHA);
    sink.begin(4).unwrap();
    sink.write_at(0, b"xxx").unwrap();
    // A resume from an earlier offset overwrites.
    sink.write_at(1, b"bcd").unwrap();
    assert_eq!(
        sink.write_at(9, b"z"),
        Err(SinkError::Refused),
        "a gap is refused"
    );
    assert_eq!(
        sink.write_at(3, b"zz"),
        Err(SinkError::TooLarge),
        "past the size"
    );
    sink.write_at(0, b"a").unwrap();
    assert_eq!(
        sink.commit(&SHA),
        Err(SinkError::Refused),
        "only 1 of 4 bytes current"
    );
    sink.write_at(1, b"bcd").unwrap();
    sink.commit(&SHA).unwrap();
    assert_eq!(std::fs::read(dir.join("ab".repeat(32))).unwrap(), b"abcd");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn file_sink_durable_follows_syncs_and_abort_or_drop_leaves_nothing() {
    let dir = temp_dir("durable");
    let mut sink = FileSink::new(&dir, &SHA).sync_every(4);
    sink.begin(10).unwrap();
    sink.write_at(0, b"abc").unwrap();
    assert_eq!(sink.durable(), 0);
    sink.write_at(3, b"def").unwrap();
    assert_eq!(
        sink.durable(),
        6,
        "synced once 4 or more bytes were pending"
    );
    sink.write_at(2, b"C").unwrap();
    assert_eq!(
        sink.durable(),
        2,
        "a rewrite makes what follows it undurable"
    );
    sink.abort();
    assert!(names(&dir).is_empty(), "abort removes the part file");
    sink.begin(3).unwrap();
    sink.write_at(0, b"ab").unwrap();
    drop(sink);
    assert!(
        names(&dir).is_empty(),
        "an uncommitted sink leaves nothing when dropped"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn memory_sink_publishes_only_on_commit() {
    let store = MemoryStore::new();
    let mut sink = store.sink();
    sink.begin(3).unwrap();
    sink.write_at(0, b"ab").unwrap();
    assert_eq!(sink.durable(), 0, "memory survives no crash");
    assert_eq!(sink.commit(&SHA), Err(SinkError::Refused), "short");
    sink.write_at(2, b"c").unwrap();
    assert!(store.get(&SHA).is_none(), "nothing visible before commit");
    sink.commit(&SHA).unwrap();
    assert_eq!(store.get(&SHA).as_deref(), Some(&b"abc"[..]));
    assert!(store.sink().contains(&SHA));

    let mut other = store.sink();
    other.begin(2).unwrap();
    other.write_at(0, b"zz").unwrap();
    other.abort();
    assert_eq!(
        other.commit(&[1; 32]),
        Err(SinkError::Refused),
        "aborted bytes are gone"
    );
    assert_eq!(store.len(), 1);

    let small = MemoryStore::new().max_blob(2);
    assert_eq!(small.sink().begin(3), Err(SinkError::TooLarge));
}
