//! TLS for `wss://`: rustls (ring provider) over the `futures-io` stream the runtime hands
//! over, so tokio and smol share this one implementation.
//!
//! The peer is always verified: its chain must end in a trusted root — the Mozilla roots of
//! `webpki-roots` or one of [`crate::ClientOptions::extra_root_certs`] — and the certificate
//! must name the URL's host. There is deliberately no way to turn verification off: a
//! self-signed server is trusted by adding its certificate as a root.

use std::io;
use std::sync::Arc;

use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_rustls::TlsConnector;
use futures_rustls::client::TlsStream;
use futures_rustls::pki_types::{CertificateDer, ServerName};
use futures_rustls::rustls::{self, RootCertStore};

use crate::ClientError;

/// Everything one client needs for its TLS handshakes; built once when the client starts
/// and reused for every reconnect.
#[derive(Clone)]
pub(crate) struct Tls {
    connector: TlsConnector,
    /// The URL's host, checked against the server's certificate (and sent as SNI when it
    /// is a name rather than an IP address).
    server_name: ServerName<'static>,
}

impl Tls {
    /// Builds the client config for `host`, trusting the built-in roots plus `extra_roots`
    /// (DER certificates). Fails on a host no certificate can name or a root that does not
    /// parse, so these show up when the client starts instead of on every connect.
    pub(crate) fn new(host: &str, extra_roots: &[Vec<u8>]) -> Result<Self, ClientError> {
        let server_name = ServerName::try_from(host.to_owned())
            .map_err(|_| ClientError::InvalidUrl("host is not a valid TLS server name".into()))?;
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for der in extra_roots {
            roots
                .add(CertificateDer::from(der.as_slice()))
                .map_err(|_| {
                    ClientError::InvalidOptions(
                        "extra_root_certs holds an entry that is not a DER X.509 certificate",
                    )
                })?;
        }
        // An explicit provider: the process-wide default would be ambiguous (and panic) if
        // another crate in the program enabled a second one.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|_| ClientError::InvalidOptions("TLS provider offers no safe protocol"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }

    /// Runs the TLS handshake over a connected stream.
    pub(crate) async fn handshake<S>(&self, stream: S) -> io::Result<TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.connector
            .connect(self.server_name.clone(), stream)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ip_literals_are_server_names() {
        let tls = Tls::new("device-hub.example", &[]).unwrap();
        assert!(matches!(tls.server_name, ServerName::DnsName(_)));
        let tls = Tls::new("127.0.0.1", &[]).unwrap();
        assert!(matches!(tls.server_name, ServerName::IpAddress(_)));
        let tls = Tls::new("::1", &[]).unwrap();
        assert!(matches!(tls.server_name, ServerName::IpAddress(_)));
    }

    #[test]
    fn accepts_a_der_certificate_as_extra_root() {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        assert!(Tls::new("127.0.0.1", &[made.cert.der().to_vec()]).is_ok());
    }

    #[test]
    fn refuses_extra_roots_that_are_not_certificates() {
        assert!(matches!(
            Tls::new("127.0.0.1", &[b"not a certificate".to_vec()]),
            Err(ClientError::InvalidOptions(_))
        ));
        assert!(matches!(
            Tls::new("127.0.0.1", &[Vec::new()]),
            Err(ClientError::InvalidOptions(_))
        ));
    }
}
