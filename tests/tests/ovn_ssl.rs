//! Hearth's OVSDB client over `ssl:` against the real Debian ovsdb-server, started by
//! [`hearth_tests::ovs::OvsLab`] with a `pssl:0:127.0.0.1` remote and certificates made here
//! with rcgen the way ovs-pki makes them: CN only (a UUID for the server), no subjectAltName.
//!
//! - list_dbs and transact work over ssl (the server's name is not in its certificate);
//! - the server refuses a client certificate from another CA;
//! - the client refuses a server certificate from another CA, with a clear error;
//! - certificates made by the real `ovs-pki` (CN `NAME id:UUID`, a SAN that is not a host
//!   name) work both ways;
//! - `hearth net apply` with `ovn.ovsdb: ssl:` and `ovsdbTLS` configures the database (root:
//!   it runs in a throwaway namespace, next to its own ovsdb-server).
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::path::{Path, PathBuf};

use hearth_net::ovsdb::datum::{insert, map};
use hearth_net::ovsdb::tables::DB;
use hearth_net::ovsdb::{Client, OvsdbError, Tls, TlsFiles};
use hearth_tests::ovs::{OvsLab, SslFiles, VSWITCH_SCHEMA};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use serde_json::json;

fn ready(test: &str) -> bool {
    hearth_tests::tool_or_skip(test, "ovsdb-server")
        && hearth_tests::tool_or_skip(test, "ovsdb-tool")
        && hearth_tests::tool_or_skip(test, "ovs-vsctl")
        && Path::new(VSWITCH_SCHEMA).exists()
}

/// One CA with a server and a client certificate, as PEM files under `dir`.
struct Pki {
    ca: PathBuf,
    server: (PathBuf, PathBuf),
    client: (PathBuf, PathBuf),
}

