//! The HTTPS half of `hearth status`: a status listener served with `--status-tls-*`
//! (docs/design/status-auth.md) reached as `--addr https://HOST:PORT`. The server is checked
//! against `--ca-file`; `--insecure-skip-tls-verify` accepts any certificate (still encrypted,
//! so a passive listener learns nothing, but an active one could pose as the node), for the
//! in-memory self-signed certificate of `--status-tls-self-signed`.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How the server's certificate is checked.
#[derive(Debug, Clone, Copy)]
pub enum Trust<'a> {
    /// Against the CA certificates of this PEM file.
    Ca(&'a Path),
    /// Not at all (`--insecure-skip-tls-verify`).
    Insecure,
}

fn io_error(what: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(what.to_string())
}

/// Accepts any certificate; handshake signatures are still verified.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn client_config(trust: Trust<'_>) -> std::io::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(io_error)?;
    let config = match trust {
        Trust::Ca(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path)
                .map_err(|e| io_error(format!("--ca-file {}: {e}", path.display())))?
            {
                let cert =
                    cert.map_err(|e| io_error(format!("--ca-file {}: {e}", path.display())))?;
                roots.add(cert).map_err(io_error)?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// The host of `HOST:PORT` (IPv6 in brackets), as the TLS server name.
pub fn server_name(host_port: &str) -> std::io::Result<ServerName<'static>> {
    let host = match host_port.rsplit_once(':') {
        Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']'),
        None => host_port,
    };
    ServerName::try_from(host.to_owned()).map_err(|e| io_error(format!("{host}: {e}")))
}

/// Sends `request` to `host_port` over TLS and reads the whole answer (at most `max` bytes).
pub async fn fetch(
    host_port: &str,
    request: &[u8],
    trust: Trust<'_>,
    max: u64,
) -> std::io::Result<Vec<u8>> {
    let config = client_config(trust)?;
    let name = server_name(host_port)?;
    let tcp = TcpStream::connect(host_port).await?;
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    tls.write_all(request).await?;
    let mut buf = Vec::new();
    match tls.take(max).read_to_end(&mut buf).await {
        Ok(_) => Ok(buf),
        // A server may close without close_notify after an HTTP/1.0 answer.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !buf.is_empty() => Ok(buf),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_name_is_the_host() {
        assert_eq!(
            server_name("node-a:9810").unwrap(),
            ServerName::try_from("node-a").unwrap()
        );
        assert_eq!(
            server_name("10.0.0.7:9810").unwrap(),
            ServerName::try_from("10.0.0.7").unwrap()
        );
        assert_eq!(
            server_name("[fd00::7]:9810").unwrap(),
            ServerName::try_from("fd00::7").unwrap()
        );
    }
}
