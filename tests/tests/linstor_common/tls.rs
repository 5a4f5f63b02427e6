//! Throwaway PKI for the HTTPS tests: a CA, a server certificate for `localhost` and
//! 127.0.0.1, and a client certificate, written as PEM files into a test directory.

use std::path::Path;

use hearth_csi::linstor::client::TlsFiles as ClientTls;
use hearth_tests::linstor_sim::TlsFiles as ServerTls;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};

/// The files of both sides.
pub struct Pki {
    pub server: ServerTls,
    pub client: ClientTls,
}

/// Generates the PKI under `dir`.
pub fn write(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "hearth test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);

    let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose, stem: &str| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![usage];
        params.distinguished_name.push(DnType::CommonName, stem);
        let cert = params.signed_by(&key, &issuer).unwrap();
        let (c, k) = (
            dir.join(format!("{stem}.crt")),
            dir.join(format!("{stem}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    };
    let ca_file = dir.join("ca.crt");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    let (server_cert, server_key) = leaf(
        vec!["localhost".into(), "127.0.0.1".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
        "server",
    );
    let (client_cert, client_key) = leaf(Vec::new(), ExtendedKeyUsagePurpose::ClientAuth, "client");
    Pki {
        server: ServerTls {
            cert: server_cert,
            key: server_key,
            client_ca: ca_file.clone(),
        },
        client: ClientTls {
            ca_file: Some(ca_file),
            cert_file: Some(client_cert),
            key_file: Some(client_key),
        },
    }
}
