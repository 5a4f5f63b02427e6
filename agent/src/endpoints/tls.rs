//! TLS on the status listener, so a scraper's bearer token never crosses the network in the
//! clear (docs/design/status-auth.md, "TLS"). The certificate is either files
//! (`--status-tls-cert-file`, `--status-tls-key-file`, PEM; read again whenever either file
//! changes, so cert-manager's renewals need no restart) or one made in memory at start
//! (`--status-tls-self-signed`, what controller-runtime's secure metrics serving does without a
//! certificate directory).
//!
//! A listener with TLS tells a connection's kind from its first byte (a TLS record starts with
//! 0x16, an HTTP request with a letter): TLS from anywhere; plain HTTP from loopback only, so
//! `hearth status` on the node and probes through 127.0.0.1 keep working, and a plain request
//! from elsewhere gets `400` with what to use instead.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// A failure to set up the status listener's TLS.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read or parsed.
    #[error("{path}: {what}")]
    File {
        /// The file.
        path: String,
        /// What was wrong.
        what: String,
    },
    /// The key does not fit the certificate, or rustls refused the configuration.
    #[error("status TLS: {0}")]
    Config(String),
}

/// Where the status listener's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// PEM files, read again when they change.
    Files {
        /// The certificate chain.
        cert: PathBuf,
        /// The private key.
        key: PathBuf,
    },
    /// A certificate made at start for these names (DNS names or IP addresses).
    SelfSigned(Vec<String>),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certified(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<CertifiedKey, TlsError> {
    CertifiedKey::from_der(chain, key, &provider()).map_err(|e| TlsError::Config(e.to_string()))
}

fn read_files(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let file_error = |path: &Path, what: String| TlsError::File {
        path: path.display().to_string(),
        what,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_error(cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(file_error(cert, "no PEM certificate in it".into()));
    }
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(key, e.to_string()))?;
    certified(chain, der)
}

/// A certificate for `names`, signed by its own key.
fn self_signed(names: &[String]) -> Result<CertifiedKey, TlsError> {
    let made = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| TlsError::Config(format!("making a self-signed certificate: {e}")))?;
    let key = PrivateKeyDer::try_from(made.signing_key.serialize_der())
        .map_err(|e| TlsError::Config(e.to_owned()))?;
    certified(vec![made.cert.der().clone()], key)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The certificate of the files, read again when either file's modification time changes; on
/// a failed reload the last good one stays (and the failure is logged).
#[derive(Debug)]
struct Reloading {
    cert: PathBuf,
    key: PathBuf,
    current: Mutex<(Option<SystemTime>, Option<SystemTime>, Arc<CertifiedKey>)>,
}

impl Reloading {
    fn new(cert: PathBuf, key: PathBuf) -> Result<Self, TlsError> {
        let stamps = (modified(&cert), modified(&key));
        let first = Arc::new(read_files(&cert, &key)?);
        Ok(Reloading {
            cert,
            key,
            current: Mutex::new((stamps.0, stamps.1, first)),
        })
    }

    fn get(&self) -> Arc<CertifiedKey> {
        let stamps = (modified(&self.cert), modified(&self.key));
        let mut cur = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if (cur.0, cur.1) != stamps {
            match read_files(&self.cert, &self.key) {
                Ok(new) => {
                    tracing::info!(cert = %self.cert.display(), "status TLS: certificate reloaded");
                    *cur = (stamps.0, stamps.1, Arc::new(new));
                }
                // Half-written files are common during a renewal: keep serving the old one
                // and try again on the next handshake.
                Err(e) => tracing::warn!("status TLS: keeping the previous certificate: {e}"),
            }
        }
        Arc::clone(&cur.2)
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

/// The status listener's TLS.
#[derive(Clone)]
pub struct StatusTls {
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for StatusTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatusTls")
    }
}

impl StatusTls {
    /// Reads or makes the certificate (failing fast on a bad file).
    pub fn new(source: &TlsSource) -> Result<Self, TlsError> {
        let resolver: Arc<dyn ResolvesServerCert> = match source {
            TlsSource::Files { cert, key } => Arc::new(Reloading::new(cert.clone(), key.clone())?),
            TlsSource::SelfSigned(names) => {
                Arc::new(rustls::sign::SingleCertAndKey::from(self_signed(names)?))
            }
        };
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(StatusTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// The acceptor for one connection.
    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }
}

/// What a connection to a TLS status listener is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A TLS handshake.
    Tls,
    /// Plain HTTP from loopback.
    PlainLoopback,
    /// Plain HTTP from elsewhere: refused.
    PlainRemote,
}

/// Tells a connection's kind from its first byte and its peer (pure).
pub fn classify(first: u8, peer: std::net::IpAddr) -> Kind {
    match (first == TLS_HANDSHAKE, peer.is_loopback()) {
        (true, _) => Kind::Tls,
        (false, true) => Kind::PlainLoopback,
        (false, false) => Kind::PlainRemote,
    }
}

/// Waits for the connection's first byte (without taking it); `None` when it closed first.
pub async fn first_byte(stream: &TcpStream) -> Option<u8> {
    let mut b = [0u8; 1];
    match stream.peek(&mut b).await {
        Ok(1) => Some(b[0]),
        _ => None,
    }
}

/// The answer to plain HTTP sent from beyond loopback to a TLS listener.
pub const USE_HTTPS: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\
Connection: close\r\nContent-Length: 57\r\n\r\nthis endpoint serves HTTPS beyond loopback: use https://\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_from_anywhere_plain_only_from_loopback() {
        let lo: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let lo6: std::net::IpAddr = "::1".parse().unwrap();
        let far: std::net::IpAddr = "10.0.0.7".parse().unwrap();
        assert_eq!(classify(0x16, far), Kind::Tls);
        assert_eq!(classify(0x16, lo), Kind::Tls);
        assert_eq!(classify(b'G', lo), Kind::PlainLoopback);
        assert_eq!(classify(b'G', lo6), Kind::PlainLoopback);
        assert_eq!(classify(b'G', far), Kind::PlainRemote);
    }

    #[test]
    fn the_refusal_is_a_whole_http_answer() {
        let text = std::str::from_utf8(USE_HTTPS).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), len);
    }

    #[test]
    fn files_are_read_again_when_they_change_and_a_bad_one_keeps_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        let write = |name: &str| {
            let made = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
            std::fs::write(&cert, made.cert.pem()).unwrap();
            std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
            made.cert.der().clone()
        };
        let first = write("a.example");
        let r = Reloading::new(cert.clone(), key.clone()).unwrap();
        assert_eq!(r.get().cert[0], first);
        // mtimes have a coarse grain on some filesystems: move them on explicitly.
        let later = |p: &Path, secs| {
            let f = std::fs::File::options().write(true).open(p).unwrap();
            f.set_modified(SystemTime::now() + std::time::Duration::from_secs(secs))
                .unwrap();
        };
        let second = write("b.example");
        later(&cert, 5);
        later(&key, 5);
        assert_eq!(r.get().cert[0], second);
        std::fs::write(&key, "not a key").unwrap();
        later(&key, 10);
        assert_eq!(
            r.get().cert[0],
            second,
            "a bad renewal keeps the last good one"
        );
    }

    #[test]
    fn bad_files_fail_fast_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("tls.crt");
        std::fs::write(&cert, "nothing").unwrap();
        let err = StatusTls::new(&TlsSource::Files {
            cert: cert.clone(),
            key: dir.path().join("missing.key"),
        })
        .unwrap_err();
        assert!(err.to_string().contains("tls.crt"), "{err}");
        assert!(StatusTls::new(&TlsSource::SelfSigned(vec!["node-a".into()])).is_ok());
    }
}
