//! The parts of a `ws://host[:port]/path` URL the runner needs, and of the `http://` URLs
//! blobs are fetched from. TLS (`wss://`) is refused:
//! the device build carries no TLS stack (see the crate docs).

/// A server URL taken apart, borrowing the text it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsUrl<'a> {
    /// Host name or IPv4 address.
    pub host: &'a str,
    /// TCP port (80 when the URL names none).
    pub port: u16,
    /// Request path, `/` at least.
    pub path: &'a str,
}

/// Why a server URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum UrlError {
    /// Not `ws://`; `wss://` needs TLS, which this crate does not carry.
    Scheme,
    /// No host before the port or path.
    Host,
    /// The port is not a number from 1 to 65535.
    Port,
}

impl core::fmt::Display for UrlError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            UrlError::Scheme => "only ws:// URLs are supported",
            UrlError::Host => "the URL names no host",
            UrlError::Port => "the URL's port is not a valid port",
        })
    }
}

impl<'a> WsUrl<'a> {
    /// Parses `ws://host[:port][/path]`.
    pub fn parse(url: &'a str) -> Result<Self, UrlError> {
        let rest = url.strip_prefix("ws://").ok_or(UrlError::Scheme)?;
        let parts = Parts::split(rest)?;
        Ok(Self {
            host: parts.host,
            port: parts.port,
            path: parts.path,
        })
    }
}

/// A blob source URL, `http://host[:port][/path]`, taken apart for one request.
#[cfg(feature = "blob")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HttpUrl<'a> {
    /// `host[:port]` as written, for the `Host` header.
    pub authority: &'a str,
    /// Host name or IPv4 address.
    pub host: &'a str,
    /// TCP port (80 when the URL names none).
    pub port: u16,
    /// Request path, `/` at least.
    pub path: &'a str,
}

#[cfg(feature = "blob")]
impl<'a> HttpUrl<'a> {
    /// Parses `http://host[:port][/path]`; `https://` is refused like `wss://`.
    pub(crate) fn parse(url: &'a str) -> Result<Self, UrlError> {
        let rest = url.strip_prefix("http://").ok_or(UrlError::Scheme)?;
        let parts = Parts::split(rest)?;
        Ok(Self {
            authority: parts.authority,
            host: parts.host,
            port: parts.port,
            path: parts.path,
        })
    }
}

/// What follows the scheme of either URL, taken apart.
struct Parts<'a> {
    #[cfg(feature = "blob")]
    authority: &'a str,
    host: &'a str,
    port: u16,
    path: &'a str,
}

impl<'a> Parts<'a> {
    fn split(rest: &'a str) -> Result<Self, UrlError> {
        // `split_at_checked`, not `&rest[..i]`: `i` is a char boundary, but indexing
        // would still link the str-slicing panic and its formatting into the firmware.
        // Bytes, not chars: '/' and ':' are ASCII, so their positions are char boundaries,
        // and a byte search needs no UTF-8 pattern matcher.
        let slash = rest.bytes().position(|b| b == b'/');
        let (authority, path) = match slash.and_then(|i| rest.split_at_checked(i)) {
            Some(parts) => parts,
            None => (rest, "/"),
        };
        let colon = authority.bytes().rposition(|b| b == b':');
        let (host, port) = match colon.and_then(|i| authority.split_at_checked(i)) {
            Some((host, port)) => {
                let digits = port.get(1..).unwrap_or_default();
                (host, decimal_u16(digits).ok_or(UrlError::Port)?)
            }
            None => (authority, 80),
        };
        if host.is_empty() {
            return Err(UrlError::Host);
        }
        if port == 0 {
            return Err(UrlError::Port);
        }
        Ok(Self {
            #[cfg(feature = "blob")]
            authority,
            host,
            port,
            path,
        })
    }
}

/// `text` as `u16`'s `FromStr` reads it (decimal digits, an optional leading `+`), without
/// its generic integer parser.
fn decimal_u16(text: &str) -> Option<u16> {
    let digits = text.strip_prefix('+').unwrap_or(text);
    if digits.is_empty() {
        return None;
    }
    digits.bytes().try_fold(0u16, |n, b| {
        let digit = b.checked_sub(b'0').filter(|d| *d < 10)?;
        n.checked_mul(10)?.checked_add(u16::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_url_is_taken_apart() {
        assert_eq!(
            WsUrl::parse("ws://192.168.69.100:7700/ws"),
            Ok(WsUrl {
                host: "192.168.69.100",
                port: 7700,
                path: "/ws"
            })
        );
    }

    #[test]
    fn port_and_path_have_defaults() {
        assert_eq!(
            WsUrl::parse("ws://example.org"),
            Ok(WsUrl {
                host: "example.org",
                port: 80,
                path: "/"
            })
        );
    }

    #[test]
    fn bad_urls_are_typed_errors() {
        assert_eq!(WsUrl::parse("wss://a/ws"), Err(UrlError::Scheme));
        assert_eq!(WsUrl::parse("ws://:80/ws"), Err(UrlError::Host));
        assert_eq!(WsUrl::parse("ws://a:0/ws"), Err(UrlError::Port));
        assert_eq!(WsUrl::parse("ws://a:99999/ws"), Err(UrlError::Port));
        assert_eq!(WsUrl::parse("ws://a:/ws"), Err(UrlError::Port));
        assert_eq!(WsUrl::parse("ws://a:8x/ws"), Err(UrlError::Port));
    }

    #[test]
    fn a_port_reads_like_u16_from_str() {
        for text in [
            "0", "80", "+80", "+", "", "-1", "65535", "65536", "0080", "8 0", "٨",
        ] {
            assert_eq!(decimal_u16(text), text.parse::<u16>().ok(), "{text:?}");
        }
    }

    #[test]
    fn the_port_follows_the_last_colon_and_hosts_may_be_any_text() {
        assert_eq!(
            WsUrl::parse("ws://hôte.example:81/wß"),
            Ok(WsUrl {
                host: "hôte.example",
                port: 81,
                path: "/wß"
            })
        );
        assert_eq!(
            WsUrl::parse("ws://a:b:82"),
            Ok(WsUrl {
                host: "a:b",
                port: 82,
                path: "/"
            })
        );
    }

    #[cfg(feature = "blob")]
    #[test]
    fn a_blob_source_keeps_its_authority_for_the_host_header() {
        assert_eq!(
            HttpUrl::parse("http://10.0.0.1:8080/blobs/ab?x=1"),
            Ok(HttpUrl {
                authority: "10.0.0.1:8080",
                host: "10.0.0.1",
                port: 8080,
                path: "/blobs/ab?x=1"
            })
        );
        assert_eq!(
            HttpUrl::parse("http://example.org"),
            Ok(HttpUrl {
                authority: "example.org",
                host: "example.org",
                port: 80,
                path: "/"
            })
        );
        assert_eq!(HttpUrl::parse("https://a/b"), Err(UrlError::Scheme));
        assert_eq!(HttpUrl::parse("http://:1/b"), Err(UrlError::Host));
        assert_eq!(HttpUrl::parse("ws://a/b"), Err(UrlError::Scheme));
    }
}
