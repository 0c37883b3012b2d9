//! Blob transfers on the client: HTTP fetches driven by the core's fetch machine, sinks that
//! hold what was fetched, and the routing of the server's directives to them.

pub mod fetcher;
pub mod file_sink;
pub mod http;
pub mod memory_sink;

pub use file_sink::FileSink;
pub use memory_sink::{MemorySink, MemoryStore};
pub mod handlers;
pub mod serve;
mod upload;

pub use handlers::{BlobHandlers, UploadSource};
pub use serve::{is_blob_directive, serve_directive};
