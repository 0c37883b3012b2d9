//! Blob transfers on the client: HTTP fetches driven by the core's fetch machine, sinks that
//! hold what was fetched, and the routing of the server's directives to them.

pub mod http;
