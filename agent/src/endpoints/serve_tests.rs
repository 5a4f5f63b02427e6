//! The status server over real sockets: a flood of idle connections (the 300) leaves
//! `/healthz` answering within a second, on the probe listener and, from another source, on the
//! status listener; `/status` from a non-loopback address is refused without an allowed token;
//! a TLS listener serves HTTPS, and plain HTTP only to loopback.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use super::access::{FakeAccessReviewer, Guarded, StatusAuth};
use super::{serve, text_reply, ProbeOnly, Routes, PROBE_TUNING, STATUS_TUNING};

/// Answers every path with 200 and the path.
struct Echo;

#[async_trait::async_trait]
impl Routes for Echo {
    async fn route(&self, req: &Request<()>) -> Response<Full<Bytes>> {
        text_reply(StatusCode::OK, format!("{}\n", req.uri().path()))
    }
}

async fn listener(ip: &str) -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind((ip.parse::<IpAddr>().unwrap(), 0))
        .await
        .unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

/// `n` idle connections to `to` from the loopback source `from`.
async fn flood(to: SocketAddr, from: IpAddr, n: usize) -> Vec<TcpStream> {
    let mut out = Vec::new();
    for _ in 0..n {
        let s = TcpSocket::new_v4().unwrap();
        s.bind(SocketAddr::new(from, 0)).unwrap();
        out.push(s.connect(to).await.unwrap());
    }
    // Let the server accept (and close what it has no slot for).
    tokio::time::sleep(Duration::from_millis(200)).await;
    out
}

