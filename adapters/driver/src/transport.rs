//! The byte stream under the WebSocket: the runtime's TCP stream as it is for `ws://`, or
//! wrapped in TLS for `wss://`. Both become one boxed stream type, so the driver loop and
//! async-tungstenite see a single type whatever the URL says; the box costs one allocation
//! per connection and a virtual call per read or write, nothing next to a syscall.

use std::io;

use futures_lite::io::{AsyncRead, AsyncWrite};

use crate::ClientError;
use crate::target::Target;

/// What a stream under the WebSocket must offer.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A connected stream, plain or TLS.
pub(crate) type Stream = Box<dyn Io>;

/// How a connected TCP stream is turned into the stream the WebSocket runs over.
#[derive(Clone)]
pub(crate) enum Security {
    /// `ws://`: the TCP stream as it is.
    Plain,
    /// `wss://`: a TLS handshake first.
    #[cfg(feature = "tls")]
    Tls(crate::tls::Tls),
}

impl Security {
    /// Chooses plain or TLS for `target`. Without the `tls` feature a `wss://` target is
    /// refused with [`ClientError::TlsUnsupported`]; `extra_roots` matter only for TLS.
    pub(crate) fn for_target(
        target: &Target,
        extra_roots: &[Vec<u8>],
    ) -> Result<Self, ClientError> {
        if !target.tls {
            return Ok(Self::Plain);
        }
        #[cfg(feature = "tls")]
        {
            crate::tls::Tls::new(&target.host, extra_roots).map(Self::Tls)
        }
        #[cfg(not(feature = "tls"))]
        {
            let _ = extra_roots;
            Err(ClientError::TlsUnsupported)
        }
    }

    /// Secures a freshly connected stream (a no-op for `ws://`).
    pub(crate) async fn wrap<S: Io + 'static>(&self, stream: S) -> io::Result<Stream> {
        match self {
            Self::Plain => Ok(Box::new(stream)),
            #[cfg(feature = "tls")]
            Self::Tls(tls) => Ok(Box::new(tls.handshake(stream).await?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::parse;

    #[test]
    fn ws_is_plain_and_wss_needs_the_tls_feature() {
        let plain = Security::for_target(&parse("ws://h/").unwrap(), &[]);
        assert!(matches!(plain, Ok(Security::Plain)));
        let secure = Security::for_target(&parse("wss://h/").unwrap(), &[]);
        #[cfg(feature = "tls")]
        assert!(matches!(secure, Ok(Security::Tls(_))));
        #[cfg(not(feature = "tls"))]
        assert!(matches!(secure, Err(ClientError::TlsUnsupported)));
    }

    #[test]
    fn extra_roots_are_read_only_for_wss() {
        let junk = [b"junk".to_vec()];
        let plain = Security::for_target(&parse("ws://h/").unwrap(), &junk);
        assert!(matches!(plain, Ok(Security::Plain)));
        #[cfg(feature = "tls")]
        assert!(matches!(
            Security::for_target(&parse("wss://h/").unwrap(), &junk),
            Err(ClientError::InvalidOptions(_))
        ));
    }
}
