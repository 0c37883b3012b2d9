//! What a client is built from.

use sentelite_core::ClientConfig;

use crate::logging::Logger;
use crate::url::{UrlError, WsUrl};

/// The runner's configuration.
pub struct Config<'a> {
    /// The server: `ws://host[:port]/path` (host name or IPv4 address).
    pub url: WsUrl<'a>,
    /// Identity, heartbeat defaults and reconnect pacing for the core session. Its
    /// `max_frame` is lowered to what the [`crate::Resources`] buffers hold.
    pub client: ClientConfig,
    /// The log queue the runner ships, if the application logs remotely.
    pub logger: Option<&'static Logger>,
}

impl<'a> Config<'a> {
    /// A configuration for `url` with `client`, shipping the logs of `logger`.
    pub fn new(
        url: &'a str,
        client: ClientConfig,
        logger: Option<&'static Logger>,
    ) -> Result<Self, UrlError> {
        Ok(Self {
            url: WsUrl::parse(url)?,
            client,
            logger,
        })
    }
}
