//! The client side of `ssl:` OVSDB connections, like OVS's `--ca-cert`, `--certificate` and
//! `--private-key`: the PEM files are read once into a rustls configuration that trusts the CA
//! file only ([`CaOnlyVerifier`]) and presents the client certificate.
//!
//! Owns reading the three files. The crypto provider is *ring*, passed explicitly, so nothing
//! here touches rustls' process-wide default provider.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::verifier::CaOnlyVerifier;
use super::OvsdbError;

/// The three PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA certificate(s) the server's chain must lead to (`--ca-cert`).
    pub ca_file: PathBuf,
    /// The client certificate chain (`--certificate`).
    pub cert_file: PathBuf,
    /// The client's private key (`--private-key`).
    pub key_file: PathBuf,
}

/// Which of the three files an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFile {
    /// [`TlsFiles::ca_file`].
    CaCert,
    /// [`TlsFiles::cert_file`].
    Certificate,
    /// [`TlsFiles::key_file`].
    PrivateKey,
}

impl std::fmt::Display for TlsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::CaCert => "CA certificate",
            Self::Certificate => "client certificate",
            Self::PrivateKey => "private key",
        })
    }
}

/// A loaded TLS client configuration; cheap to clone.
#[derive(Clone)]
pub struct Tls {
    pub(crate) config: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ovsdb::Tls") // no key material in logs
    }
}

impl Tls {
    /// Reads the three files. Errors name the file and its path.
    pub fn load(files: &TlsFiles) -> Result<Self, OvsdbError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in load_certs(&files.ca_file, TlsFile::CaCert)? {
            roots
                .add(cert)
                .map_err(|e| tls_err(TlsFile::CaCert, &files.ca_file, e.to_string()))?;
        }
        let verifier = CaOnlyVerifier::new(roots, provider.clone())
            .map_err(|e| tls_err(TlsFile::CaCert, &files.ca_file, e.to_string()))?;
        let chain = load_certs(&files.cert_file, TlsFile::Certificate)?;
        let key = PrivateKeyDer::from_pem_file(&files.key_file)
            .map_err(|e| tls_err(TlsFile::PrivateKey, &files.key_file, e.to_string()))?;
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err(TlsFile::CaCert, &files.ca_file, e.to_string()))?
            .dangerous() // the one custom part: CaOnlyVerifier, see its doc
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_client_auth_cert(chain, key)
            .map_err(|e| tls_err(TlsFile::PrivateKey, &files.key_file, e.to_string()))?;
        Ok(Self {
            config: Arc::new(config),
        })
    }
}

fn tls_err(file: TlsFile, path: &Path, reason: String) -> OvsdbError {
    OvsdbError::Tls {
        file,
        path: path.to_owned(),
        reason,
    }
}

/// Every certificate in a PEM file; an error if there is none.
fn load_certs(path: &Path, file: TlsFile) -> Result<Vec<CertificateDer<'static>>, OvsdbError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_err(file, path, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err(file, path, e.to_string()))?;
    if certs.is_empty() {
        return Err(tls_err(
            file,
            path,
            "no CERTIFICATE block in the file".into(),
        ));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    use rustls::pki_types::ServerName;
    use rustls::Error;

    use super::*;

    /// A CA, a server certificate with CN only (as ovs-pki makes them), and a client pair,
    /// written under `dir`.
    struct Pki {
        files: TlsFiles,
        server_chain: Vec<CertificateDer<'static>>,
        server_key: KeyPair,
    }

    fn pki(dir: &Path) -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "ovs CA");
        let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::new(ca, ca_key);
        let leaf = |cn: &str| {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.distinguished_name.push(DnType::CommonName, cn);
            (p.signed_by(&key, &issuer).unwrap(), key)
        };
        let (server, server_key) = leaf("4f2a0e1c-0000-4000-8000-000000000001");
        let (client, client_key) = leaf("node-a");
        let files = TlsFiles {
            ca_file: dir.join("ca.pem"),
            cert_file: dir.join("cert.pem"),
            key_file: dir.join("key.pem"),
        };
        std::fs::write(&files.ca_file, ca_pem).unwrap();
        std::fs::write(&files.cert_file, client.pem()).unwrap();
        std::fs::write(&files.key_file, client_key.serialize_pem()).unwrap();
        Pki {
            files,
            server_chain: vec![server.der().clone()],
            server_key,
        }
    }

    /// A server that presents `chain` and signs the handshake with `key`.
    fn server(chain: Vec<CertificateDer<'static>>, key: &KeyPair) -> rustls::ServerConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let signer = provider.key_provider.load_private_key(key).unwrap();
        // CertifiedKey::new does not check that the key matches the certificate: that is
        // what lets the bad-signature test lie.
        let certified = rustls::sign::CertifiedKey::new(chain, signer);
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)))
    }

    /// Runs a handshake in memory; the client's error when it fails.
    fn handshake(tls: &Tls, server: rustls::ServerConfig) -> Result<(), Error> {
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let mut c = rustls::ClientConnection::new(tls.config.clone(), name).unwrap();
        let mut s = rustls::ServerConnection::new(Arc::new(server)).unwrap();
        let mut buf = Vec::new();
        for _ in 0..10 {
            buf.clear();
            c.write_tls(&mut buf).unwrap();
            let _ = s.read_tls(&mut buf.as_slice());
            let _ = s.process_new_packets(); // the server's view is not under test
            buf.clear();
            s.write_tls(&mut buf).unwrap();
            c.read_tls(&mut buf.as_slice()).unwrap();
            c.process_new_packets()?;
            if !c.is_handshaking() {
                return Ok(());
            }
        }
        panic!("the handshake did not finish");
    }

    #[test]
    fn handshake_with_a_name_free_server_cert_of_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let p = pki(dir.path());
        let tls = Tls::load(&p.files).unwrap();
        handshake(&tls, server(p.server_chain, &p.server_key)).unwrap();
    }

    #[test]
    fn a_handshake_signed_with_another_key_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = pki(dir.path());
        let tls = Tls::load(&p.files).unwrap();
        let wrong = KeyPair::generate().unwrap();
        let e = handshake(&tls, server(p.server_chain, &wrong)).unwrap_err();
        assert_eq!(
            e,
            Error::InvalidCertificate(rustls::CertificateError::BadSignature)
        );
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = pki(dir.path());
        let with = |f: &dyn Fn(&mut TlsFiles)| {
            let mut files = p.files.clone();
            f(&mut files);
            match Tls::load(&files).unwrap_err() {
                OvsdbError::Tls { file, .. } => file,
                e => panic!("{e}"),
            }
        };
        let missing = dir.path().join("nope.pem");
        assert_eq!(with(&|f| f.ca_file = missing.clone()), TlsFile::CaCert);
        assert_eq!(
            with(&|f| f.cert_file = missing.clone()),
            TlsFile::Certificate
        );
        assert_eq!(with(&|f| f.key_file = missing.clone()), TlsFile::PrivateKey);
        // A key file that holds a certificate only.
        assert_eq!(
            with(&|f| f.key_file = f.ca_file.clone()),
            TlsFile::PrivateKey
        );
        // A key that is not the certificate's.
        let other = dir.path().join("other-key.pem");
        std::fs::write(&other, KeyPair::generate().unwrap().serialize_pem()).unwrap();
        assert_eq!(with(&|f| f.key_file = other.clone()), TlsFile::PrivateKey);
        let e = Tls::load(&TlsFiles {
            ca_file: missing.clone(),
            ..p.files.clone()
        })
        .unwrap_err();
        assert!(e.to_string().contains("nope.pem"), "{e}");
    }
}