/// A GET from `from` with an optional bearer token: the status code, or `None` when the
/// connection is closed without an answer.
async fn get(to: SocketAddr, from: IpAddr, path: &str, token: Option<&str>) -> Option<u16> {
    let s = if from.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .unwrap();
    s.bind(SocketAddr::new(from, 0)).unwrap();
    let mut c = s.connect(to).await.ok()?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    c.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n{auth}\r\n").as_bytes())
        .await
        .ok()?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut raw))
        .await
        .ok()?
        .ok()?;
    crate::status_cmd::parse_answer(&raw).map(|(code, _)| code)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn quick_healthz(to: SocketAddr, from: IpAddr) {
    let t = Instant::now();
    assert_eq!(
        get(to, from, "/healthz", None).await,
        Some(200),
        "{to} from {from}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "healthz took {:?}",
        t.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_idle_connections_leave_healthz_answering() {
    let src = Arc::new(Echo);
    let (status, status_addr) = listener("127.0.0.1").await;
    let (probe, probe_addr) = listener("127.0.0.1").await;
    tokio::spawn(serve(status, Arc::clone(&src), STATUS_TUNING));
    tokio::spawn(serve(probe, Arc::new(ProbeOnly(src)), PROBE_TUNING));

    // The flood from one address: it fills its own share, not the listener.
    let one = flood(status_addr, ip("127.0.0.2"), 300).await;
    quick_healthz(status_addr, ip("127.0.0.1")).await;
    quick_healthz(probe_addr, ip("127.0.0.1")).await;
    assert_eq!(
        get(status_addr, ip("127.0.0.2"), "/healthz", None).await,
        None
    );

    // From thirty addresses it fills the status listener; the probes have slots of their own.
    let mut many = Vec::new();
    for i in 3..33u8 {
        many.extend(flood(status_addr, IpAddr::from([127, 0, 0, i]), 10).await);
    }
    quick_healthz(probe_addr, ip("127.0.0.1")).await;

    // A flood of the probe listener itself leaves its share to the others too.
    let probes = flood(probe_addr, ip("127.0.0.2"), 300).await;
    quick_healthz(probe_addr, ip("127.0.0.1")).await;
    // The probe listener serves the probes only.
    assert_eq!(
        get(probe_addr, ip("127.0.0.1"), "/status", None).await,
        Some(404)
    );
    drop((one, many, probes));
}

/// A global address of this machine, for a connection whose source is not loopback.
fn non_loopback_address() -> Option<IpAddr> {
    let out = std::process::Command::new("ip")
        .args(["-o", "-4", "addr", "show", "scope", "global"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let mut w = l.split_whitespace();
        w.position(|x| x == "inet")?;
        w.next()?.split('/').next()?.parse().ok()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_from_another_address_needs_an_allowed_token() {
    let Some(far) = non_loopback_address() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no global IPv4 address to connect from, and CI=true forbids skipping"
        );
        println!("skipping status_from_another_address: this machine has no global IPv4 address");
        return;
    };
    let fake = FakeAccessReviewer::with("good", "system:serviceaccount:m:scraper", &["/metrics"]);
    fake.add("admin", "alice", &[], &["/status", "/metrics"]);
    let guarded = Guarded {
        inner: Arc::new(Echo),
        auth: Arc::new(StatusAuth::new(Arc::new(fake), Vec::new())),
    };
    let (l, addr) = listener("0.0.0.0").await;
    tokio::spawn(serve(l, Arc::new(guarded), STATUS_TUNING));
    let there = SocketAddr::new(far, addr.port());
    assert_eq!(get(there, far, "/status", None).await, Some(401));
    assert_eq!(get(there, far, "/metrics", None).await, Some(401));
    assert_eq!(get(there, far, "/status", Some("made-up")).await, Some(401));
    assert_eq!(get(there, far, "/status", Some("good")).await, Some(403));
    assert_eq!(get(there, far, "/metrics", Some("good")).await, Some(200));
    assert_eq!(get(there, far, "/status", Some("admin")).await, Some(200));
    assert_eq!(get(there, far, "/healthz", None).await, Some(200));
    // On loopback, `hearth status` needs nothing.
    let local = SocketAddr::new(ip("127.0.0.1"), addr.port());
    assert_eq!(
        get(local, ip("127.0.0.1"), "/status", None).await,
        Some(200)
    );
}

/// A GET over TLS to `to`, trusting `ca` for `name`: the status code, or the error.
async fn get_tls(
    to: SocketAddr,
    ca: &rustls::pki_types::CertificateDer<'static>,
    name: &str,
    path: &str,
) -> Result<u16, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).map_err(|e| e.to_string())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(to).await.map_err(|e| e.to_string())?;
    let server =
        rustls::pki_types::ServerName::try_from(name.to_owned()).map_err(|e| e.to_string())?;
    let mut c = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(server, tcp)
        .await
        .map_err(|e| e.to_string())?;
    c.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    // A server that closes without close_notify is fine for HTTP/1.0 reads.
    let _ = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut raw)).await;
    crate::status_cmd::parse_answer(&raw)
        .map(|(code, _)| code)
        .ok_or_else(|| format!("no HTTP answer: {:?}", String::from_utf8_lossy(&raw)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_listener_serves_https_and_plain_http_only_on_loopback() {
    use super::tls::{StatusTls, TlsSource};
    let dir = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["node-a".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let tls = StatusTls::new(&TlsSource::Files { cert, key }).unwrap();
    let (l, addr) = listener("0.0.0.0").await;
    tokio::spawn(super::serve_with(
        l,
        Arc::new(Echo),
        STATUS_TUNING,
        Some(tls),
    ));
    let local = SocketAddr::new(ip("127.0.0.1"), addr.port());
    let ca = made.cert.der().clone();
    assert_eq!(get_tls(local, &ca, "node-a", "/status").await, Ok(200));
    assert!(
        get_tls(local, &ca, "node-b", "/status").await.is_err(),
        "a name the certificate does not carry"
    );
    // `hearth status` on the node, plain on loopback, still works.
    assert_eq!(
        get(local, ip("127.0.0.1"), "/status", None).await,
        Some(200)
    );
    let Some(far) = non_loopback_address() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no global IPv4 address to connect from, and CI=true forbids skipping"
        );
        println!("skipping the plain-from-elsewhere half: this machine has no global IPv4 address");
        return;
    };
    let there = SocketAddr::new(far, addr.port());
    assert_eq!(
        get(there, far, "/healthz", None).await,
        Some(400),
        "plain HTTP from elsewhere"
    );
    assert_eq!(get_tls(there, &ca, "node-a", "/healthz").await, Ok(200));
}