impl Pki {
    fn new(dir: &Path, tag: &str) -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, format!("{tag} OVS CA"));
        let ca_file = dir.join(format!("{tag}-ca.pem"));
        std::fs::write(&ca_file, ca.self_signed(&ca_key).unwrap().pem()).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let leaf = |cn: &str, stem: &str| {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.distinguished_name.push(DnType::CommonName, cn);
            let cert = p.signed_by(&key, &issuer).unwrap();
            let c = dir.join(format!("{tag}-{stem}-cert.pem"));
            let k = dir.join(format!("{tag}-{stem}-privkey.pem"));
            std::fs::write(&c, cert.pem()).unwrap();
            std::fs::write(&k, key.serialize_pem()).unwrap();
            (c, k)
        };
        Self {
            ca: ca_file,
            server: leaf("5b8e0c7a-3f1d-4e2b-9a6c-0d4f8e2a1b3c", "server"),
            client: leaf("node-a id:5b8e0c7a", "client"),
        }
    }

    /// The server side: our server certificate, accepting clients of `clients_ca`.
    fn server_files(&self, clients_ca: &Path) -> SslFiles {
        SslFiles {
            key: self.server.1.clone(),
            cert: self.server.0.clone(),
            ca: clients_ca.to_owned(),
        }
    }

    /// The client side: our client certificate, trusting servers of `servers_ca`.
    fn client_files(&self, servers_ca: &Path) -> TlsFiles {
        TlsFiles {
            ca_file: servers_ca.to_owned(),
            cert_file: self.client.0.clone(),
            key_file: self.client.1.clone(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_dbs_and_transact_over_ssl() {
    if !ready("ovn_ssl") {
        return;
    }
    let mut lab = OvsLab::new();
    let ours = Pki::new(lab.dir(), "ours");
    let (unix, ssl) = lab.ovsdb_ssl("db", VSWITCH_SCHEMA, &ours.server_files(&ours.ca), None);

    let e = Client::connect(&ssl).await.unwrap_err();
    assert!(matches!(e, OvsdbError::TlsRequired { .. }), "{e}");

    let tls = Tls::load(&ours.client_files(&ours.ca)).unwrap();
    let c = Client::connect_with(&ssl, Some(tls)).await.unwrap();
    assert!(c.list_dbs().await.unwrap().contains(&DB.to_owned()));
    let ids = [("hearth-ssl".to_owned(), "yes".to_owned())].into();
    c.transact(
        DB,
        vec![insert(
            "Open_vSwitch",
            json!({"external_ids": map(&ids)}),
            "root",
        )],
    )
    .await
    .unwrap();
    // Read back by another client over the unix socket.
    let got = lab.ctl(
        "ovs-vsctl",
        &unix,
        &["get", "Open_vSwitch", ".", "external_ids:hearth-ssl"],
    );
    assert_eq!(got.trim_matches('"'), "yes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refuses_a_client_certificate_of_another_ca() {
    if !ready("ovn_ssl") {
        return;
    }
    let mut lab = OvsLab::new();
    let ours = Pki::new(lab.dir(), "ours");
    let theirs = Pki::new(lab.dir(), "theirs");
    let (_, ssl) = lab.ovsdb_ssl("db", VSWITCH_SCHEMA, &ours.server_files(&ours.ca), None);

    // We trust the server; it must not trust our client certificate from the other CA.
    let tls = Tls::load(&theirs.client_files(&ours.ca)).unwrap();
    // With TLS 1.3 the client's handshake completes before the server checks its
    // certificate, so the refusal arrives as an alert on the first read, or on the first
    // write when the alert is already there.
    let err = match Client::connect_with(&ssl, Some(tls)).await {
        Err(e) => e,
        Ok(c) => c.list_dbs().await.unwrap_err(),
    };
    let text = err.to_string();
    assert!(
        matches!(
            err,
            OvsdbError::Handshake { .. }
                | OvsdbError::Disconnected { .. }
                | OvsdbError::Write { .. }
        ) && text.contains("alert"),
        "{text}"
    );
    eprintln!("server refusal as the client sees it: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_refuses_a_server_of_another_ca() {
    if !ready("ovn_ssl") {
        return;
    }
    let mut lab = OvsLab::new();
    let ours = Pki::new(lab.dir(), "ours");
    let theirs = Pki::new(lab.dir(), "theirs");
    // The server has the other CA's certificate, and would accept our client.
    let (_, ssl) = lab.ovsdb_ssl("db", VSWITCH_SCHEMA, &theirs.server_files(&ours.ca), None);

    let tls = Tls::load(&ours.client_files(&ours.ca)).unwrap();
    let err = Client::connect_with(&ssl, Some(tls)).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, OvsdbError::Handshake { .. }), "{text}");
    assert!(
        text.starts_with(&format!("TLS handshake with {ssl}: ")) && text.contains("UnknownIssuer"),
        "{text}"
    );
    eprintln!("client refusal: {text}");
}

/// Runs `ovs-pki` with its PKI and log in `dir`; its output files land in `dir`.
fn ovs_pki(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("ovs-pki")
        .current_dir(dir)
        .arg(format!("--dir={}", dir.join("pki").display()))
        .arg(format!("--log={}", dir.join("pki.log").display()))
        .args(args)
        .output()
        .expect("running ovs-pki");
    assert!(
        out.status.success(),
        "ovs-pki {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_of_the_real_ovs_pki_work() {
    if !(ready("ovn_ssl") && hearth_tests::tool_or_skip("ovn_ssl", "ovs-pki")) {
        return;
    }
    let mut lab = OvsLab::new();
    let dir = lab.dir().to_owned();
    ovs_pki(&dir, &["init"]);
    // ovs-pki's roles: a switch certificate for the server, a controller one for Hearth;
    // each side trusts the other's CA.
    ovs_pki(&dir, &["req+sign", "ovsdb", "switch"]);
    ovs_pki(&dir, &["req+sign", "hearth", "controller"]);
    let switch_ca = dir.join("pki/switchca/cacert.pem");
    let controller_ca = dir.join("pki/controllerca/cacert.pem");
    let server = SslFiles {
        key: dir.join("ovsdb-privkey.pem"),
        cert: dir.join("ovsdb-cert.pem"),
        ca: controller_ca.clone(),
    };
    let (_, ssl) = lab.ovsdb_ssl("db", VSWITCH_SCHEMA, &server, None);
    let tls = Tls::load(&TlsFiles {
        ca_file: switch_ca,
        cert_file: dir.join("hearth-cert.pem"),
        key_file: dir.join("hearth-privkey.pem"),
    })
    .unwrap();
    let c = Client::connect_with(&ssl, Some(tls)).await.unwrap();
    assert!(c.list_dbs().await.unwrap().contains(&DB.to_owned()));
    // The name is not checked, the CA is: trusting the controller CA refuses the switch.
    let wrong = Tls::load(&TlsFiles {
        ca_file: controller_ca,
        cert_file: dir.join("hearth-cert.pem"),
        key_file: dir.join("hearth-privkey.pem"),
    })
    .unwrap();
    let e = Client::connect_with(&ssl, Some(wrong)).await.unwrap_err();
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
}

#[test]
fn net_apply_configures_the_chassis_over_ssl() {
    if !(hearth_tests::root_or_skip("ovn_ssl") && ready("ovn_ssl")) {
        return;
    }
    let mut lab = OvsLab::new();
    let ns = lab.netns("ovn-ssl");
    lab.ns(ns).ip(&["addr", "add", "10.0.0.11/32", "dev", "lo"]); // the encap IP is this node's
    let ours = Pki::new(lab.dir(), "ours");
    // In the namespace: `hearth net apply` runs there and reaches its loopback.
    let (unix, ssl) = lab.ovsdb_ssl(
        "node",
        VSWITCH_SCHEMA,
        &ours.server_files(&ours.ca),
        Some(ns),
    );
    let tls = |key: &Path| {
        format!(
            "{{caFile: {}, certFile: {}, keyFile: {}}}",
            ours.ca.display(),
            ours.client.0.display(),
            key.display()
        )
    };
    let file = |tls: String| {
        format!(
            "ovn:\n  ovsdb: {ssl}\n  ovsdbTLS: {tls}\n  systemId: node-ssl\n  \
             remote: tcp:10.0.0.1:6642\n  encapIP: 10.0.0.11\n  datapathType: netdev\n"
        )
    };
    let path = lab.dir().join("net.yaml");
    let apply = |text: String| {
        std::fs::write(&path, text).unwrap();
        lab.ns(ns)
            .hearth(&["net", "apply", "--file", path.to_str().unwrap()])
    };

    let out = apply(file(tls(&ours.client.1)));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "hearth net apply: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("+ ovs bridge br-int"), "{stdout}");
    let vsctl = |args: &[&str]| lab.ctl("ovs-vsctl", &unix, args);
    assert_eq!(
        vsctl(&["get", "Open_vSwitch", ".", "external_ids:system-id"]).trim_matches('"'),
        "node-ssl"
    );
    assert_eq!(
        vsctl(&["get", "Bridge", "br-int", "datapath_type"]),
        "netdev"
    );

    // Converged: a second run over ssl has nothing to write.
    let again = apply(file(tls(&ours.client.1)));
    assert!(again.status.success());
    assert!(
        !String::from_utf8_lossy(&again.stdout).contains("ovs "),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );

    // An unreadable key is invalid input (exit 2) naming the key.
    let bad = apply(file(tls(&lab.dir().join("missing.pem"))));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("ovn.ovsdbTLS.keyFile"), "{stderr}");
}
