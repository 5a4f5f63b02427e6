//! The server-certificate rule for `ssl:` OVSDB connections: the chain must lead to the
//! configured CA, and the name is not checked.
//!
//! Why: OVS's own PKI (`ovs-pki`) issues certificates whose subject CN is a name or a UUID and
//! that usually carry no subjectAltName for the host, so the usual hostname check fails on
//! every real OVS deployment. OVS itself (`stream-ssl.c`) checks only that the peer's chain
//! leads to `--ca-cert`; this verifier keeps exactly that rule and nothing less.
//!
//! How: everything is delegated to rustls' [`WebPkiServerVerifier`] built on the one CA: chain
//! building to that CA, certificate signatures, validity period, key usage, and the handshake
//! signatures. Its last step is the name check (`verify_server_name`, after the chain was
//! verified); only that step's error, `NotValidForName`, is turned into success. Any other
//! error, an unknown issuer, an expired certificate or a bad signature, is returned as is. The
//! unit tests pin that order: a certificate from another CA with a non-matching name must
//! still fail with `UnknownIssuer`.
//!
//! Owns nothing but the decision; loading the PEM files is [`super::tls`]'s job.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};

/// Verifies the server's chain against the CA, but not its name (see the module doc).
#[derive(Debug)]
pub struct CaOnlyVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl CaOnlyVerifier {
    /// A verifier that trusts `roots` (the `caFile`) only.
    pub fn new(
        roots: RootCertStore,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, rustls::client::VerifierBuilderError> {
        let inner =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build()?;
        Ok(Self { inner })
    }
}

impl ServerCertVerifier for CaOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            // Reached only after the chain to the CA verified: the name is the one thing
            // OVS's PKI does not give us.
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

    use super::*;

    struct Ca {
        cert: CertificateDer<'static>,
        issuer: Issuer<'static, KeyPair>,
    }

    fn ca(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        let cert = p.self_signed(&key).unwrap().der().clone();
        Ca {
            cert,
            issuer: Issuer::new(p, key),
        }
    }

    /// A leaf signed by `ca`: like ovs-pki's, CN only and no subjectAltName unless `sans`.
    fn leaf(ca: &Ca, cn: &str, sans: &[&str], expired: bool) -> CertificateDer<'static> {
        let key = KeyPair::generate().unwrap();
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut p = CertificateParams::new(sans).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        if expired {
            p.not_before = rcgen::date_time_ymd(2000, 1, 1);
            p.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        p.signed_by(&key, &ca.issuer).unwrap().der().clone()
    }

    fn verifier(ca: &Ca) -> CaOnlyVerifier {
        let mut roots = RootCertStore::empty();
        roots.add(ca.cert.clone()).unwrap();
        CaOnlyVerifier::new(roots, Arc::new(rustls::crypto::ring::default_provider())).unwrap()
    }

    fn verify(v: &CaOnlyVerifier, cert: &CertificateDer<'_>, host: &str) -> Result<(), Error> {
        let name = ServerName::try_from(host.to_owned()).unwrap();
        v.verify_server_cert(cert, &[], &name, &[], UnixTime::now())
            .map(|_| ())
    }

    #[test]
    fn a_cert_of_the_ca_with_another_name_is_accepted() {
        let ours = ca("ours");
        let v = verifier(&ours);
        let uuid = leaf(&ours, "8e1b3f0c-5f0e-4c1e-9d7a-1f3c2b4a5d6e", &[], false);
        verify(&v, &uuid, "10.0.0.1").unwrap();
        verify(&v, &uuid, "ovsdb.example").unwrap();
        let named = leaf(&ours, "x", &["other.example"], false);
        verify(&v, &named, "ovsdb.example").unwrap();
    }

    #[test]
    fn a_cert_of_another_ca_is_rejected_whatever_its_name() {
        let (ours, theirs) = (ca("ours"), ca("theirs"));
        let v = verifier(&ours);
        // Name matches: the chain alone must fail it.
        let matching = leaf(&theirs, "x", &["ovsdb.example"], false);
        // Name does not match either: pins that the chain is checked before the name.
        let other = leaf(&theirs, "8e1b3f0c", &[], false);
        for cert in [matching, other] {
            let e = verify(&v, &cert, "ovsdb.example").unwrap_err();
            assert_eq!(
                e,
                Error::InvalidCertificate(CertificateError::UnknownIssuer),
                "{e}"
            );
        }
        // A self-signed copy of our CA's name is not our CA either.
        let imposter = ca("ours");
        let e = verify(&v, &imposter.cert, "ovsdb.example").unwrap_err();
        assert!(matches!(e, Error::InvalidCertificate(_)), "{e}");
    }

    #[test]
    fn an_expired_cert_of_the_ca_is_rejected() {
        let ours = ca("ours");
        let v = verifier(&ours);
        let old = leaf(&ours, "8e1b3f0c", &[], true);
        let e = verify(&v, &old, "10.0.0.1").unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidCertificate(
                    CertificateError::Expired | CertificateError::ExpiredContext { .. }
                )
            ),
            "{e}"
        );
    }
}
