//! The rustls client configuration for HTTPS to the controller: trusted roots from a CA file
//! (or the platform's verifier), and the client certificate and key when given.
//!
//! Owns: reading the PEM files named in [`TlsFiles`]. The crypto provider is *ring*, passed
//! explicitly, so nothing here touches rustls' process-wide default provider.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::config::TlsFiles;
use super::error::LinstorError;

/// Builds the TLS configuration for `files`.
pub fn client_config(files: &TlsFiles) -> Result<rustls::ClientConfig, LinstorError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let general = |reason: String| LinstorError::Tls {
        what: "configuration",
        path: Default::default(),
        reason,
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| general(e.to_string()))?;
    let builder = match &files.ca_file {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in load_certs(path, "CA file")? {
                roots.add(cert).map_err(|e| LinstorError::Tls {
                    what: "CA file",
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            }
            builder.with_root_certificates(roots)
        }
        None => {
            let verifier = rustls_platform_verifier::Verifier::new(provider)
                .map_err(|e| general(format!("platform verifier: {e}")))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
        }
    };
    match (&files.cert_file, &files.key_file) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(load_certs(cert, "client certificate")?, load_key(key)?)
            .map_err(|e| LinstorError::Tls {
                what: "client key",
                path: key.clone(),
                reason: e.to_string(),
            }),
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(path), None) | (None, Some(path)) => Err(LinstorError::Tls {
            what: "client certificate",
            path: path.clone(),
            reason: "a client certificate needs its key, and a key its certificate".into(),
        }),
    }
}

/// Every certificate in a PEM file; an error if there is none.
fn load_certs(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, LinstorError> {
    let err = |reason: String| LinstorError::Tls {
        what,
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no CERTIFICATE block in the file".into()));
    }
    Ok(certs)
}

/// The first private key in a PEM file.
fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, LinstorError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| LinstorError::Tls {
        what: "client key",
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_files_are_tls_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = TlsFiles {
            ca_file: Some(dir.path().join("nope.pem")),
            ..TlsFiles::default()
        };
        let e = client_config(&missing).unwrap_err();
        assert!(
            matches!(
                e,
                LinstorError::Tls {
                    what: "CA file",
                    ..
                }
            ),
            "{e}"
        );

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let e = client_config(&TlsFiles {
            ca_file: Some(empty),
            ..TlsFiles::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("no CERTIFICATE"), "{e}");
    }

    #[test]
    fn cert_without_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = client_config(&TlsFiles {
            ca_file: None,
            cert_file: Some(dir.path().join("c.pem")),
            key_file: None,
        })
        .unwrap_err();
        assert!(e.to_string().contains("needs its key"), "{e}");
    }
}
