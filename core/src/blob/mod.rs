//! Blob fetch directives: the server tells a client to fetch a blob over HTTP (or to upload
//! one); the channel carries only the directive and the reports, HTTP moves the bytes.
//!
//! | module | job |
//! |---|---|
//! | [`directive`] | the directives' wire form: borrowed decode, encode |
//! | [`report`] | progress, completion, failure and refusal maps |
//! | [`hex`] | SHA-256 digests as the hex the wire and URLs use |

pub mod directive;
pub mod hex;
pub mod report;
