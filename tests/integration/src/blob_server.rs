//! The host's own blob HTTP route (`GET`/`HEAD`/`PUT /blobs/<sha256>` of `BlobService`) on a
//! loopback port, for the blob tests: each test server is a `sentelite_host::Server` over its
//! own data directory, so a test can hold a good copy in one and a corrupt one in another.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use sentelite_host::Server;
use sentelite_host::blob::{BlobService, BlobSettings};
use sha2::{Digest, Sha256};

/// A running server; it stops when dropped.
pub struct BlobServer {
    /// Where it listens.
    pub addr: SocketAddr,
    _server: Server,
}

impl BlobServer {
    /// `http://addr/blobs`.
    pub fn base_url(&self) -> String {
        format!("http://{}/blobs", self.addr)
    }

    /// `http://addr/blobs/<sha256>`.
    pub fn url(&self, sha256: &str) -> String {
        format!("{}/{sha256}", self.base_url())
    }
}

/// Serves the blob store of the data directory `root` on a loopback port, in the current
/// tokio runtime. Uploads land in the same store.
pub async fn start(root: &Path) -> BlobServer {
    let blobs = BlobService::start(root, &BlobSettings::default()).expect("open the blob store");
    let server = Server::builder()
        .listen("127.0.0.1:0")
        .data_dir(root)
        .with_blobs(blobs)
        .bind()
        .await
        .expect("blob server binds");
    BlobServer {
        addr: server.local_addr(),
        _server: server,
    }
}

/// `root/blobs`, created if missing: where the store of the data directory `root` keeps its
/// blobs, each file named by its SHA-256.
pub fn blob_dir(root: &Path) -> PathBuf {
    let dir = root.join("blobs");
    std::fs::create_dir_all(&dir).expect("create blob dir");
    dir
}

/// Writes `data` into the store of `root` under its SHA-256 and returns the hex hash.
pub fn store(root: &Path, data: &[u8]) -> String {
    let sha = hex::encode(Sha256::digest(data));
    std::fs::write(blob_dir(root).join(&sha), data).expect("write blob");
    sha
}
