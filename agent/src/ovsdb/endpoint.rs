//! Where an OVSDB server listens (`unix:PATH`, `tcp:HOST:PORT`) and opening a stream to it.

use std::path::PathBuf;

use tokio::io::{AsyncRead, AsyncWrite};

use super::OvsdbError;

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `unix:PATH`.
    Unix(PathBuf),
    /// `tcp:HOST:PORT`.
    Tcp(String),
}

impl Endpoint {
    /// Parses `unix:PATH` or `tcp:HOST:PORT` (OVS's notation).
    pub fn parse(s: &str) -> Result<Self, OvsdbError> {
        match s.split_once(':') {
            Some(("unix", p)) if !p.is_empty() => Ok(Self::Unix(p.into())),
            Some(("tcp", a)) if a.contains(':') => Ok(Self::Tcp(a.to_owned())),
            _ => Err(OvsdbError::Endpoint(s.to_owned())),
        }
    }

    pub(crate) async fn open(&self) -> Result<(Reader, Writer), OvsdbError> {
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
        })
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unix(p) => write!(f, "unix:{}", p.display()),
            Self::Tcp(a) => write!(f, "tcp:{a}"),
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
        assert!(Endpoint::parse("ssl:10.0.0.1:6642").is_err());
        assert!(Endpoint::parse("unix:").is_err());
    }
}
