//! Where to connect: the `ws://` or `wss://` URL split into what TCP, TLS and the WebSocket
//! handshake each need.

use url::{Host, Url};

use crate::ClientError;

/// A parsed server address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// Name or IP literal for the TCP connect and the certificate check (IPv6 without
    /// brackets).
    pub host: String,
    /// TCP port (80 for `ws://` and 443 for `wss://` when the URL names none).
    pub port: u16,
    /// `wss://`: TLS under the WebSocket. Whether this build can do it is decided by
    /// [`crate::transport::Security`], not here.
    pub tls: bool,
    /// The URL sent in the WebSocket handshake (no fragment).
    pub url: String,
}

/// Parses a `ws://` or `wss://` URL.
pub(crate) fn parse(input: &str) -> Result<Target, ClientError> {
    let mut url = Url::parse(input).map_err(|e| ClientError::InvalidUrl(e.to_string()))?;
    let tls = match url.scheme() {
        "ws" => false,
        "wss" => true,
        other => return Err(ClientError::UnsupportedScheme(other.to_owned())),
    };
    let host = match url.host() {
        Some(Host::Domain(name)) if !name.is_empty() => name.to_owned(),
        Some(Host::Ipv4(ip)) => ip.to_string(),
        Some(Host::Ipv6(ip)) => ip.to_string(),
        _ => return Err(ClientError::InvalidUrl("no host".into())),
    };
    let port = url
        .port_or_known_default()
        .ok_or_else(|| ClientError::InvalidUrl("no port".into()))?;
    // Fragments are not part of an HTTP request target.
    url.set_fragment(None);
    Ok(Target {
        host,
        port,
        tls,
        url: url.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_host_port_and_keeps_path_and_query() {
        let t = parse("ws://127.0.0.1:9000/sentelite?x=1#frag").unwrap();
        assert_eq!(t.host, "127.0.0.1");
        assert_eq!(t.port, 9000);
        assert_eq!(t.url, "ws://127.0.0.1:9000/sentelite?x=1");
        assert!(!t.tls);
    }

    #[test]
    fn wss_means_tls_and_port_443() {
        let t = parse("wss://device-hub.example/ws").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.tls),
            ("device-hub.example", 443, true)
        );
        assert_eq!(t.url, "wss://device-hub.example/ws");
        let t = parse("wss://127.0.0.1:8443/").unwrap();
        assert_eq!((t.port, t.tls), (8443, true));
    }

    #[test]
    fn default_port_and_names() {
        let t = parse("ws://device-hub.local/ws").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("device-hub.local", 80));
    }

    #[test]
    fn ipv6_hosts_lose_their_brackets_for_tcp() {
        let t = parse("ws://[::1]:81/").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 81));
        assert_eq!(t.url, "ws://[::1]:81/");
    }

    #[test]
    fn refuses_other_schemes_and_garbage() {
        assert_eq!(
            parse("http://x/"),
            Err(ClientError::UnsupportedScheme("http".into()))
        );
        assert!(matches!(
            parse("not a url"),
            Err(ClientError::InvalidUrl(_))
        ));
        assert!(matches!(
            parse("ws://:80/"),
            Err(ClientError::InvalidUrl(_))
        ));
    }
}
