//! Where an OVSDB server listens (`unix:PATH`, `tcp:HOST:PORT`, `ssl:HOST:PORT`) and opening
//! a stream to it.

use std::path::PathBuf;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{OvsdbError, Tls};

/// How long the TLS handshake may take (a server that does not speak TLS never answers).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `unix:PATH`.
    Unix(PathBuf),
    /// `tcp:HOST:PORT`.
    Tcp(String),
    /// `ssl:HOST:PORT` (IPv6 as `[ADDR]:PORT`).
    Ssl(String),
}

impl Endpoint {
    /// Parses `unix:PATH`, `tcp:HOST:PORT` or `ssl:HOST:PORT` (OVS's notation).
    pub fn parse(s: &str) -> Result<Self, OvsdbError> {
        match s.split_once(':') {
            Some(("unix", p)) if !p.is_empty() => Ok(Self::Unix(p.into())),
            Some(("tcp", a)) if a.contains(':') => Ok(Self::Tcp(a.to_owned())),
            Some(("ssl", a)) if server_name(a).is_some() => Ok(Self::Ssl(a.to_owned())),
            _ => Err(OvsdbError::Endpoint(s.to_owned())),
        }
    }

    /// True for `ssl:`.
    pub fn is_ssl(&self) -> bool {
        matches!(self, Self::Ssl(_))
    }

    /// Opens a stream; `tls` is used by `ssl:` (which fails without it) and ignored otherwise.
    pub(crate) async fn open(&self, tls: Option<&Tls>) -> Result<(Reader, Writer), OvsdbError> {
        let err = |source| OvsdbError::Connect {
            endpoint: self.to_string(),
            source,
        };
        Ok(match self {
            Self::Unix(p) => {
                let (r, w) = tokio::net::UnixStream::connect(p)
                    .await
                    .map_err(err)?
                    .into_split();
                (Box::new(r), Box::new(w))
            }
            Self::Tcp(a) => {
                let s = tokio::net::TcpStream::connect(a).await.map_err(err)?;
                let _ = s.set_nodelay(true);
                let (r, w) = s.into_split();
                (Box::new(r), Box::new(w))
            }
            Self::Ssl(a) => {
                let tls = tls.ok_or_else(|| OvsdbError::TlsRequired {
                    endpoint: self.to_string(),
                })?;
                let name = server_name(a).ok_or_else(|| OvsdbError::Endpoint(self.to_string()))?;
                let s = tokio::net::TcpStream::connect(a).await.map_err(err)?;
                let _ = s.set_nodelay(true);
                let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
                let handshake = |source| OvsdbError::Handshake {
                    endpoint: self.to_string(),
                    source,
                };
                let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, s))
                    .await
                    .map_err(|_| handshake(std::io::ErrorKind::TimedOut.into()))?
                    .map_err(handshake)?;
                let (r, w) = tokio::io::split(stream);
                (Box::new(r), Box::new(w))
            }
        })
    }
}

/// The name rustls is given for `HOST:PORT` (an IP address or a DNS name; the brackets of an
/// IPv6 address removed). [`super::verifier::CaOnlyVerifier`] does not match it against the
/// certificate; rustls sends it as SNI when it is a DNS name.
fn server_name(addr: &str) -> Option<ServerName<'static>> {
    let (host, port) = addr.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).ok()
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unix(p) => write!(f, "unix:{}", p.display()),
            Self::Tcp(a) => write!(f, "tcp:{a}"),
            Self::Ssl(a) => write!(f, "ssl:{a}"),
        }
    }
}

pub(crate) type Reader = Box<dyn AsyncRead + Send + Unpin>;
pub(crate) type Writer = Box<dyn AsyncWrite + Send + Unpin>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ovs_notation() {
        assert_eq!(
            Endpoint::parse("unix:/run/db.sock").unwrap(),
            Endpoint::Unix("/run/db.sock".into())
        );
        assert_eq!(
            Endpoint::parse("tcp:10.0.0.1:6642").unwrap().to_string(),
            "tcp:10.0.0.1:6642"
        );
        assert_eq!(
            Endpoint::parse("ssl:10.0.0.1:6640").unwrap(),
            Endpoint::Ssl("10.0.0.1:6640".into())
        );
        assert_eq!(
            Endpoint::parse("ssl:[fd00::1]:6640").unwrap().to_string(),
            "ssl:[fd00::1]:6640"
        );
        assert!(Endpoint::parse("ssl:ovsdb.example:6640").unwrap().is_ssl());
        assert!(Endpoint::parse("ssl:10.0.0.1").is_err());
        assert!(Endpoint::parse("ssl:10.0.0.1:port").is_err());
        assert!(Endpoint::parse("ssl::6640").is_err());
        assert!(Endpoint::parse("unix:").is_err());
        assert!(Endpoint::parse("pssl:6640").is_err());
    }

    #[tokio::test]
    async fn ssl_without_certificates_fails_before_connecting() {
        let e = Endpoint::parse("ssl:127.0.0.1:1")
            .unwrap()
            .open(None)
            .await
            .err()
            .unwrap();
        assert!(matches!(e, OvsdbError::TlsRequired { .. }), "{e}");
    }
}
